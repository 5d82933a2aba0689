"""The Sales Management client: protocol details against fake servers, and the real simulator.

The contract is the SSM_API design page, drawn from the public documentation:
S1 https://developer.forcemanager.com/ (login, ``X-FM-Entity-Count`` paging from page 0,
``where=`` operators ``=``, ``>``, ``LIKE``, ``AND``, ``OR``, error codes) and S2 the
withone.ai "Sage Sales Management" pages (Bulk Create/Update Resources: items ``{guid,
data}`` / ``{guid, id, data}``, at most 200; Bulk Create Products: at most 100; create
answers 200 with the new id). What is unpublished (end of a list, the per-item bulk
answer, rate limits) is exercised both ways with fakes built on ``httpx.MockTransport``.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from dossiersync.errors import SsmAuthError, SsmError, SsmNotFound, SsmRefused, SsmUnavailable
from dossiersync.plugins.sales_management import SalesManagementClient
from dossiersync.plugins.sales_management.client import (
    RequestPacer,
    same_value,
    shift_date,
    where_literal,
)
from dossiersync.plugins.sales_management.simulator.app import BULK_ANSWERS
from dossiersync.plugins.sales_management.simulator.process import (
    SimulatorProcess,
    running_simulator,
)
from dossiersync.plugins.sales_management.simulator.where import parse as parse_where
from dossiersync.sync.to_ssm import unknown_outcome
from dossiersync.target import WriteResult

from support.bulk_proxy import BulkProxy

_numbers = itertools.count(1)
API_URL = "https://ssm.example/api/v4"


def unique(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}-{time.monotonic_ns()}:"


def account(ext_id: str, **fields: Any) -> dict[str, Any]:
    return {"name": f"Client {ext_id}", "branchId": 2, "salesRepId1": 1, "extId": ext_id, **fields}


def client_for(simulator: SimulatorProcess, **options: Any) -> SalesManagementClient:
    options.setdefault("max_requests_per_second", 0)
    options.setdefault("backoff_base", 0.01)
    return SalesManagementClient(
        simulator.url, simulator.public_key, simulator.private_key, **options
    )


def client_for_url(
    api_url: str, simulator: SimulatorProcess, **options: Any
) -> SalesManagementClient:
    """A client of the simulator's keys talking to ``api_url`` (a proxy in front of it)."""
    options.setdefault("max_requests_per_second", 0)
    options.setdefault("backoff_base", 0.01)
    return SalesManagementClient(api_url, simulator.public_key, simulator.private_key, **options)


def stats(simulator: SimulatorProcess) -> dict[str, Any]:
    """What the simulator counted (``GET {base}/_simulator/stats``)."""
    base = simulator.url.split("/api/")[0]
    answer: dict[str, Any] = httpx.get(f"{base}/_simulator/stats", timeout=10).json()
    return answer


def assert_no_refusals(simulator: SimulatorProcess) -> None:
    counted = stats(simulator)
    assert counted["refusals"] == 0, f"the simulator refused requests: {counted['reasons']}"


def ids_of(results: list[WriteResult]) -> list[int | None]:
    return [r.id for r in results]


# --- what a where= filter may contain (S1: =, >, LIKE, AND, OR; S3: NOT LIKE) ---------------

_QUOTED = re.compile(r"'(?:[^']|'')*'")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"-?\d+")


def assert_documented_where(where: str) -> None:
    """Only documented operators, checked twice: by a whitelist of tokens outside the quoted
    strings, and by the simulator's strict parser (which refuses anything undocumented)."""
    bare = _QUOTED.sub(" 'S' ", where)
    assert "'" not in _QUOTED.sub("", where), f"unbalanced quotes in {where!r}"
    for forbidden in (">=", "<", "!=", "(", ")", '"'):
        assert forbidden not in bare, f"{forbidden!r} in {where!r}"
    words = bare.split()
    for word in words:
        upper = word.upper()
        assert upper not in {"IN", "IS", "NULL", "TRUE", "FALSE", "NOT", "BETWEEN"}, where
        assert (
            word in ("=", ">", "'S'")
            or upper in ("LIKE", "AND", "OR")
            or _NUMBER.fullmatch(word)
            or _FIELD.fullmatch(word)
        ), f"undocumented token {word!r} in {where!r}"
    parse_where(where)


# --- fakes ---------------------------------------------------------------------------------


