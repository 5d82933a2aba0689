"""The bulk calls of dossiers synced side by side share requests, and each pass keeps its
own answers (``plugins/sales_management/combine.py``). Unit tests: ``send`` is a small
fake standing for one request; the end-to-end sharing is tried against the simulator in
``tests/test_shared_calls.py``."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dossiersync.plugin import SsmRefused, SsmUnavailable
from dossiersync.plugins.sales_management.combine import BulkCombiner, tenant_combiner

KEY = ("POST", "accounts")


def items(owner: str, count: int) -> list[dict[str, Any]]:
    return [{"guid": f"{owner}-{n}", "data": {"name": f"{owner} {n}"}} for n in range(count)]


class Tenant:
    """Requests one at a time (a slow pace): what each carried, answered item by item."""

    def __init__(self, pace: float = 0.2, refuse: str | None = None) -> None:
        self.pace = pace
        self.refuse = refuse  # a request carrying an item of this owner is refused whole
        self.sent: list[list[str]] = []
        self.lock = threading.Lock()

    def send(self, take: Any) -> Any:
        with self.lock:  # one request on its way at a time, each after the pace
            time.sleep(self.pace)
            carried = take()
            self.sent.append([item["guid"] for item in carried])
        if self.refuse and any(i["guid"].startswith(self.refuse) for i in carried):
            raise SsmRefused("POST /accounts/bulk refused (HTTP 400): bad request", 400)
        return [
            {"guid": i["guid"], "id": n, "Message": "entity created"} for n, i in enumerate(carried)
        ]


def side_by_side(
    combiner: BulkCombiner, tenant: Tenant, lots: dict[str, int], **kw: Any
) -> dict[str, Any]:
    """Each owner's items handed in by a thread of its own, at about the same time."""
    outcome: dict[str, Any] = {}

    def one(owner: str, count: int) -> None:
        try:
            outcome[owner] = combiner.exchange(
                KEY,
                items(owner, count),
                limit=kw.get("limit", 200),
                slots=kw.get("slots", 4),
                send=tenant.send,
            )
        except Exception as exc:  # noqa: BLE001 - what the pass would see
            outcome[owner] = exc

    threads = [threading.Thread(target=one, args=(o, c)) for o, c in lots.items()]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    return outcome


def guids(answer: Any) -> set[str]:
    return {a["guid"] for a in answer}


def test_items_waiting_together_leave_in_one_request() -> None:
    tenant = Tenant()
    outcome = side_by_side(BulkCombiner(), tenant, {"a": 50, "b": 50, "c": 50})
    # the first request waits for its turn while the others hand their items in
    assert len(tenant.sent) == 1
    assert len(tenant.sent[0]) == 150
    for owner in "abc":
        # each pass finds its own items among the answers (matched by guid)
        assert {f"{owner}-{n}" for n in range(50)} <= guids(outcome[owner])


def test_a_request_never_carries_more_than_the_bulk_limit() -> None:
    tenant = Tenant()
    side_by_side(BulkCombiner(), tenant, {"a": 120, "b": 120, "c": 60}, limit=200)
    assert all(len(sent) <= 200 for sent in tenant.sent)
    assert sorted(g for sent in tenant.sent for g in sent) == sorted(
        [f"a-{n}" for n in range(120)]
        + [f"b-{n}" for n in range(120)]
        + [f"c-{n}" for n in range(60)]
    )
    assert len(tenant.sent) == 2  # a alone (b does not fit beside it), then b and c


def test_alone_a_call_leaves_at_once() -> None:
    tenant = Tenant(pace=0)
    started = time.monotonic()
    answer = BulkCombiner().exchange(KEY, items("a", 3), limit=200, slots=4, send=tenant.send)
    assert time.monotonic() - started < 0.5
    assert guids(answer) == {"a-0", "a-1", "a-2"}
    assert tenant.sent == [["a-0", "a-1", "a-2"]]


def test_a_call_refused_whole_is_sent_again_per_pass_and_stays_with_its_pass() -> None:
    tenant = Tenant(refuse="bad")
    outcome = side_by_side(BulkCombiner(), tenant, {"good": 5, "bad": 5, "fine": 5})
    assert isinstance(outcome["bad"], SsmRefused)
    assert guids(outcome["good"]) == {f"good-{n}" for n in range(5)}
    assert guids(outcome["fine"]) == {f"fine-{n}" for n in range(5)}
    # after the shared request was refused, each pass's items went alone
    assert tenant.sent[0] == [f"{o}-{n}" for o in ("good", "bad", "fine") for n in range(5)]
    assert sorted(map(tuple, tenant.sent[1:])) == sorted(
        tuple(f"{o}-{n}" for n in range(5)) for o in ("good", "bad", "fine")
    )


def test_an_outage_fails_the_items_it_carried_only() -> None:
    combiner = BulkCombiner()
    calls = []

    def send(take: Any) -> Any:
        carried = take()
        calls.append(len(carried))
        if len(calls) == 1:
            raise SsmUnavailable("POST /accounts/bulk: HTTP 503 after 6 attempt(s)", 503)
        return [{"guid": i["guid"], "id": 1, "Message": "entity created"} for i in carried]

    with pytest.raises(SsmUnavailable):
        combiner.exchange(KEY, items("a", 2), limit=200, slots=4, send=send)
    assert guids(combiner.exchange(KEY, items("b", 2), limit=200, slots=4, send=send)) == {
        "b-0",
        "b-1",
    }


def test_an_interrupted_request_leaves_the_others_an_unknown_outcome() -> None:
    combiner = BulkCombiner()
    gate = threading.Event()
    outcome: dict[str, Any] = {}

    def send(take: Any) -> Any:
        gate.wait(5)
        take()
        raise KeyboardInterrupt  # Ctrl-C reaching the pass that sends

    def one(owner: str) -> None:
        try:
            outcome[owner] = combiner.exchange(KEY, items(owner, 1), limit=200, slots=1, send=send)
        except BaseException as exc:  # noqa: BLE001
            outcome[owner] = exc

    first = threading.Thread(target=one, args=("a",))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=one, args=("b",))
    second.start()
    time.sleep(0.05)
    gate.set()
    first.join(5)
    second.join(5)
    assert isinstance(outcome["a"], KeyboardInterrupt)
    # carried by a's request: whether the server acted is not known, looked up by extId
    assert isinstance(outcome["b"], SsmUnavailable) and outcome["b"].may_have_acted


def test_one_combiner_per_tenant() -> None:
    one = tenant_combiner("http://127.0.0.1:1/api/v4", "key")
    assert tenant_combiner("http://127.0.0.1:1/api/v4", "key") is one
    assert tenant_combiner("http://127.0.0.1:1/api/v4", "other") is not one
