"""The Sales Management client against the real simulator, plus transport-level unit tests."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from dossiersync.errors import SsmAuthError, SsmRefused, SsmUnavailable
from dossiersync.plugins.sales_management import SalesManagementClient
from dossiersync.plugins.sales_management.simulator import SimulatorProcess, running_simulator

_numbers = itertools.count(1)


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


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with running_simulator() as running:
        yield running


@pytest.fixture()
def client(simulator: SimulatorProcess) -> Iterator[SalesManagementClient]:
    with client_for(simulator) as client:
        yield client


# --- against the simulator ------------------------------------------------------------------


def test_create_get_update_delete(client: SalesManagementClient) -> None:
    ext_id = unique("CLIENT:")
    record_id = client.create("accounts", account(ext_id, city="Lille"))
    record = client.get("accounts", record_id)
    assert record["extId"] == ext_id
    assert SalesManagementClient.fk_id(record["branchId"]) == 2

    client.update("accounts", record_id, {"city": "Lyon"})
    updated = client.get("accounts", record_id)
    assert (updated["city"], updated["name"]) == ("Lyon", record["name"])

    client.delete("accounts", record_id)
    assert client.get("accounts", record_id)["deleted"] is True


def test_list_pages_through_every_matching_record(client: SalesManagementClient) -> None:
    prefix = unique("PAGES:")
    created = [client.create("accounts", account(f"{prefix}{n}")) for n in range(120)]
    client.create("accounts", account(unique("ELSEWHERE:")))

    listed = client.list("accounts", where=f"extId LIKE '{prefix}%'", page_size=50)
    assert [r["id"] for r in listed] == created


def test_list_is_lazy(simulator: SimulatorProcess) -> None:
    prefix = unique("LAZY:")
    with client_for(simulator) as client:
        for n in range(5):
            client.create("accounts", account(f"{prefix}{n}"))
        pages = client.list("accounts", where=f"extId LIKE '{prefix}%'", page_size=2)
        first = next(pages)
        assert first["extId"] == f"{prefix}0"
        assert len(list(pages)) == 4


def test_list_filters_and_orders(client: SalesManagementClient) -> None:
    prefix = unique("ORDER:")
    for name in ("Alpha", "Gamma", "Beta"):
        client.create("accounts", account(f"{prefix}{name}", name=name))
    names = [r["name"] for r in client.list("accounts", f"extId LIKE '{prefix}%'", "name")]
    assert names == ["Gamma", "Beta", "Alpha"]


def test_missing_required_field_is_refused(client: SalesManagementClient) -> None:
    with pytest.raises(SsmRefused) as caught:
        client.create("accounts", {"name": "No branch", "salesRepId1": 1})
    assert caught.value.status == 400
    assert "branchId" in str(caught.value)


def test_products_go_in_bulk(client: SalesManagementClient) -> None:
    prefix = unique("PRODUCT:")
    items = [{"guid": str(n), "model": f"Model {n}", "extId": f"{prefix}{n}"} for n in range(100)]
    answers = client.bulk("products", items)
    assert [a["guid"] for a in answers] == [str(n) for n in range(100)]
    assert all(a["Message"] == "entity created" for a in answers)
    with pytest.raises(ValueError):
        client.bulk("products", items + [{"model": "one too many"}])


def test_wrong_keys_raise_an_auth_error_without_secrets(simulator: SimulatorProcess) -> None:
    private_key = "very-secret-private-key"
    client = SalesManagementClient(simulator.url, "someone-public", private_key)
    with client, pytest.raises(SsmAuthError) as caught:
        client.get("accounts", 1)
    assert str(caught.value) == "login refused: check the public/private key"
    assert "someone-public" not in repr(client) and private_key not in repr(client)


def test_secrets_stay_out_of_errors_repr_and_logs(
    simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dossiersync.ssm")
    with client_for(simulator) as client:
        client.login()
        token = client._token
        assert token
        with pytest.raises(SsmRefused) as caught:
            client.get("accounts", 987654)
        with pytest.raises(SsmRefused) as refused:
            client.create("accounts", {"name": "x"})
        texts = [str(caught.value), str(refused.value), repr(client), caplog.text]
    assert caplog.records
    for text in texts:
        for secret in (simulator.public_key, simulator.private_key, token):
            assert secret not in text


def test_session_expiry_is_answered_with_a_new_login() -> None:
    with running_simulator(session_ttl=1) as short, client_for(short) as client:
        record_id = client.create("accounts", account(unique("TTL:")))
        time.sleep(1.2)
        assert client.get("accounts", record_id)["id"] == record_id


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
        assert len(list(client.list("accounts", where=f"extId LIKE '{prefix}%'"))) == 15


def test_a_create_answered_by_a_server_error_is_not_sent_twice() -> None:
    """The server may have created the record before failing: no blind retry."""
    with (
        running_simulator(error_rate=0.5, seed=3) as flaky,
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
        listed = list(client.list("accounts", where=f"extId LIKE '{prefix}%'"))
        assert len(listed) == outcomes.count("created")


def test_persistent_server_errors_end_in_unavailable() -> None:
    with running_simulator(error_rate=1.0) as broken, client_for(broken, max_retries=2) as client:
        with pytest.raises(SsmUnavailable) as caught:
            client.get("users", 1)
        assert caught.value.status in (500, 503)
        assert "3 attempt" in str(caught.value)


def test_rate_limit_is_waited_out() -> None:
    with running_simulator(rate_limit=3) as limited, client_for(limited) as client:
        started = time.monotonic()
        for _ in range(5):
            assert client.get("users", 1)["id"] == 1
        assert time.monotonic() - started >= 0.9


def test_many_threads_share_one_client(client: SalesManagementClient) -> None:
    prefix = unique("THREADS:")
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(
            pool.map(lambda n: client.create("accounts", account(f"{prefix}{n}")), range(40))
        )
    assert len(set(ids)) == 40
    assert len(list(client.list("accounts", where=f"extId LIKE '{prefix}%'"))) == 40


def test_unreachable_api_is_unavailable() -> None:
    client = SalesManagementClient(
        "http://127.0.0.1:9/api/v4", "k", "s", max_retries=1, backoff_base=0.01, timeout=1
    )
    with client, pytest.raises(SsmUnavailable, match="check the API URL"):
        client.login()


# --- transport-level behaviour with a fake server -------------------------------------------


class FakeApi:
    """Answers ``/login`` with a token and every other call through ``answer``."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.logins = 0
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path.endswith("/login"):
                self.logins += 1
                return httpx.Response(200, json={"token": f"token-{self.logins}"})
            self.calls += 1
        return self.answer(request)

    def client(self, **options: Any) -> SalesManagementClient:
        options.setdefault("max_requests_per_second", 0)
        options.setdefault("backoff_base", 0.01)
        return SalesManagementClient(
            "https://ssm.example/api/v4",
            "pub",
            "priv",
            transport=httpx.MockTransport(self),
            **options,
        )