class FakeApi:
    """Answers ``/login`` with a token and every other call through ``answer``."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.logins = 0
        self.calls = 0
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path.endswith("/login"):
                self.logins += 1
                return httpx.Response(200, json={"token": f"token-{self.logins}"})
            self.calls += 1
            self.requests.append(request)
        return self.answer(request)

    def client(self, **options: Any) -> SalesManagementClient:
        options.setdefault("max_requests_per_second", 0)
        options.setdefault("backoff_base", 0.01)
        return SalesManagementClient(
            API_URL, "pub", "priv", transport=httpx.MockTransport(self), **options
        )

    def wheres(self) -> list[str | None]:
        return [r.url.params.get("where") for r in self.requests if r.method == "GET"]


def failing_then(statuses: list[int], headers: dict[str, str] | None = None) -> FakeApi:
    remaining = list(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        if remaining:
            return httpx.Response(remaining.pop(0), json={"Message": "busy"}, headers=headers)
        return httpx.Response(200, json={"id": 1})

    return FakeApi(answer)


class PagedApi(FakeApi):
    """A list of ``total`` records, pages capped at ``cap``; the end of the list announced
    (``next_page``) not at all, with next on every page but the last, with next = current
    on the last (an older API), or always with page + 1 (a lying hint). ``ignore_page``:
    every request gets the first page."""

    def __init__(
        self,
        total: int,
        *,
        cap: int = 500,
        next_page: str = "none",
        ignore_page: bool = False,
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(self.list_page)
        self.records = (
            records
            if records is not None
            else [{"id": n, "extId": f"R{n}", "deleted": False} for n in range(1, total + 1)]
        )
        self.cap = cap
        self.next_page = next_page
        self.ignore_page = ignore_page
        self.pages: list[int] = []
        self.sizes: list[str | None] = []

    def list_page(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        page = int(request.url.params["page"])
        asked = request.headers.get("X-FM-Entity-Count")
        self.pages.append(page)
        self.sizes.append(asked)
        size = min(int(asked or 50), self.cap)
        start = 0 if self.ignore_page else page * size
        chunk = self.records[start : start + size]
        more = start + size < len(self.records)
        headers = {}
        if self.next_page == "next" and more:
            headers["X-FM-Next-Page"] = str(page + 1)
        elif self.next_page == "repeat":
            headers["X-FM-Next-Page"] = str(page + 1 if more else page)
        elif self.next_page == "always":
            headers["X-FM-Next-Page"] = str(page + 1)
        return httpx.Response(200, json=chunk, headers=headers)


class BulkApi(FakeApi):
    """In-memory accounts/products/lines answering single and bulk writes and ``extId =``
    look-ups. ``faults`` are consumed one per bulk call: ``(outcome, carried_out)`` with an
    HTTP status, ``"timeout"`` (no answer) or ``"connect"`` (never reached the server)."""

    def __init__(self) -> None:
        super().__init__(self.route)
        self.records: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.faults: list[tuple[int | str, bool]] = []
        self.order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda a: a
        self.item_answer: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] = (
            lambda item, answer: answer
        )
        self.single_refusals: set[str] = set()

    def bulk_bodies(self, method: str = "POST") -> list[list[dict[str, Any]]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == method and r.url.path.endswith("/bulk")
        ]

    def _create(self, data: dict[str, Any]) -> int:
        self.next_id += 1
        self.records[self.next_id] = {"id": self.next_id, "deleted": False, **data}
        return self.next_id

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v4")
        if request.method == "GET":
            return self.lookup(request)
        body = json.loads(request.content)
        if path.endswith("/bulk"):
            return self.bulk(request, body)
        if request.method == "POST":
            if body.get("extId") in self.single_refusals:
                return httpx.Response(400, json={"Message": "Missing required field 'price'"})
            if self.faults:
                outcome, carried_out = self.faults.pop(0)
                if carried_out:
                    self._create(body)
                return self.fail(request, outcome)
            return httpx.Response(200, json={"Message": "entity created", "id": self._create(body)})
        if request.method == "PUT":
            return httpx.Response(200, json={"Message": "entity updated"})
        raise AssertionError(f"unexpected {request.method} {path}")

    def fail(self, request: httpx.Request, outcome: int | str) -> httpx.Response:
        if outcome == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if outcome == "connect":
            raise httpx.ConnectError("refused", request=request)
        assert isinstance(outcome, int)
        return httpx.Response(outcome, json={"Message": f"simulated {outcome}"})

    def bulk(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and not fault[1]:
            return self.fail(request, fault[0])
        answers = []
        for item in items:
            if request.method == "POST":
                answer = {"guid": item["guid"], "statusCode": 200, "Message": "entity created"}
                answer["id"] = self._create(item["data"])
            else:
                answer = {"guid": item["guid"], "statusCode": 200, "Message": "entity updated"}
                answer["id"] = item["id"]
            kept = self.item_answer(item, answer)
            if kept is not None:
                answers.append(kept)
        if fault is not None:
            return self.fail(request, fault[0])
        return httpx.Response(200, json=self.order(answers))

    def lookup(self, request: httpx.Request) -> httpx.Response:
        where = request.url.params.get("where") or ""
        wanted = {v.replace("''", "'") for v in re.findall(r"extId = '((?:[^']|'')*)'", where)}
        found = [r for r in self.records.values() if r.get("extId") in wanted]
        size = int(request.headers.get("X-FM-Entity-Count", "50"))
        page = int(request.url.params["page"])
        return httpx.Response(200, json=found[page * size : (page + 1) * size])


# --- against the simulator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """One simulator for the tests that must leave it without a single refusal."""
    with running_simulator(str(tmp_path_factory.mktemp("ssm") / "ssm.sqlite")) as running:
        yield running


@pytest.fixture()
def client(simulator: SimulatorProcess) -> Iterator[SalesManagementClient]:
    with client_for(simulator) as client:
        yield client
    assert_no_refusals(simulator)


@pytest.fixture()
def scratch(tmp_path: Path) -> Iterator[SimulatorProcess]:
    """A fresh simulator, for tests that make it refuse requests on purpose."""
    with running_simulator(str(tmp_path / "ssm.sqlite")) as running:
        yield running


def test_create_get_update_delete(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    ext_id = unique("CLIENT:")
    record_id = client.create("accounts", account(ext_id, city="Lille"))
    record = client.get("accounts", record_id)
    assert record["extId"] == ext_id
    assert SalesManagementClient.fk_id(record["branchId"]) == 2

    client.update("accounts", record_id, {"city": "Lyon"})
    updated = client.get("accounts", record_id)
    assert (updated["city"], updated["name"]) == ("Lyon", record["name"])

    client.delete("accounts", record_id)
    gone = client.get("accounts", record_id)
    assert gone["deleted"] is True
    assert SalesManagementClient.changed_at(gone) == gone["dateDeleted"]
    assert_no_refusals(simulator)


def test_query_pages_through_every_matching_record(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    prefix = unique("PAGES:")
    created = [client.create("accounts", account(f"{prefix}{n}")) for n in range(120)]
    client.create("accounts", account(unique("ELSEWHERE:")))

    listed = client.query("accounts", where=f"extId LIKE '{prefix}%'", page_size=50)
    assert [r["id"] for r in listed] == created
    assert_no_refusals(simulator)


def test_query_is_lazy(simulator: SimulatorProcess) -> None:
    prefix = unique("LAZY:")
    with client_for(simulator) as client:
        for n in range(5):
            client.create("accounts", account(f"{prefix}{n}"))
        client.login()
        before = stats(simulator)["requests"]
        pages = client.query("accounts", where=f"extId LIKE '{prefix}%'", page_size=2)
        assert stats(simulator)["requests"] == before  # nothing asked yet
        first = next(pages)
        assert first["extId"] == f"{prefix}0"
        # page 0, and page 1 asked for (in the background) while page 0 is consumed
        deadline = time.monotonic() + 5
        while stats(simulator)["requests"] < before + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stats(simulator)["requests"] == before + 2
        assert len(list(pages)) == 4
    assert_no_refusals(simulator)


def test_query_filters_and_orders(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    prefix = unique("ORDER:")
    for name in ("Alpha", "Gamma", "Beta"):
        client.create("accounts", account(f"{prefix}{name}", name=name))
    names = [r["name"] for r in client.query("accounts", f"extId LIKE '{prefix}%'", "name")]
    assert names == ["Gamma", "Beta", "Alpha"]
    assert_no_refusals(simulator)


@pytest.mark.parametrize(
    ("next_page", "total", "requests"),
    [
        ("none", 23, 4),
        ("none", 21, 4),
        ("next", 23, 4),
        ("next", 21, 4),
        ("repeat", 23, 4),
        ("repeat", 21, 3),
    ],
)
def test_every_record_is_read_whatever_the_end_of_list_and_page_cap(
    tmp_path: Path, next_page: str, total: int, requests: int
) -> None:
    """The server answers at most 7 records a page while 500 are asked (S1: the maximum of
    ``X-FM-Entity-Count`` is unpublished); the end of the list is announced in each of the
    ways the client must survive; 21 is an exact multiple of the page."""
    db = str(tmp_path / "ssm.sqlite")
    with (
        running_simulator(db, next_page=next_page, max_page_size=7) as sim,
        client_for(sim, page_size=500) as client,
    ):
        prefix = unique("CAPPED:")
        results = client.bulk_create("accounts", [account(f"{prefix}{n}") for n in range(total)])
        assert all(r.ok for r in results)
        client.login()
        before = stats(sim)["requests"]
        listed = list(client.list_changed("accounts", ext_prefix=prefix))
        assert [r["id"] for r in listed] == ids_of(results)
        assert stats(sim)["requests"] - before == requests
        assert_no_refusals(sim)


def test_list_changed_finds_updates_and_deletions_since_a_cursor(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    """A deletion keeps ``dateUpdated`` (S2): deletions are found by ``dateDeleted``."""
    prefix = unique("SINCE:")
    first, second, third = ids_of(
        client.bulk_create("accounts", [account(f"{prefix}{n}") for n in range(3)])
    )
    assert first and second and third
    cursor = SalesManagementClient.changed_at(client.get("accounts", third))
    assert cursor is not None
    time.sleep(0.01)
    client.update("accounts", first, {"city": "Nantes"})
    client.delete("accounts", second)
    client.create("accounts", account(unique("OTHER:")))

    changed = list(client.list_changed("accounts", since=cursor, ext_prefix=prefix))
    assert [r["id"] for r in changed] == [first]
    with_deleted = list(
        client.list_changed("accounts", since=cursor, ext_prefix=prefix, deleted=True)
    )
    assert [(r["id"], r["deleted"]) for r in with_deleted] == [(first, False), (second, True)]
    everything = list(
        client.list_changed(
            "accounts", since=cursor, overlap_seconds=3600, ext_prefix=prefix, deleted=True
        )
    )
    assert [r["id"] for r in everything] == [first, second, third]
    on_branch = list(
        client.list_changed(
            "accounts", since=cursor, ext_prefix=prefix, equals={"branchId": 2}, deleted=True
        )
    )
    assert [r["id"] for r in on_branch] == [first, second]
    live = list(client.list_changed("accounts", ext_prefix=prefix))
    assert [r["id"] for r in live] == [first, third]
    by_branch = list(client.list_changed("accounts", ext_prefix=prefix, equals={"branchId": 2}))
    assert [r["id"] for r in by_branch] == [first, third]
    assert list(client.list_changed("accounts", ext_prefix=prefix, equals={"branchId": 3})) == []
    assert_no_refusals(simulator)


def test_prefixes_with_quotes_and_like_wildcards_are_exact(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    """``_`` and ``%`` are LIKE wildcards and LIKE may ignore case: the client keeps only
    the records whose extId really starts with the prefix."""
    prefix = unique("Q'_%:")
    decoys = [prefix.replace("_", "X").replace("%", "YY"), prefix.lower(), prefix[:-1]]
    bodies = [account(f"{prefix}{n}") for n in range(3)] + [account(f"{d}0") for d in decoys]
    results = client.bulk_create("accounts", bodies)
    assert all(r.ok for r in results)
    listed = list(client.list_changed("accounts", ext_prefix=prefix))
    assert [r["extId"] for r in listed] == [f"{prefix}{n}" for n in range(3)]
    found = list(client.find("accounts", ext_ids=[f"{prefix}0", f"{prefix.lower()}0"]))
    assert sorted(r["extId"] for r in found) == sorted([f"{prefix}0", f"{prefix.lower()}0"])
    assert_no_refusals(simulator)


def test_find_by_ext_ids_and_ids_across_chunks(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    prefix = unique("FIND:")
    bodies = [account(f"{prefix}{n}") for n in range(45)]
    ids = ids_of(client.bulk_create("accounts", bodies))
    client.delete("accounts", ids[3])

    wanted = [b["extId"] for b in bodies] + [f"{prefix}missing"]
    found = list(client.find("accounts", ext_ids=wanted))
    assert sorted(r["id"] for r in found) == sorted(i for n, i in enumerate(ids) if n != 3)
    by_id = list(client.find("accounts", ids=[ids[0], ids[3], ids[44]]))
    assert sorted(r["id"] for r in by_id) == [ids[0], ids[44]]
    assert list(client.find("accounts")) == []
    assert_no_refusals(simulator)


def test_bulk_create_and_update_products_by_hundreds(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    """S2 Bulk Create/Update Products: at most 100 items a call."""
    prefix = unique("PRODUCT:")
    bodies = [{"model": f"Model {n}", "extId": f"{prefix}{n}", "price": n} for n in range(250)]
    client.login()
    before = stats(simulator)["requests"]
    created = client.bulk_create("products", bodies)
    assert stats(simulator)["requests"] - before == 3
    assert all(r.ok for r in created) and len(set(ids_of(created))) == 250
    listed = list(client.list_changed("products", ext_prefix=prefix))
    assert [(r["id"], r["extId"]) for r in listed] == [
        (r.id, b["extId"]) for r, b in zip(created, bodies, strict=True)
    ]

    updated = client.bulk_update("products", [(r.id, {"price": 1000}) for r in created])
    assert [(r.id, r.ok) for r in updated] == [(r.id, True) for r in created]
    assert {r["price"] for r in client.list_changed("products", ext_prefix=prefix)} == {1000}
    assert_no_refusals(simulator)


def test_resources_without_bulk_are_written_one_by_one(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    prefix = unique("LINES:")
    (order,) = client.bulk_create(
        "salesorders",
        [{"branchId": 1, "reference": f"{prefix}BC1", "salesRepId": 1, "extId": f"{prefix}BC1"}],
    )
    (product,) = client.bulk_create("products", [{"model": "Vis", "extId": f"{prefix}P"}])
    assert order.ok and product.ok
    assert client.bulk_limit("salesOrdersLines") == 1
    bodies = [
        {
            "salesOrderId": order.id,
            "productId": product.id,
            "quantity": n + 1,
            "price": 2.5,
            "extId": f"{prefix}{n}",
        }
        for n in range(3)
    ]
    client.login()
    before = stats(simulator)["requests"]
    lines = client.bulk_create("salesOrdersLines", bodies)
    assert stats(simulator)["requests"] - before == 3
    assert all(r.ok for r in lines)
    assert [client.get("salesordersLines", r.id)["quantity"] for r in lines] == [1, 2, 3]
    updated = client.bulk_update("salesOrdersLines", [(lines[0].id, {"quantity": 9})])
    assert updated == [WriteResult(lines[0].id)]
    assert client.get("salesordersLines", lines[0].id)["quantity"] == 9
    assert_no_refusals(simulator)


@pytest.mark.ssm_refusals
def test_one_bad_record_in_a_bulk_fails_alone(scratch: SimulatorProcess) -> None:
    prefix = unique("BAD:")
    bodies = [account(f"{prefix}{n}") for n in range(5)]
    del bodies[2]["name"]
    with client_for(scratch) as client:
        results = client.bulk_create("accounts", bodies)
        assert [r.ok for r in results] == [True, True, False, True, True]
        assert isinstance(results[2].error, SsmRefused)
        assert results[2].error.status == 400 and "name" in str(results[2].error)
        listed = list(client.list_changed("accounts", ext_prefix=prefix))
        assert [r["id"] for r in listed] == [results[n].id for n in (0, 1, 3, 4)]
    assert stats(scratch)["refusals"] == 1


@pytest.mark.ssm_refusals
def test_missing_required_field_is_refused(scratch: SimulatorProcess) -> None:
    with client_for(scratch) as client, pytest.raises(SsmRefused) as caught:
        client.create("accounts", {"name": "No branch", "salesRepId1": 1})
    assert caught.value.status == 400
    assert "branchId" in str(caught.value)
    assert stats(scratch)["refusals"] == 1


# --- bulk item answers, read whatever their (unpublished) shape ------------------------------


@pytest.mark.ssm_refusals
@pytest.mark.parametrize("shape", BULK_ANSWERS)
def test_every_shape_of_bulk_item_answer_is_read(tmp_path: Path, shape: str) -> None:
    """Done items are done and failed ones fail alone, whatever the shape of the item
    answers; nothing needs verifying (no look-up, no read-back); a deleted record is told
    apart as not found even without a status (the API's code 910)."""
    with running_simulator(str(tmp_path / "ssm.sqlite"), bulk_answer=shape) as sim:
        bodies = [account(f"SHAPE:{n}") for n in range(4)]
        del bodies[2]["name"]
        with client_for(sim) as client:
            created = client.bulk_create("accounts", bodies)
            assert [r.ok for r in created] == [True, True, False, True]
            assert isinstance(created[2].error, SsmRefused)
            assert "Missing required field 'name'" in str(created[2].error)
            gone = created[3].id
            assert gone is not None
            client.delete("accounts", gone)
            before = stats(sim)["calls"]
            items = [(created[0].id, {"city": "Nantes"}), (created[1].id, {"city": "Brest"})]
            updated = client.bulk_update("accounts", [*items, (gone, {"city": "Laval"})])
            assert [r.ok for r in updated] == [True, True, False]
            assert isinstance(updated[2].error, SsmNotFound), updated[2].error
            after = stats(sim)["calls"]
            assert after.get("GET /accounts", 0) == before.get("GET /accounts", 0)
            cities = {r["extId"]: r.get("city") for r in client.list_changed("accounts")}
        assert cities == {"SHAPE:0": "Nantes", "SHAPE:1": "Brest"}
        assert stats(sim)["refusals"] == 2


def unclear(answer: dict[str, Any]) -> dict[str, Any]:
    """An item answer that says neither done nor refused (a message of neither kind)."""
    return {"guid": answer["guid"], "Message": "accepted for processing"}


def test_unclear_create_answers_are_looked_up_by_ext_id_within_the_call(
    simulator: SimulatorProcess,
) -> None:
    """Unclear answers: the records the server created are found by extId and reported
    with their ids; the one it did not create keeps an unknown outcome (never reported
    created, never created twice), which the engine looks up again before re-creating."""
    prefix = unique("UNCLEAR:")
    bodies = [account(f"{prefix}{n}") for n in range(3)]

    def bulk(method: str, items: list[dict[str, Any]], forward: Any) -> list[dict[str, Any]]:
        carried_out = forward([i for i in items if i["data"]["extId"] != f"{prefix}2"])
        return [unclear(a) for a in carried_out] + [unclear(items[2])]

    with BulkProxy(simulator.url, bulk) as proxy, client_for_url(proxy.url, simulator) as client:
        results = client.bulk_create("accounts", bodies)
    held = {
        r["extId"]: r["id"]
        for r in client_for(simulator).list_changed("accounts", ext_prefix=prefix)
    }
    assert ids_of(results[:2]) == [held[f"{prefix}0"], held[f"{prefix}1"]]
    assert f"{prefix}2" not in held
    error = results[2].error
    assert isinstance(error, SsmUnavailable) and error.may_have_acted
    assert "no record found with its extId" in str(error) and "accepted for processing" in str(
        error
    )
    assert unknown_outcome(error)  # the engine looks it up before it creates it again
    assert proxy.bulk_calls == 1
    assert_no_refusals(simulator)


@pytest.mark.ssm_refusals
def test_unclear_update_answers_are_read_back_within_the_call(scratch: SimulatorProcess) -> None:
    """Unclear answers to updates: the record read back as sent is done (a foreign key
    read as {id, value}, a number, a field the record does not echo); one the server did
    not update is refused with the field that differs; a missing one is not found; one
    showing none of the fields sent is not taken as updated."""
    with client_for(scratch) as direct:
        bodies = [account(f"RB:{n}", city="Brest", extra1=3) for n in range(3)]
        ids = ids_of(direct.bulk_create("accounts", bodies))
    change = {"city": "Quimper", "branchId": 3, "extra1": 12.5, "salesOrderId": 9}
    skipped = {ids[1], ids[2]}

    def bulk(method: str, items: list[dict[str, Any]], forward: Any) -> list[dict[str, Any]]:
        forward([i for i in items if i["id"] not in skipped])
        return [unclear(i) for i in items]

    with BulkProxy(scratch.url, bulk) as proxy, client_for_url(proxy.url, scratch) as client:
        items = [(ids[0], change), (ids[1], change), (999, change), (ids[2], {"extra2": "x"})]
        results = client.bulk_update("accounts", items)
    assert results[0].ok and results[0].id == ids[0]
    refused = results[1].error
    assert isinstance(refused, SsmRefused) and not isinstance(refused, SsmNotFound)
    assert f"accounts {ids[1]} read back without the update" in str(refused)
    assert "city is" in str(refused) and "Quimper" in str(refused)
    assert isinstance(results[2].error, SsmNotFound)
    assert "accounts 999 does not exist" in str(results[2].error)
    unverified = results[3].error
    assert isinstance(unverified, SsmRefused) and "shows none of the fields sent" in str(unverified)
    assert proxy.bulk_calls == 1  # read back, never sent again
    assert stats(scratch)["refusals"] == 1  # the update of 999, forwarded and refused


@pytest.mark.parametrize(
    ("sent", "read", "same"),
    [
        (3, {"id": 3, "value": "Agence Bordeaux"}, True),
        (3, {"id": 2, "value": "Agence Lyon"}, False),
        ({"id": 3}, {"id": 3, "value": "Agence Bordeaux"}, True),
        (12.5, "12.50", True),
        (12, 12.0, True),
        (12.5, 12.4, False),
        ("Lyon", "Lyon", True),
        ("Lyon", "lyon", False),
        ("Lyon", "Lyon ", False),
        ("2026-03-14", "2026-03-14T00:00:00.000Z", True),
        ("2026-03-14T10:00:00Z", "2026-03-14T11:00:00+01:00", True),
        ("2026-03-14", "2026-03-15", False),
        (None, "", True),
        ("", None, True),
        (None, {"id": None, "value": ""}, True),
        (None, "Lyon", False),
        (True, True, True),
        (True, 1, False),
        ([{"a": 1}], [{"a": 1, "b": 2}], True),
        ([1, 2], [1], False),
    ],
)
def test_an_update_read_back_compares_what_was_sent(sent: Any, read: Any, same: bool) -> None:
    assert same_value(sent, read) is same


def test_wrong_keys_raise_an_auth_error_without_secrets(simulator: SimulatorProcess) -> None:
    private_key = "very-secret-private-key"
    client = SalesManagementClient(simulator.url, "someone-public", private_key)
    with client, pytest.raises(SsmAuthError) as caught:
        client.get("accounts", 1)
    assert str(caught.value) == f"{simulator.url}: login refused: check the public/private key"
    assert "someone-public" not in repr(client) and private_key not in repr(client)
    assert_no_refusals(simulator)  # a 401 is not a refusal of the request's content


@pytest.mark.ssm_refusals
def test_secrets_stay_out_of_errors_repr_and_logs(
    scratch: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dossiersync.ssm")
    with client_for(scratch) as client:
        client.login()
        token = client._token
        assert token
        with pytest.raises(SsmRefused) as caught:
            client.get("accounts", 987654)
        with pytest.raises(SsmRefused) as refused:
            client.create("accounts", {"name": "x"})
        (bulk,) = client.bulk_create("accounts", [{"name": "x"}])
        texts = [str(caught.value), str(refused.value), str(bulk.error), repr(client), caplog.text]
    assert caplog.records
    for text in texts:
        for secret in (scratch.public_key, scratch.private_key, token):
            assert secret not in text
    assert stats(scratch)["refusals"] == 3


def test_session_expiry_is_answered_with_a_new_login(tmp_path: Path) -> None:
    with (
        running_simulator(str(tmp_path / "ssm.sqlite"), session_ttl=1) as short,
        client_for(short) as client,
    ):
        record_id = client.create("accounts", account(unique("TTL:")))
        time.sleep(1.2)
        assert client.get("accounts", record_id)["id"] == record_id
        assert_no_refusals(short)


def test_random_server_errors_are_retried_away(tmp_path: Path) -> None:
    db = str(tmp_path / "ssm.sqlite")
    prefix = unique("FLAKY:")
    with running_simulator(db) as steady, client_for(steady) as client:
        ids = [client.create("accounts", account(f"{prefix}{n}")) for n in range(15)]
    with (
        running_simulator(db, error_rate=0.3, seed=11) as flaky,
        client_for(flaky, max_retries=8) as client,
    ):
        for n, record_id in enumerate(ids):
            client.update("accounts", record_id, {"city": f"Ville {n}"})
        assert [client.get("accounts", i)["city"] for i in ids] == [f"Ville {n}" for n in range(15)]
        assert len(list(client.list_changed("accounts", ext_prefix=prefix))) == 15
        updated = client.bulk_update("accounts", [(i, {"city": "Rennes"}) for i in ids])
        assert all(r.ok for r in updated)
        assert {r["city"] for r in client.query("accounts", f"extId LIKE '{prefix}%'")} == {
            "Rennes"
        }
        assert_no_refusals(flaky)


def test_a_create_answered_by_a_server_error_is_not_sent_twice(tmp_path: Path) -> None:
    """The server may have created the record before failing: no blind retry."""
    with (
        running_simulator(str(tmp_path / "ssm.sqlite"), error_rate=0.5, seed=3) as flaky,
        client_for(flaky, max_retries=8) as client,
    ):
        prefix = unique("ONCE:")
        outcomes = []
        for n in range(20):
            try:
                client.create("accounts", account(f"{prefix}{n}"))
                outcomes.append("created")
            except SsmUnavailable as exc:
                assert exc.status == 500
                outcomes.append("ambiguous")
        assert "ambiguous" in outcomes
        listed = list(client.list_changed("accounts", ext_prefix=prefix))
        assert len(listed) == outcomes.count("created")
        assert_no_refusals(flaky)


def test_lost_answers_to_creates_leave_no_duplicate(tmp_path: Path) -> None:
    """Every write is carried out, then answered 500 (``lost_answer_rate=1``): the client
    finds the records by extId instead of creating them again, in bulk and one by one."""
    with (
        running_simulator(str(tmp_path / "ssm.sqlite"), lost_answer_rate=1.0) as lossy,
        client_for(lossy) as client,
    ):
        prefix = unique("LOST:")
        bodies = [account(f"{prefix}{n}") for n in range(30)]
        results = client.bulk_create("accounts", bodies)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        listed = list(client.list_changed("accounts", ext_prefix=prefix))
        assert [(r["extId"], r["id"]) for r in listed] == [
            (b["extId"], r.id) for b, r in zip(bodies, results, strict=True)
        ]

        (order,) = client.bulk_create(
            "salesorders", [{"branchId": 1, "reference": "R", "salesRepId": 1, "extId": prefix}]
        )
        (product,) = client.bulk_create("products", [{"model": "M", "extId": prefix}])
        (line,) = client.bulk_create(
            "salesOrdersLines",
            [
                {
                    "salesOrderId": order.id,
                    "productId": product.id,
                    "quantity": 1,
                    "price": 1,
                    "extId": prefix,
                }
            ],
        )
        assert order.ok and product.ok and line.ok
        for resource in ("salesorders", "products", "salesOrdersLines"):
            assert len(list(client.list_changed(resource, ext_prefix=prefix))) == 1

        (anonymous,) = client.bulk_create("accounts", [account("x", extId=None)])
        assert isinstance(anonymous.error, SsmUnavailable)  # no extId: cannot be found
        assert_no_refusals(lossy)


def test_persistent_server_errors_end_in_unavailable(tmp_path: Path) -> None:
    with (
        running_simulator(str(tmp_path / "ssm.sqlite"), error_rate=1.0) as broken,
        client_for(broken, max_retries=2) as client,
    ):
        with pytest.raises(SsmUnavailable) as caught:
            client.get("users", 1)
        assert caught.value.status in (500, 503)
        assert "3 attempt" in str(caught.value)
        assert not caught.value.may_have_acted  # a read failing throughout: an outage


def test_rate_limit_is_waited_out(tmp_path: Path) -> None:
    with (
        running_simulator(str(tmp_path / "ssm.sqlite"), rate_limit=3) as limited,
        client_for(limited) as client,
    ):
        started = time.monotonic()
        for _ in range(5):
            assert client.get("users", 1)["id"] == 1
        assert time.monotonic() - started >= 0.9
        assert_no_refusals(limited)


def test_clients_of_one_tenant_share_its_request_budget(tmp_path: Path) -> None:
    """Each dossier's sync has a client of its own, and the service runs several at a
    time: together they stay within the configured rate, which the tenant enforces."""
    with running_simulator(str(tmp_path / "ssm.sqlite"), rate_limit=5) as limited:
        clients = [client_for(limited, max_requests_per_second=5) for _ in range(3)]
        try:
            assert clients[0]._pacer is clients[1]._pacer is clients[2]._pacer
            for client in clients:
                client.login()
            with ThreadPoolExecutor(max_workers=3) as pool:
                list(pool.map(lambda c: [c.get("users", 1) for _ in range(6)], clients))
            # 18 requests at most 5 a second, never one refused with a 429
            assert stats(limited)["refusals"] == 0, stats(limited)["reasons"]
        finally:
            for client in clients:
                client.close()


def test_many_threads_share_one_client(
    client: SalesManagementClient, simulator: SimulatorProcess
) -> None:
    prefix = unique("THREADS:")
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(
            pool.map(lambda n: client.create("accounts", account(f"{prefix}{n}")), range(40))
        )
        assert len(set(ids)) == 40
        counts = list(
            pool.map(
                lambda size: len(
                    list(client.query("accounts", f"extId LIKE '{prefix}%'", page_size=size))
                ),
                [3, 7, 40, 500] * 2,
            )
        )
    assert counts == [40] * 8
    assert len(list(client.list_changed("accounts", ext_prefix=prefix))) == 40
    assert_no_refusals(simulator)


def test_unreachable_api_is_unavailable() -> None:
    client = SalesManagementClient(
        "http://127.0.0.1:9/api/v4", "k", "s", max_retries=1, backoff_base=0.01, timeout=1
    )
    with client, pytest.raises(SsmUnavailable, match="check the API URL"):
        client.login()


# --- paging: the end of a list is unpublished (S1) ------------------------------------------


@pytest.mark.parametrize(
    ("total", "requests"),
    [(0, 1), (1, 2), (6, 2), (7, 2), (8, 2), (14, 3), (20, 3), (21, 4)],
)
def test_a_server_capping_pages_below_the_asked_size_is_read_to_the_end(
    total: int, requests: int
) -> None:
    """No ``X-FM-Next-Page`` at all; 500 asked, 7 answered: a page of 7 is a full page."""
    api = PagedApi(total, cap=7)
    with api.client(page_size=500) as client:
        listed = list(client.query("accounts"))
    assert [r["id"] for r in listed] == list(range(1, total + 1))
    assert api.pages == list(range(requests))
    assert api.sizes == ["500"] * requests


def test_an_empty_list_costs_one_request() -> None:
    api = PagedApi(0)
    with api.client() as client:
        assert list(client.query("accounts", where="extId = 'nothing'")) == []
    assert api.calls == 1


@pytest.mark.parametrize("size", [1, 5, 50])
def test_an_exact_multiple_of_the_page_size_ends_on_the_empty_page(size: int) -> None:
    api = PagedApi(size * 3)
    with api.client() as client:
        listed = list(client.query("accounts", page_size=size))
    assert [r["id"] for r in listed] == list(range(1, size * 3 + 1))
    assert api.pages == [0, 1, 2, 3]
    assert api.sizes == [str(size)] * 4


def test_a_short_page_ends_the_list_once_the_page_size_is_known() -> None:
    """After the client has seen 7-record pages, a 3-record page is the last one."""
    api = PagedApi(20, cap=7)
    with api.client() as client:
        assert len(list(client.query("accounts"))) == 20
        api.records = api.records[:3]
        api.pages.clear()
        assert [r["id"] for r in client.query("accounts")] == [1, 2, 3]
        assert api.pages == [0]
        api.records = api.records[:0]
        api.pages.clear()
        assert list(client.query("accounts")) == []
        assert api.pages == [0]


def test_a_smaller_requested_size_than_the_cap_is_sent_and_honoured() -> None:
    api = PagedApi(12, cap=7)
    with api.client(page_size=500) as client:
        assert len(list(client.query("accounts"))) == 12  # learns the cap: 7
        api.pages.clear()
        api.sizes.clear()
        assert [r["id"] for r in client.query("accounts", page_size=5)] == list(range(1, 13))
    assert api.pages == [0, 1, 2]
    assert api.sizes == ["5", "5", "5"]


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (3, 1), (7, 1), (14, 2), (20, 3)])
def test_next_page_equal_to_the_current_one_ends_the_list(total: int, requests: int) -> None:
    """An older API announced the current page again on the last one (S3)."""
    api = PagedApi(total, cap=7, next_page="repeat")
    with api.client() as client:
        assert [r["id"] for r in client.query("accounts")] == list(range(1, total + 1))
    assert api.pages == list(range(requests))


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (7, 2), (14, 3), (20, 3)])
def test_next_page_is_only_a_hint(total: int, requests: int) -> None:
    """Sent on every page but the last: its absence is not trusted as the end of the list."""
    api = PagedApi(total, cap=7, next_page="next")
    with api.client() as client:
        assert [r["id"] for r in client.query("accounts")] == list(range(1, total + 1))
    assert api.pages == list(range(requests))


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (7, 2), (14, 3), (20, 3)])
def test_a_next_page_hint_that_always_says_more_does_not_loop(total: int, requests: int) -> None:
    api = PagedApi(total, cap=7, next_page="always")
    with api.client() as client:
        assert [r["id"] for r in client.query("accounts")] == list(range(1, total + 1))
    assert api.pages == list(range(requests))


@pytest.mark.parametrize(("total", "cap"), [(3, 500), (7, 7), (20, 7)])
def test_a_server_ignoring_the_page_parameter_does_not_loop(total: int, cap: int) -> None:
    """The same page comes back: the client stops at the first repeat, yielding it once."""
    api = PagedApi(total, cap=cap, ignore_page=True)
    with api.client() as client:
        listed = list(client.query("accounts"))
    assert [r["id"] for r in listed] == list(range(1, min(total, cap) + 1))
    assert api.pages == [0, 1]


def test_query_sends_where_order_page_and_size() -> None:
    api = PagedApi(3)
    with api.client(page_size=7) as client:
        assert [r["id"] for r in client.query("accounts", where="a = 1", order="name")] == [1, 2, 3]
    params = [dict(r.url.params) for r in api.requests]
    assert params == [{"page": "0", "where": "a = 1", "order": "name"}] + [
        {"page": "1", "where": "a = 1", "order": "name"}
    ]
    assert [r.headers["X-FM-Entity-Count"] for r in api.requests] == ["7", "7"]
    assert [r.url.path for r in api.requests] == ["/api/v4/accounts"] * 2


def test_query_is_lazy_and_one_page_ahead_with_a_fake() -> None:
    """Nothing is asked before the first record is; then the next page is asked for
    while the caller works on the current one, and no further."""
    api = PagedApi(20, cap=7)
    with api.client() as client:
        pages = client.query("accounts")
        assert api.calls == 0
        assert [next(pages)["id"] for _ in range(7)] == list(range(1, 8))
        deadline = time.monotonic() + 5
        while api.pages != [0, 1] and time.monotonic() < deadline:
            time.sleep(0.01)  # page 1 is asked for in the background
        assert api.pages == [0, 1]
        assert next(pages)["id"] == 8
        pages.close()  # a list left early waits for the page in flight, asks no more
        assert api.pages == [0, 1, 2]