def failing_then(statuses: list[int], headers: dict[str, str] | None = None) -> FakeApi:
    remaining = list(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        if remaining:
            return httpx.Response(remaining.pop(0), json={"Message": "busy"}, headers=headers)
        return httpx.Response(200, json={"id": 1})

    return FakeApi(answer)


def test_retry_after_is_honoured() -> None:
    api = failing_then([429], headers={"Retry-After": "1"})
    with api.client(backoff_max=5) as client:
        started = time.monotonic()
        assert client.get("accounts", 1) == {"id": 1}
        assert time.monotonic() - started >= 1.0


def test_retry_after_is_capped_by_backoff_max() -> None:
    api = failing_then([503, 429], headers={"Retry-After": "120"})
    with api.client(backoff_max=0.05) as client:
        waits: list[float] = []
        client._sleep = waits.append
        assert client.get("accounts", 1) == {"id": 1}
    assert waits == [0.05, 0.05]
    assert api.calls == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status: int) -> None:
    api = failing_then([status, status])
    with api.client() as client:
        assert client.get("accounts", 1) == {"id": 1}
    assert api.calls == 3


def test_retries_stop_after_max_retries() -> None:
    api = failing_then([503] * 10)
    with api.client(max_retries=3) as client, pytest.raises(SsmUnavailable):
        client.get("accounts", 1)
    assert api.calls == 4


def test_timeouts_are_retried() -> None:
    attempts = iter([True, True, False])

    def answer(request: httpx.Request) -> httpx.Response:
        if next(attempts):
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"id": 1})

    with FakeApi(answer).client() as client:
        assert client.get("accounts", 1) == {"id": 1}


def test_other_client_errors_are_refused_at_once() -> None:
    api = failing_then([404])
    with api.client() as client, pytest.raises(SsmRefused, match="busy") as caught:
        client.get("accounts", 1)
    assert caught.value.status == 404
    assert api.calls == 1


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


def test_a_session_refused_twice_is_an_auth_error() -> None:
    api = FakeApi(lambda request: httpx.Response(401, json={"Message": "no"}))
    with api.client() as client, pytest.raises(SsmAuthError):
        client.get("accounts", 1)
    assert api.logins == 2


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


def test_list_sends_the_page_size_and_follows_next_page() -> None:
    seen: list[tuple[str | None, str | None, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        seen.append((request.headers.get("Count"), request.url.params.get("where"), str(page)))
        headers = {"X-FM-Next-Page": str(page + 1)} if page < 2 else {"X-FM-Next-Page": ""}
        return httpx.Response(200, json=[{"id": page}], headers=headers)

    with FakeApi(answer).client(page_size=7) as client:
        assert [r["id"] for r in client.list("accounts", where="a = 1")] == [0, 1, 2]
    assert seen == [("7", "a = 1", "0"), ("7", "a = 1", "1"), ("7", "a = 1", "2")]


def test_bodies_are_json() -> None:
    bodies: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"Message": "entity created", "id": 131})

    with FakeApi(answer).client() as client:
        assert client.create("accounts", {"name": "ACME"}) == 131
    assert bodies == [{"name": "ACME"}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"id": 15, "value": "Lyon"}, 15), (15, 15), ("15", 15), (None, None), ({"id": None}, None)],
)
def test_fk_id_reads_both_forms(value: Any, expected: int | None) -> None:
    assert SalesManagementClient.fk_id(value) == expected


def test_fk_id_refuses_what_is_not_an_id() -> None:
    with pytest.raises(ValueError):
        SalesManagementClient.fk_id("Lyon")