def test_a_list_answer_that_is_not_a_list_is_an_error() -> None:
    api = FakeApi(lambda request: httpx.Response(200, json={"Message": "?"}))
    with api.client() as client, pytest.raises(SsmError, match="something else than a list"):
        list(client.query("accounts"))


# --- where= filters: documented operators only (S1) -----------------------------------------


def captured_wheres(call: Callable[[SalesManagementClient], Any]) -> list[str | None]:
    api = FakeApi(lambda request: httpx.Response(200, json=[]))
    with api.client() as client:
        call(client)
    return api.wheres()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, None),
        ({"ext_prefix": "ACME:"}, "extId LIKE 'ACME:%'"),
        ({"ext_prefix": "O'Neil:"}, "extId LIKE 'O''Neil:%'"),
        (
            {"ext_prefix": "A:", "equals": {"branchId": 2, "name": "Dupont & fils"}},
            "extId LIKE 'A:%' AND branchId = 2 AND name = 'Dupont & fils'",
        ),
        (
            {"since": "2026-03-01T10:00:00.250Z", "overlap_seconds": 5},
            "dateUpdated > '2026-03-01T09:59:55.250Z'",
        ),
        (
            {"since": "2026-03-01T10:00:00.000Z", "deleted": True},
            "dateUpdated > '2026-03-01T10:00:00.000Z' OR dateDeleted > '2026-03-01T10:00:00.000Z'",
        ),
        (
            {
                "ext_prefix": "D1:",
                "equals": {"typeId": 1},
                "since": "2026-01-01T00:00:02.000Z",
                "overlap_seconds": 3,
                "deleted": True,
            },
            "extId LIKE 'D1:%' AND typeId = 1 AND dateUpdated > '2025-12-31T23:59:59.000Z'"
            " OR extId LIKE 'D1:%' AND typeId = 1 AND dateDeleted > '2025-12-31T23:59:59.000Z'",
        ),
        ({"deleted": True, "ext_prefix": "Z:"}, "extId LIKE 'Z:%'"),
    ],
)
def test_list_changed_sends_only_documented_operators(
    options: dict[str, Any], expected: str | None
) -> None:
    wheres = captured_wheres(lambda client: list(client.list_changed("accounts", **options)))
    assert wheres == [expected]
    if expected is not None:
        assert_documented_where(expected)


def test_list_changed_refuses_what_where_cannot_say() -> None:
    api = FakeApi(lambda request: httpx.Response(200, json=[]))
    with api.client() as client:
        with pytest.raises(ValueError, match="boolean"):
            list(client.list_changed("accounts", equals={"readOnly": True}))
        with pytest.raises(ValueError, match="field name"):
            list(client.list_changed("accounts", equals={"name = 'x' OR id": 1}))
    assert api.calls == 0


def test_find_asks_forty_values_a_request_with_or_of_equals() -> None:
    ext_ids = [f"E{n}" for n in range(85)] + ["E0", "it's"]
    wheres = captured_wheres(lambda client: list(client.find("accounts", ext_ids=ext_ids)))
    assert len(wheres) == 3
    terms = [w.split(" OR ") for w in wheres if w]
    assert [len(t) for t in terms] == [40, 40, 6]
    assert terms[0][:2] == ["extId = 'E0'", "extId = 'E1'"]
    assert terms[2][-1] == "extId = 'it''s'"
    for where in wheres:
        assert where is not None
        assert_documented_where(where)


def test_find_by_ids_and_ext_ids_together() -> None:
    wheres = captured_wheres(
        lambda client: list(client.find("accounts", ext_ids=["A", "B"], ids=[7, 7, 9]))
    )
    assert wheres == ["extId = 'A' OR extId = 'B' OR id = 7 OR id = 9"]
    assert_documented_where(wheres[0])


def test_find_without_values_asks_nothing() -> None:
    assert captured_wheres(lambda client: list(client.find("accounts"))) == []


def test_find_keeps_live_records_that_were_asked_for() -> None:
    records = [
        {"id": 1, "extId": "A", "deleted": False},
        {"id": 2, "extId": "B", "deleted": True},
        {"id": 3, "extId": "C", "deleted": False},  # not asked for: a server being loose
        {"id": 9, "extId": None, "deleted": False},
    ]
    api = PagedApi(0, records=records)
    with api.client() as client:
        found = list(client.find("accounts", ext_ids=["A", "B"], ids=[9]))
    assert [r["id"] for r in found] == [1, 9]


def test_list_changed_filters_deleted_records_foreign_prefixes_and_repeats() -> None:
    """The server lists deleted records (S2) and LIKE treats ``_`` as a wildcard."""
    records = [
        {"id": 1, "extId": "A_1", "deleted": False},
        {"id": 2, "extId": "A_2", "deleted": True, "dateDeleted": "2026-01-01T00:00:00.000Z"},
        {"id": 3, "extId": "AB3", "deleted": False},  # matches LIKE 'A_%', not the prefix
        {"id": 4, "extId": None, "deleted": False},
        {"id": 1, "extId": "A_1", "deleted": False},  # moved to the next page while read
        {"id": 5, "extId": "A_5", "deleted": False},
    ]
    api = PagedApi(0, cap=2, records=records)
    with api.client() as client:
        live = [r["id"] for r in client.list_changed("accounts", ext_prefix="A_")]
        everything = [
            r["id"] for r in client.list_changed("accounts", ext_prefix="A_", deleted=True)
        ]
        unfiltered = [r["id"] for r in client.list_changed("accounts")]
    assert live == [1, 5]
    assert everything == [1, 2, 5]
    assert unfiltered == [1, 3, 4, 5]


# --- bulk writes (S2: Bulk Create/Update Resources, Bulk Create/Update Products) ------------


@pytest.mark.parametrize(
    ("resource", "limit"),
    [
        ("accounts", 200),
        ("contacts", 200),
        ("salesorders", 200),
        ("productFamilies", 200),
        ("productfamilies", 200),
        ("products", 100),
        ("Products", 100),
        ("salesOrdersLines", 1),
        ("users", 1),
    ],
)
def test_bulk_limits(resource: str, limit: int) -> None:
    with FakeApi(lambda request: httpx.Response(500)).client() as client:
        assert client.bulk_limit(resource) == limit


def test_bulk_create_frames_items_with_guid_and_data() -> None:
    api = BulkApi()
    bodies = [account(f"A{n}", city="Lille") for n in range(3)]
    with api.client() as client:
        results = client.bulk_create("accounts", bodies)
    assert results == [WriteResult(101), WriteResult(102), WriteResult(103)]
    (sent,) = api.bulk_bodies("POST")
    assert [set(item) for item in sent] == [{"guid", "data"}] * 3
    assert [item["data"] for item in sent] == bodies
    guids = [item["guid"] for item in sent]
    assert len(set(guids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", g) for g in guids)
    assert [(r.method, r.url.path) for r in api.requests] == [("POST", "/api/v4/accounts/bulk")]


def test_bulk_update_frames_items_with_guid_id_and_data() -> None:
    api = BulkApi()
    items = [(11, {"city": "Lyon"}), (12, {"phone": "01"})]
    with api.client() as client:
        results = client.bulk_update("accounts", items)
    assert results == [WriteResult(11), WriteResult(12)]
    (sent,) = api.bulk_bodies("PUT")
    assert [set(item) for item in sent] == [{"guid", "id", "data"}] * 2
    assert [(item["id"], item["data"]) for item in sent] == items
    assert len({item["guid"] for item in sent}) == 2
    assert [(r.method, r.url.path) for r in api.requests] == [("PUT", "/api/v4/accounts/bulk")]


@pytest.mark.parametrize(
    ("resource", "count", "chunks"),
    [
        ("accounts", 450, [200, 200, 50]),
        ("accounts", 400, [200, 200]),
        ("contacts", 1, [1]),
        ("products", 250, [100, 100, 50]),
        ("products", 100, [100]),
    ],
)
def test_bulk_calls_are_chunked_at_the_limit(resource: str, count: int, chunks: list[int]) -> None:
    api = BulkApi()
    bodies = [{"model": f"M{n}", "extId": f"P{n}"} for n in range(count)]
    with api.client() as client:
        created = client.bulk_create(resource, bodies)
        updated = client.bulk_update(resource, [(r.id, {"price": 1}) for r in created])
    assert [len(b) for b in api.bulk_bodies("POST")] == chunks
    assert [len(b) for b in api.bulk_bodies("PUT")] == chunks
    assert [api.records[r.id]["extId"] for r in created] == [b["extId"] for b in bodies]
    assert [r.id for r in updated] == [r.id for r in created]
    assert all(r.ok for r in created + updated)
    sent = [i["guid"] for b in api.bulk_bodies("POST") for i in b]
    assert len(set(sent)) == count


def test_nothing_to_write_sends_nothing() -> None:
    api = BulkApi()
    with api.client() as client:
        assert client.bulk_create("accounts", []) == []
        assert client.bulk_update("products", []) == []
        assert client.bulk_create("salesOrdersLines", []) == []
    assert api.calls == 0 and api.logins == 0


def test_bulk_answers_are_matched_by_guid_in_any_order() -> None:
    api = BulkApi()
    api.order = lambda answers: random.Random(7).sample(answers, len(answers))
    bodies = [account(f"S{n}") for n in range(30)]
    with api.client() as client:
        created = client.bulk_create("accounts", bodies)
        updated = client.bulk_update("accounts", [(r.id, {"city": "X"}) for r in created])
    assert [api.records[r.id]["extId"] for r in created] == [b["extId"] for b in bodies]
    assert [r.id for r in updated] == [r.id for r in created]
    assert all(r.ok for r in updated)


def test_one_refused_item_fails_alone() -> None:
    api = BulkApi()

    def refuse_second(item: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if item["data"].get("extId") == "R1" or item.get("id") == 102:
            return {"guid": item["guid"], "statusCode": 400, "Message": "Missing 'name' (priv)"}
        return answer

    api.item_answer = refuse_second
    with api.client() as client:
        created = client.bulk_create("accounts", [account(f"R{n}") for n in range(3)])
        updated = client.bulk_update("accounts", [(101, {}), (102, {}), (103, {})])
    assert [r.ok for r in created] == [True, False, True]
    assert [r.ok for r in updated] == [True, False, True]
    for failed in (created[1], updated[1]):
        assert isinstance(failed.error, SsmRefused)
        assert failed.error.status == 400
        assert "Missing 'name'" in str(failed.error) and "priv" not in str(failed.error)
    assert created[0].id is not None and created[2].id is not None
    assert len(api.bulk_bodies("POST")) == 1  # a record-level refusal is not retried


@pytest.mark.parametrize(
    "answer",
    [
        None,  # missing from the answers
        {"statusCode": 200, "Message": "entity created"},  # success without an id
        {"statusCode": "oops", "id": 555},
        {"statusCode": 200, "id": "not-an-id"},
        {"id": 555, "Message": "queued"},  # a message saying neither
        {"statusCode": 200, "id": 555, "error": "Bad Request"},  # both ways
        {"statusCode": 302, "id": 555},
    ],
)
def test_an_item_without_a_clear_answer_is_looked_up_by_ext_id(
    answer: dict[str, Any] | None,
) -> None:
    """Neither done nor refused: the record is looked up by extId within the call, found
    (the fake created it), and reported with the id found; nothing is posted twice."""
    api = BulkApi()

    def unclear(item: dict[str, Any], default: dict[str, Any]) -> dict[str, Any] | None:
        if item["data"]["extId"] != "U1":
            return default
        return None if answer is None else {"guid": item["guid"], **answer}

    api.item_answer = unclear
    with api.client() as client:
        results = client.bulk_create("accounts", [account(f"U{n}") for n in range(3)])
    assert [r.ok for r in results] == [True, True, True]
    assert ids_of(results) == [101, 102, 103]
    assert len(api.bulk_bodies("POST")) == 1
    assert [r.method for r in api.requests][1:] and set(api.wheres()) == {"extId = 'U1'"}


@pytest.mark.parametrize(
    "answer",
    [
        {"id": 555, "Message": "entity created"},  # the wording of a single create
        {"id": 555},
        {"id": "555", "status": "success"},
        {"statusCode": "200", "id": 555, "message": "Created", "error": None},
    ],
)
def test_an_item_naming_its_new_id_without_an_error_sign_is_done(answer: dict[str, Any]) -> None:
    api = BulkApi()
    api.item_answer = lambda item, default: {"guid": item["guid"], **answer}
    with api.client() as client:
        results = client.bulk_create("accounts", [account("D1")])
    assert ids_of(results) == [555] and results[0].ok
    assert [r.method for r in api.requests] == ["POST"]  # nothing to verify


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": 400, "Message": "Missing required field 'name'"},
        {"Message": "Missing required field 'name'"},  # no status: the wording says it
        {"error": "Missing required field 'name'"},
        {"statusCode": 400, "message": "Missing required field 'name'", "error": "Bad Request"},
        {"status": "error", "errors": ["Missing required field 'name'"]},
        {"success": False, "message": "Missing required field 'name'"},
    ],
)
def test_an_item_with_an_error_sign_and_no_success_sign_fails_alone(
    answer: dict[str, Any],
) -> None:
    api = BulkApi()

    def refuse(item: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
        return {"guid": item["guid"], **answer} if item["data"]["extId"] == "F1" else default

    api.item_answer = refuse
    with api.client() as client:
        results = client.bulk_create("accounts", [account(f"F{n}") for n in range(3)])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, SsmRefused)
    assert "Missing required field 'name'" in str(results[1].error)
    assert [r.method for r in api.requests] == ["POST"]  # refused: not looked up


def test_an_item_answered_5xx_is_looked_up_by_ext_id() -> None:
    """A 5xx for one item says nothing of whether it was created: it is looked up by
    extId, found, and reported created; the other items are not looked up."""
    api = BulkApi()

    def failed(item: dict[str, Any], default: dict[str, Any]) -> dict[str, Any] | None:
        if item["data"]["extId"] != "U1":
            return default
        return {"guid": item["guid"], "statusCode": 500, "id": 555, "Message": "failed"}

    api.item_answer = failed
    with api.client() as client:
        results = client.bulk_create("accounts", [account(f"U{n}") for n in range(3)])
    assert [r.ok for r in results] == [True, True, True]
    assert api.requests[0].method == "POST"
    lookups = [r.url.params["where"] for r in api.requests[1:]]
    assert lookups and all(r.method == "GET" for r in api.requests[1:])
    assert all(where == "extId = 'U1'" for where in lookups)


def test_an_update_item_missing_from_the_answers_is_read_back() -> None:
    """No answer for record 2: it is read back (``id = 2``); the fake holds no such record,
    so it is reported not found, never done."""
    api = BulkApi()
    api.item_answer = lambda item, answer: None if item["id"] == 2 else answer
    with api.client() as client:
        results = client.bulk_update("accounts", [(1, {"a": 1}), (2, {"a": 2}), (3, {"a": 3})])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, SsmNotFound)
    assert set(api.wheres()) == {"id = 2"}


def test_a_bulk_answer_that_is_not_a_list_leaves_every_item_unknown() -> None:
    """Every record may have been created: each stays an unknown outcome (the look-up by
    extId is answered with no list either), for the engine to look up again."""
    api = FakeApi(lambda request: httpx.Response(200, json={"Message": "done"}))
    with api.client() as client:
        results = client.bulk_create("accounts", [account("N1"), account("N2")])
    assert all(isinstance(r.error, SsmUnavailable) and r.error.may_have_acted for r in results)
    assert [r.method for r in api.requests] == ["POST", "GET"]


@pytest.mark.parametrize("outcome", [500, 502, 504, "timeout"])
def test_an_ambiguous_bulk_create_is_looked_up_by_ext_id_not_sent_again(
    outcome: int | str,
) -> None:
    """The server carried out the bulk call and then failed (or went silent): the records
    are found by extId and reported created; none is posted a second time."""
    api = BulkApi()
    api.faults = [(outcome, True)]
    bodies = [account("K1"), account("K'2"), account("K3", extId=None)]
    with api.client() as client:
        results = client.bulk_create("accounts", bodies)
    assert [r.id for r in results[:2]] == [101, 102]
    assert results[0].ok and results[1].ok
    assert isinstance(results[2].error, SsmUnavailable)  # no extId: the outcome stays unknown
    assert len(api.bulk_bodies("POST")) == 1
    assert len(api.records) == 3
    lookups = api.wheres()
    assert lookups and set(lookups) == {"extId = 'K1' OR extId = 'K''2'"}
    assert_documented_where(lookups[0])


def test_an_ambiguous_bulk_create_that_created_part_reports_the_rest_as_unknown() -> None:
    api = BulkApi()
    api.faults = [(500, True)]
    bodies = [account(f"H{n}") for n in range(4)]
    with api.client() as client:
        original = api._create

        def create_half(data: dict[str, Any]) -> int:
            new_id = original(data)
            if data["extId"] in ("H1", "H3"):
                del api.records[new_id]
            return new_id

        api._create = create_half
        results = client.bulk_create("accounts", bodies)
    assert [r.ok for r in results] == [True, False, True, False]
    assert [r.id for r in results if r.ok] == [101, 103]
    assert all(isinstance(r.error, SsmUnavailable) for r in results if not r.ok)
    assert len(api.bulk_bodies("POST")) == 1


def test_an_ambiguous_bulk_create_that_created_nothing_is_not_retried() -> None:
    api = BulkApi()
    api.faults = [(500, False)]
    with api.client() as client:
        results = client.bulk_create("accounts", [account("Z1"), account("Z2")])
    assert all(isinstance(r.error, SsmUnavailable) and r.error.status == 500 for r in results)
    # the server may have acted: the engine looks the records up, it is no outage
    assert all(getattr(r.error, "may_have_acted", False) for r in results)
    assert len(api.bulk_bodies("POST")) == 1
    assert api.records == {}


def test_a_failing_look_up_after_an_ambiguous_bulk_keeps_the_error() -> None:
    api = BulkApi()
    api.faults = [(500, True)]
    route = api.route

    def lookups_fail(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(503, json={"Message": "down"})
        return route(request)

    api.answer = lookups_fail
    with api.client(max_retries=1) as client:
        results = client.bulk_create("accounts", [account("L1")])
    assert isinstance(results[0].error, SsmUnavailable)
    assert len(api.bulk_bodies("POST")) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_bulk_create_surely_not_processed_is_retried(status: int) -> None:
    api = BulkApi()
    api.faults = [(status, False)]
    with api.client() as client:
        results = client.bulk_create("accounts", [account("T1"), account("T2")])
    assert results == [WriteResult(101), WriteResult(102)]
    assert len(api.bulk_bodies("POST")) == 2
    assert [r.method for r in api.requests] == ["POST", "POST"]


def test_a_bulk_create_that_never_reached_the_server_is_retried() -> None:
    api = BulkApi()
    api.faults = [("connect", False)]
    with api.client() as client:
        results = client.bulk_create("accounts", [account("C1")])
    assert results == [WriteResult(101)]
    assert len(api.bulk_bodies("POST")) == 2


@pytest.mark.parametrize("outcome", [500, "timeout"])
def test_a_failing_bulk_update_is_retried(outcome: int | str) -> None:
    """A partial update sent twice changes nothing more: PUT is retried."""
    api = BulkApi()
    api.faults = [(outcome, True)]
    with api.client() as client:
        results = client.bulk_update("accounts", [(5, {"city": "Metz"})])
    assert results == [WriteResult(5)]
    assert len(api.bulk_bodies("PUT")) == 2


@pytest.mark.parametrize("status", [400, 404, 413])
def test_a_refused_bulk_call_fails_every_item(status: int) -> None:
    api = BulkApi()
    api.faults = [(status, False), (status, False)]
    with api.client() as client:
        created = client.bulk_create("accounts", [account("W1"), account("W2")])
        updated = client.bulk_update("accounts", [(1, {}), (2, {})])
    for result in created + updated:
        assert isinstance(result.error, SsmRefused)
        assert result.error.status == status
        assert f"simulated {status}" in str(result.error)
    assert [r.method for r in api.requests] == ["POST", "PUT"]  # no retry, no look-up


def test_a_bulk_call_refused_for_the_session_twice_is_an_auth_error() -> None:
    api = FakeApi(lambda request: httpx.Response(401, json={"Message": "no"}))
    with api.client() as client:
        results = client.bulk_create("accounts", [account("V1"), account("V2")])
    assert all(isinstance(r.error, SsmAuthError) for r in results)
    assert api.logins == 2


def test_resources_without_bulk_get_single_creates_and_updates() -> None:
    api = BulkApi()
    api.single_refusals = {"L2"}
    bodies = [
        {"salesOrderId": 1, "productId": 1, "quantity": 1, "extId": f"L{n}"} for n in range(4)
    ]
    with api.client() as client:
        created = client.bulk_create("salesOrdersLines", bodies)
        updated = client.bulk_update("salesOrdersLines", [(101, {"quantity": 2}), (102, {})])
    assert [r.id for r in created] == [101, 102, None, 103]
    assert isinstance(created[2].error, SsmRefused) and created[2].error.status == 400
    assert updated == [WriteResult(101), WriteResult(102)]
    sent = [(r.method, r.url.path) for r in api.requests]
    assert sent == [("POST", "/api/v4/salesOrdersLines")] * 4 + [
        ("PUT", "/api/v4/salesOrdersLines/101"),
        ("PUT", "/api/v4/salesOrdersLines/102"),
    ]
    assert [json.loads(r.content) for r in api.requests[:4]] == bodies


def test_an_ambiguous_single_create_is_looked_up_by_ext_id() -> None:
    api = BulkApi()
    api.faults = [(500, True), ("timeout", False)]
    bodies = [{"quantity": 1, "extId": "S1"}, {"quantity": 1, "extId": "S2"}, {"extId": "S3"}]
    with api.client() as client:
        results = client.bulk_create("salesOrdersLines", bodies)
    assert results[0] == WriteResult(101)  # created, answer lost: found
    assert isinstance(results[1].error, SsmUnavailable)  # not created: still unknown
    assert results[2] == WriteResult(102)
    posts = [json.loads(r.content)["extId"] for r in api.requests if r.method == "POST"]
    assert posts == ["S1", "S2", "S3"]


# --- transport-level behaviour with a fake server -------------------------------------------


def test_login_sends_the_keys_and_every_call_the_session_key() -> None:
    seen: list[tuple[str, str | None, Any]] = []

    def transport(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.url.path, request.headers.get("X-Session-Key"), body))
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"token": "tok"})
        return httpx.Response(200, json={"id": 3})

    client = SalesManagementClient(
        API_URL + "/", "pub", "priv", transport=httpx.MockTransport(transport)
    )
    with client:
        assert client.get("accounts", 3) == {"id": 3}
        assert client.get("accounts", 3) == {"id": 3}
    assert seen == [
        ("/api/v4/login", None, {"username": "pub", "password": "priv"}),
        ("/api/v4/accounts/3", "tok", None),
        ("/api/v4/accounts/3", "tok", None),
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_keys_are_an_auth_error(status: int) -> None:
    client = SalesManagementClient(
        API_URL,
        "pub",
        "priv",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json={})),
    )
    with client, pytest.raises(SsmAuthError, match="login refused") as caught:
        client.login()
    assert caught.value.status == status


def test_a_login_answer_without_a_token_is_an_error() -> None:
    client = SalesManagementClient(
        API_URL,
        "pub",
        "priv",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": 1})),
    )
    with client, pytest.raises(SsmError, match="without a session token"):
        client.login()


def test_retry_after_is_honoured() -> None:
    api = failing_then([429], headers={"Retry-After": "1"})
    with api.client(backoff_max=5) as client:
        started = time.monotonic()
        assert client.get("accounts", 1) == {"id": 1}
        assert time.monotonic() - started >= 1.0


def test_retry_after_as_an_http_date_is_honoured() -> None:
    api = failing_then([503], headers={"Retry-After": formatdate(time.time() + 3, usegmt=True)})
    with api.client(backoff_max=30) as client:
        waits: list[float] = []
        client._sleep = waits.append
        assert client.get("accounts", 1) == {"id": 1}
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.0


def test_retry_after_is_capped_by_backoff_max() -> None:
    api = failing_then([503, 429], headers={"Retry-After": "120"})
    with api.client(backoff_max=0.05) as client:
        waits: list[float] = []
        client._sleep = waits.append
        assert client.get("accounts", 1) == {"id": 1}
    assert waits == [0.05, 0.05]
    assert api.calls == 3


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    api = failing_then([503] * 6)
    with api.client(backoff_base=0.1, backoff_max=1.0, max_retries=6) as client:
        waits: list[float] = []
        client._sleep = waits.append
        assert client.get("accounts", 1) == {"id": 1}
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(waits) == 6
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    # jitter: threads retrying together do not all come back at the same instant
    assert any(wait < ceiling for wait, ceiling in zip(waits, ceilings, strict=True))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status: int) -> None:
    api = failing_then([status, status])
    with api.client() as client:
        assert client.get("accounts", 1) == {"id": 1}
    assert api.calls == 3


def test_retries_stop_after_max_retries() -> None:
    api = failing_then([503] * 10)
    with api.client(max_retries=3) as client, pytest.raises(SsmUnavailable) as caught:
        client.get("accounts", 1)
    assert api.calls == 4
    assert caught.value.status == 503 and "4 attempt" in str(caught.value)


def test_no_retry_at_all_when_max_retries_is_zero() -> None:
    api = failing_then([503])
    with api.client(max_retries=0) as client, pytest.raises(SsmUnavailable):
        client.get("accounts", 1)
    assert api.calls == 1


def test_timeouts_are_retried() -> None:
    attempts = iter([True, True, False])

    def answer(request: httpx.Request) -> httpx.Response:
        if next(attempts):
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"id": 1})

    with FakeApi(answer).client() as client:
        assert client.get("accounts", 1) == {"id": 1}


@pytest.mark.parametrize(("status", "calls"), [(500, 1), (502, 1), (504, 1), (503, 2), (429, 2)])
def test_a_create_is_retried_only_when_surely_not_processed(status: int, calls: int) -> None:
    api = failing_then([status])
    with api.client() as client:
        if calls == 1:
            with pytest.raises(SsmUnavailable) as caught:
                client.create("accounts", {"name": "ACME"})
            assert caught.value.status == status
        else:
            assert client.create("accounts", {"name": "ACME"}) == 1
    assert api.calls == calls


def test_a_create_without_an_answer_is_not_retried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    api = FakeApi(answer)
    with api.client() as client, pytest.raises(SsmUnavailable, match="ReadTimeout"):
        client.create("accounts", {"name": "ACME"})
    assert api.calls == 1


def test_a_create_that_could_not_connect_is_retried() -> None:
    attempts = iter([True, False])

    def answer(request: httpx.Request) -> httpx.Response:
        if next(attempts):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"Message": "entity created", "id": 131})

    api = FakeApi(answer)
    with api.client() as client:
        assert client.create("accounts", {"name": "ACME"}) == 131
    assert api.calls == 2


@pytest.mark.parametrize("method", ["update", "delete"])
def test_updates_and_deletes_are_retried_after_a_server_error(method: str) -> None:
    api = failing_then([500, 502])
    with api.client() as client:
        if method == "update":
            client.update("accounts", 1, {"city": "Lyon"})
        else:
            client.delete("accounts", 1)
    assert api.calls == 3
    assert {r.method for r in api.requests} == {"PUT" if method == "update" else "DELETE"}


def test_other_client_errors_are_refused_at_once() -> None:
    api = failing_then([404])
    with api.client() as client, pytest.raises(SsmRefused, match="busy") as caught:
        client.get("accounts", 1)
    assert caught.value.status == 404
    assert api.calls == 1


def test_both_error_bodies_of_the_api_are_read() -> None:
    """S2: ``{"Message": …}`` or ``{"statusCode": 400, "message": …, "error": …}``."""
    bodies = iter(
        [
            {"Message": "910: resource does not exist"},
            {"statusCode": 400, "message": "name is required", "error": "Bad Request"},
        ]
    )
    api = FakeApi(lambda request: httpx.Response(400, json=next(bodies)))
    with api.client() as client:
        with pytest.raises(SsmRefused, match="910: resource does not exist"):
            client.get("nothing", 1)
        with pytest.raises(SsmRefused, match="name is required"):
            client.create("accounts", {})


def test_an_expired_session_is_renewed_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["X-Session-Key"] == "token-1":
            return httpx.Response(401, json={"Message": "expired"})
        return httpx.Response(200, json={"id": 1})

    api = FakeApi(answer)
    with api.client() as client:
        assert client.get("accounts", 1) == {"id": 1}
        assert client.get("accounts", 1) == {"id": 1}
    assert api.logins == 2


def test_threads_hitting_an_expired_session_log_in_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        time.sleep(0.005)
        if request.headers["X-Session-Key"] == "token-1":
            return httpx.Response(401, json={"Message": "expired"})
        return httpx.Response(200, json={"id": 1})

    api = FakeApi(answer)
    with api.client(max_concurrency=8) as client:
        client.login()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: client.get("accounts", 1), range(16)))
    assert answers == [{"id": 1}] * 16
    assert api.logins == 2


def test_a_list_call_renewed_after_401_keeps_its_page_size_and_filter() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["X-Session-Key"] == "token-1":
            return httpx.Response(401, json={"Message": "expired"})
        return httpx.Response(200, json=[])

    api = FakeApi(answer)
    with api.client(page_size=9) as client:
        assert list(client.query("accounts", where="extId = 'A'", order="name")) == []
    assert api.logins == 2
    assert [
        (r.headers["X-Session-Key"], r.headers["X-FM-Entity-Count"], dict(r.url.params))
        for r in api.requests
    ] == [
        (token, "9", {"page": "0", "where": "extId = 'A'", "order": "name"})
        for token in ("token-1", "token-2")
    ]


def test_a_session_refused_twice_is_an_auth_error() -> None:
    api = FakeApi(lambda request: httpx.Response(401, json={"Message": "no"}))
    with api.client() as client, pytest.raises(SsmAuthError):
        client.get("accounts", 1)
    assert api.logins == 2


def test_secrets_are_masked_in_messages() -> None:
    """Even a server echoing the keys and the session key back leaks none of them."""

    def echo(request: httpx.Request) -> httpx.Response:
        text = f"bad session {request.headers['X-Session-Key']} for pub/priv"
        if request.url.path.endswith("/bulk"):
            return httpx.Response(
                200,
                json=[
                    {"guid": i["guid"], "statusCode": 400, "Message": text}
                    for i in json.loads(request.content)
                ],
            )
        return httpx.Response(400 if request.method == "GET" else 503, json={"Message": text})

    api = FakeApi(echo)
    with api.client(max_retries=0) as client:
        with pytest.raises(SsmRefused) as refused:
            client.get("accounts", 1)
        with pytest.raises(SsmUnavailable) as unavailable:
            client.update("accounts", 1, {})
        (bulk,) = client.bulk_create("accounts", [account("M1")])
    for error in (refused.value, unavailable.value, bulk.error):
        text = str(error)
        assert "***" in text
        for secret in ("token-1", "pub", "priv"):
            assert secret not in text


def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return httpx.Response(200, json={"id": 1})

    with FakeApi(answer).client(max_concurrency=2) as client:
        client.login()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: client.get("accounts", 1), range(16)))
    assert peak == 2


def test_request_rate_is_bounded() -> None:
    api = FakeApi(lambda request: httpx.Response(200, json={"id": 1}))
    with api.client(max_requests_per_second=20) as client:
        client.login()
        started = time.monotonic()
        for _ in range(10):
            client.get("accounts", 1)
        assert time.monotonic() - started >= 0.45


def test_the_pacer_spaces_requests_across_threads() -> None:
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    pacer = RequestPacer(10, sleep=sleep)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: pacer.wait(), range(5)))
    assert len(waits) == 4  # the first request goes at once
    assert sorted(waits)[-1] == pytest.approx(0.4, abs=0.05)
    unlimited: list[float] = []
    free = RequestPacer(0, sleep=unlimited.append)
    for _ in range(5):
        free.wait()
    assert unlimited == []


@pytest.mark.parametrize("options", [{"max_concurrency": 0}, {"max_retries": -1}])
def test_nonsense_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SalesManagementClient(API_URL, "pub", "priv", **options)


def test_bodies_are_json() -> None:
    bodies: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"Message": "entity created", "id": 131})

    with FakeApi(answer).client() as client:
        assert client.create("accounts", {"name": "ACME"}) == 131
    assert bodies == [{"name": "ACME"}]


def test_a_create_answers_200_with_the_new_id() -> None:
    """S2: ``200 {"Message": "entity created", "id": 131}``."""
    api = FakeApi(
        lambda request: httpx.Response(200, json={"Message": "entity created", "id": "131"})
    )
    with api.client() as client:
        assert client.create("accounts", {"name": "ACME"}) == 131
    assert [(r.method, r.url.path) for r in api.requests] == [("POST", "/api/v4/accounts")]


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (httpx.Response(200, json={"Message": "entity created"}), "create"),
        (httpx.Response(200, json=[{"id": 1}]), "get"),
        (httpx.Response(200, text="<html>proxy</html>"), "get"),
    ],
)
def test_unexpected_answers_are_errors(answer: httpx.Response, call: str) -> None:
    with FakeApi(lambda request: answer).client() as client, pytest.raises(SsmError):
        if call == "create":
            client.create("accounts", {"name": "ACME"})
        else:
            client.get("accounts", 1)


# --- helpers of the protocol ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"id": 15, "value": "Lyon"}, 15), (15, 15), ("15", 15), (None, None), ({"id": None}, None)],
)
def test_fk_id_reads_both_forms(value: Any, expected: int | None) -> None:
    assert SalesManagementClient.fk_id(value) == expected


@pytest.mark.parametrize("value", ["Lyon", True, 1.5, {"id": "x"}])
def test_fk_id_refuses_what_is_not_an_id(value: Any) -> None:
    with pytest.raises(ValueError):
        SalesManagementClient.fk_id(value)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"dateUpdated": "2026-01-01T10:00:00.000Z", "dateDeleted": None},
            "2026-01-01T10:00:00.000Z",
        ),
        (
            {"dateUpdated": "2026-01-01T10:00:00.000Z", "dateDeleted": "2026-01-02T08:00:00.000Z"},
            "2026-01-02T08:00:00.000Z",
        ),
        ({"dateUpdated": None, "dateDeleted": None}, None),
        ({}, None),
    ],
)
def test_changed_at_is_the_later_of_update_and_deletion(
    record: dict[str, Any], expected: str | None
) -> None:
    assert SalesManagementClient.changed_at(record) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(12, "12"), (-3, "-3"), ("ACME", "'ACME'"), ("l'été", "'l''été'")]
)
def test_where_literal(value: int | str, expected: str) -> None:
    assert where_literal(value) == expected


def test_where_literal_refuses_booleans() -> None:
    with pytest.raises(ValueError):
        where_literal(True)


@pytest.mark.parametrize(
    ("value", "seconds", "expected"),
    [
        ("2017-10-17T11:17:57.363Z", 0, "2017-10-17T11:17:57.363Z"),
        ("2017-10-17T11:17:57.363Z", -5, "2017-10-17T11:17:52.363Z"),
        ("2026-01-01T00:00:02.500Z", -5, "2025-12-31T23:59:57.500Z"),
        ("2026-01-01T00:00:00Z", -60, "2025-12-31T23:59:00.000Z"),
        ("2026-02-28T23:59:59.999Z", 1, "2026-03-01T00:00:00.999Z"),
        (" 2026-05-04T03:02:01.123456Z ", 0, "2026-05-04T03:02:01.123Z"),
    ],
)
def test_shift_date(value: str, seconds: int, expected: str) -> None:
    assert shift_date(value, seconds) == expected


# --- edge cases of lookups and dates ---------------------------------------------------


def test_find_yields_each_record_once() -> None:
    """The record E0 is asked by extId (first chunk of 40) and by id (second chunk)."""
    records = [{"id": n, "extId": f"E{n}", "deleted": False} for n in range(60)]
    api = PagedApi(0, records=records)
    with api.client() as client:
        found = [
            r["id"] for r in client.find("accounts", ext_ids=[f"E{n}" for n in range(41)], ids=[0])
        ]
    assert sorted(found) == list(range(41))


def test_shift_date_converts_offsets_to_utc() -> None:
    assert shift_date("2026-03-01T10:00:00+02:00", -5) == "2026-03-01T07:59:55.000Z"


def test_a_page_cap_learned_on_one_resource_does_not_cut_another_short() -> None:
    """Accounts come 500 a page, order lines 100: after a list of accounts, a list of
    250 lines is still read to its end."""
    accounts = PagedApi(600, cap=500)
    lines = PagedApi(250, cap=100)
    api = FakeApi(
        lambda request: (accounts if request.url.path.endswith("/accounts") else lines).list_page(
            request
        )
    )
    with api.client() as client:
        assert len(list(client.query("accounts"))) == 600
        assert len(list(client.query("salesordersLines"))) == 250


def test_a_server_ignoring_the_page_in_a_rotating_order_ends_the_list() -> None:
    """The same records again, in another order: the list ends, each record once."""
    records = [{"id": n, "extId": f"R{n}", "deleted": False} for n in range(1, 8)]
    calls: list[int] = []

    def rotating(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        shift = len(calls) % len(records)
        return httpx.Response(200, json=records[shift:] + records[:shift])

    with FakeApi(rotating).client() as client:
        found = [r["id"] for r in client.query("accounts", page_size=7)]
    assert sorted(found) == list(range(1, 8))
    assert len(calls) == 2


def test_the_pacer_spaces_requests_more_after_each_429() -> None:
    """Paced right at the tenant's unpublished limit, a client keeps meeting it: every
    429 widens the spacing by 5 %, never beyond twice the configured one."""
    pacer = RequestPacer(20, sleep=lambda seconds: None)
    assert pacer.interval == pytest.approx(0.05 * 1.02)  # 2 % for the network's jitter
    pacer.slow_down()
    assert pacer.interval == pytest.approx(0.05 * 1.02 * 1.05)
    for _ in range(100):
        pacer.slow_down()
    assert pacer.interval == pytest.approx(0.1 * 1.02)
    unpaced = RequestPacer(0)
    unpaced.slow_down()
    assert unpaced.interval == 0.0


def test_a_429_slows_the_client_down() -> None:
    answers = iter([429, 200])
    api = FakeApi(
        lambda request: httpx.Response(
            next(answers), json=[] if request.method == "GET" else {}, headers={"Retry-After": "0"}
        )
    )
    with api.client(max_requests_per_second=20) as client:
        before = client._pacer.interval
        assert list(client.query("accounts")) == []
        assert client._pacer.interval > before


def test_a_request_waiting_for_a_connection_is_paced_when_it_gets_one() -> None:
    """Two slow requests hold both connections; the two behind them, long past their
    turn, are still sent a pacing interval apart once the connections free up."""
    release = threading.Event()
    arrivals: list[float] = []
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            arrivals.append(time.monotonic())
            first_two = len(arrivals) <= 2
        if first_two:
            release.wait(5)
        return httpx.Response(200, json={"Message": "entity updated"})

    api = FakeApi(answer)
    with api.client(max_requests_per_second=10, max_concurrency=2) as client:
        client.login()
        with ThreadPoolExecutor(max_workers=4) as pool:
            done = [pool.submit(client.update, "accounts", n, {"city": "Lyon"}) for n in range(4)]
            time.sleep(0.6)  # every request is now past its turn
            release.set()
            for future in done:
                future.result()
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(arrivals))]
    assert len(gaps) == 3 and min(gaps) > 0.02, gaps


def test_a_request_that_left_late_pushes_the_ones_a_second_after_it() -> None:
    """At 4 requests per second, the 6th goes no sooner than a second (and 2 %) after
    the 2nd really left, even when the 2nd woke up late."""
    clock = [0.0]
    late = {1: 0.2}  # the 2nd request (the 1st to wait) wakes up 0.2 s after its turn
    calls = [0]

    def sleep(seconds: float) -> None:
        calls[0] += 1
        clock[0] += seconds + late.get(calls[0], 0.0)

    pacer = RequestPacer(4, sleep=sleep, clock=lambda: clock[0])
    departures = []
    for _ in range(6):
        pacer.wait()
        departures.append(clock[0])
    assert departures[1] == pytest.approx(0.255 + 0.2)
    assert departures[5] >= departures[1] + 1.02 - 1e-9
    assert departures[4] == pytest.approx(1.02)  # the 1st left on time: spacing rules


@pytest.mark.parametrize(
    ("method", "status", "message", "not_found"),
    [
        ("GET", 404, "no such thing", True),
        ("GET", 400, "910: accounts with id 9 does not exist", True),
        ("PUT", 400, "910: accounts with id 9 does not exist", True),
        ("DELETE", 400, "entity not found", True),  # S2: a missing id answers 400
        ("PUT", 400, "Missing required field 'name'", False),
        ("GET", 400, "901: invalid where expression", False),
    ],
)
def test_a_record_that_does_not_exist_is_told_apart(
    method: str, status: int, message: str, not_found: bool
) -> None:
    """The engine asks "is it gone?", not "which status?": the client answers."""
    api = FakeApi(lambda request: httpx.Response(status, json={"Message": message}))
    with api.client() as client, pytest.raises(SsmRefused) as caught:
        if method == "GET":
            client.get("accounts", 9)
        elif method == "PUT":
            client.update("accounts", 9, {"name": ""})
        else:
            client.delete("accounts", 9)
    assert isinstance(caught.value, SsmNotFound) is not_found


def test_a_reference_list_is_read_once_for_every_dossier_of_the_tenant(
    simulator: SimulatorProcess,
) -> None:
    """Order statuses are read by each dossier's order passes: the clients of one tenant
    in a process read them once a minute, not once per dossier and pass."""

    def calls() -> int:
        return int(stats(simulator)["calls"].get("GET /salesorderStatuses", 0))

    first, second = client_for(simulator), client_for(simulator)
    try:
        before = calls()
        read = [list(first.list_changed("salesorderStatuses"))]
        one_listing = calls() - before  # its pages, and the empty one that ends it
        read += [list(c.list_changed("salesorderStatuses")) for c in (second, first)]
    finally:
        first.close()
        second.close()
    assert read[0] and read[0] == read[1] == read[2]
    assert calls() - before == one_listing
