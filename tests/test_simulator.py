"""The SSM simulator as a real HTTP server, driven with plain httpx."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dossiersync.plugins.sales_management.simulator import SimulatorProcess, running_simulator

from support.ssm_http import account, create, login, session

_numbers = itertools.count(1)
#: dates have millisecond precision: writes closer than this may share their date
MILLISECOND = 0.002


def unique(prefix: str) -> str:
    """An extId prefix no other test uses on the shared simulator."""
    return f"{prefix}{next(_numbers)}-{time.monotonic_ns()}"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with running_simulator() as running:
        yield running


@pytest.fixture()
def api(simulator: SimulatorProcess) -> Iterator[httpx.Client]:
    with session(simulator) as client:
        yield client


# --- sessions -----------------------------------------------------------------------------


def test_new_database_has_reference_lists_and_no_business_records() -> None:
    with running_simulator() as fresh, session(fresh) as api:
        for resource in ("accounts", "contacts", "products", "salesorders"):
            response = api.get(f"/{resource}")
            assert response.status_code == 200
            assert response.json() == []
            assert "X-FM-Next-Page" not in response.headers
        users = api.get("/users").json()
        assert [u["id"] for u in users] == [1, 2, 3]
        assert all(u["name"] for u in users)
        branches = [b["name"] for b in api.get("/branches").json()]
        assert branches == ["Siège", "Agence Lyon", "Agence Bordeaux", "Agence Lille"]
        types = [t["description"] for t in api.get("/accountTypes").json()]
        assert types == ["Client", "Prospect", "Partenaire"]


def test_wrong_keys_are_refused_with_401(simulator: SimulatorProcess) -> None:
    for credentials in (
        {"username": simulator.public_key, "password": "wrong"},
        {"username": "wrong", "password": simulator.private_key},
        {},
    ):
        response = httpx.post(f"{simulator.url}/login", json=credentials)
        assert response.status_code == 401
        assert response.json()["Message"]


def test_calls_without_a_live_session_key_are_refused(simulator: SimulatorProcess) -> None:
    assert httpx.get(f"{simulator.url}/accounts").status_code == 401
    unknown = httpx.get(f"{simulator.url}/accounts", headers={"X-Session-Key": "made-up"})
    assert unknown.status_code == 401
    assert "Message" in unknown.json()


def test_session_expires_after_its_lifetime() -> None:
    with running_simulator(session_ttl=1) as short, session(short) as api:
        assert api.get("/users").status_code == 200
        time.sleep(1.2)
        assert api.get("/users").status_code == 401
        api.headers["X-Session-Key"] = login(short)
        assert api.get("/users").status_code == 200


# --- records --------------------------------------------------------------------------------


def test_account_create_read_update_delete(api: httpx.Client) -> None:
    ext_id = unique("CRUD:")
    record_id = create(api, "accounts", account(ext_id, typeId=2, extra1="kept", comment="hi"))

    record = api.get(f"/accounts/{record_id}").json()
    assert record["id"] == record_id
    assert record["extId"] == ext_id
    assert record["branchId"] == {"id": 1, "value": "Siège"}
    assert record["typeId"] == {"id": 2, "value": "Prospect"}
    assert record["salesRepId1"]["id"] == 2 and record["salesRepId1"]["value"]
    assert (record["extra1"], record["comment"]) == ("kept", "hi")
    assert record["deleted"] is False and record["dateDeleted"] is None
    assert record["dateCreated"] == record["dateUpdated"]
    for name in ("salesRepIdCreated", "salesRepIdUpdated", "salesRepIdDeleted"):
        assert name in record

    time.sleep(MILLISECOND)  # dates have millisecond precision
    answer = api.put(f"/accounts/{record_id}", json={"city": "Lyon", "branchId": 2})
    assert answer.status_code == 200 and answer.json() == {"Message": "entity updated"}
    updated = api.get(f"/accounts/{record_id}").json()
    assert updated["city"] == "Lyon"
    assert updated["branchId"] == {"id": 2, "value": "Agence Lyon"}
    assert (updated["name"], updated["extra1"]) == (record["name"], "kept")
    assert updated["dateUpdated"] > record["dateUpdated"]
    assert updated["dateCreated"] == record["dateCreated"]

    time.sleep(MILLISECOND)
    answer = api.delete(f"/accounts/{record_id}")
    assert answer.status_code == 200 and answer.json() == {"Message": "entity deleted"}
    deleted = api.get(f"/accounts/{record_id}").json()
    assert deleted["deleted"] is True and deleted["dateDeleted"] > updated["dateUpdated"]
    assert deleted["dateUpdated"] == updated["dateUpdated"]
    assert deleted["salesRepIdDeleted"]["id"] == 1
    assert api.delete(f"/accounts/{record_id}").status_code == 400


def test_missing_record_answers_400_with_a_message(api: httpx.Client) -> None:
    for response in (
        api.get("/accounts/999999"),
        api.put("/accounts/999999", json={"name": "x"}),
        api.delete("/accounts/999999"),
    ):
        assert response.status_code == 400
        assert "999999" in response.json()["Message"]


@pytest.mark.parametrize("field", ["branchId", "name", "salesRepId1"])
def test_missing_required_field_is_named(api: httpx.Client, field: str) -> None:
    body = account(unique("REQ:"))
    del body[field]
    response = api.post("/accounts", json=body)
    assert response.status_code == 400
    assert field in response.json()["Message"]


@pytest.mark.parametrize(("field", "value"), [("branchId", 99), ("salesRepId1", 42), ("typeId", 7)])
def test_unknown_foreign_key_is_refused(api: httpx.Client, field: str, value: int) -> None:
    response = api.post("/accounts", json=account(unique("FK:"), **{field: value}))
    assert response.status_code == 400
    assert field in response.json()["Message"]


def test_body_must_be_json(api: httpx.Client) -> None:
    response = api.post("/accounts", content=b"{not json", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert "JSON" in response.json()["Message"]
    assert api.post("/accounts", json=[1, 2]).status_code == 400


def test_reference_lists_are_read_only(api: httpx.Client) -> None:
    assert api.put("/users/1", json={"name": "x"}).status_code == 405
    assert api.post("/branches", json={"name": "x"}).status_code == 405


def test_write_times_never_go_back(api: httpx.Client) -> None:
    """Dates have millisecond precision, like the API's: writes within one millisecond may
    share a date, but a later write never gets an earlier one."""
    prefix = unique("TIME:")
    for n in range(20):
        create(api, "accounts", account(f"{prefix}{n}"))
    records = api.get("/accounts", params={"where": f"extId LIKE '{prefix}%'"}).json()
    stamps = [r["dateUpdated"] for r in records]
    assert len(stamps) == 20 and stamps == sorted(stamps)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)


# --- lists ----------------------------------------------------------------------------------


def test_pages_are_sized_by_the_entity_count_header(api: httpx.Client) -> None:
    prefix = unique("PAGE:")
    ids = [create(api, "accounts", account(f"{prefix}{n}")) for n in range(7)]
    where = {"where": f"extId LIKE '{prefix}%'"}
    seen: list[int] = []
    for page, size in enumerate([3, 3, 1, 0]):
        response = api.get(
            "/accounts", params={**where, "page": page}, headers={"X-FM-Entity-Count": "3"}
        )
        assert response.status_code == 200
        # the end of a list is not announced by default (the API does not document it)
        assert "X-FM-Next-Page" not in response.headers
        assert len(response.json()) == size
        seen += [r["id"] for r in response.json()]
    assert seen == ids
    # the undocumented "Count" header is not a page size
    assert len(api.get("/accounts", params=where, headers={"Count": "2"}).json()) == 7
    assert len(api.get("/accounts", params=where).json()) == 7


def test_default_page_is_fifty_records_and_big_pages_are_capped(api: httpx.Client) -> None:
    prefix = unique("FIFTY:")
    items = [{"guid": str(n), "data": account(f"{prefix}{n}")} for n in range(200)]
    for _ in range(3):
        answers = api.post("/accounts/bulk", json=items).json()
        assert {a["statusCode"] for a in answers} == {200}
    where = {"where": f"extId LIKE '{prefix}%'"}
    first = api.get("/accounts", params=where)
    assert len(first.json()) == 50
    assert "X-FM-Next-Page" not in first.headers
    assert len(api.get("/accounts", params={**where, "page": 11}).json()) == 50
    assert api.get("/accounts", params={**where, "page": 12}).json() == []
    everything = api.get("/accounts", params=where, headers={"X-FM-Entity-Count": "100000"})
    assert len(everything.json()) == 500
    rest = api.get("/accounts", params={**where, "page": 1}, headers={"X-FM-Entity-Count": "500"})
    assert len(rest.json()) == 100
    assert api.get("/accounts", params={"page": "x"}).status_code == 400
    assert api.get("/accounts", params={"page": "-1"}).status_code == 400
    for size in ("0", "-3", "many"):
        assert api.get("/accounts", headers={"X-FM-Entity-Count": size}).status_code == 400


def test_where_filters_on_date_updated_and_ext_id(api: httpx.Client) -> None:
    prefix = unique("WHERE:")
    first = create(api, "accounts", account(f"{prefix}A"))
    time.sleep(MILLISECOND)  # writes within one millisecond share their date
    second = create(api, "accounts", account(f"{prefix}B"))
    create(api, "accounts", account(unique("OTHER:")))
    cursor = api.get(f"/accounts/{first}").json()["dateUpdated"]

    for stamp in (cursor, cursor.replace("T", " ")):
        where = f"dateUpdated > '{stamp}' AND extId LIKE '{prefix}%'"
        records = api.get("/accounts", params={"where": where}).json()
        assert [r["id"] for r in records] == [second]

    where = f"dateUpdated >= '{cursor}' AND extId LIKE '{prefix}%'"
    refused = api.get("/accounts", params={"where": where})
    assert refused.status_code == 400
    assert refused.json()["Message"].startswith("901:")
    where = f"extId = '{prefix}A' OR extId = '{prefix}B'"
    assert len(api.get("/accounts", params={"where": where}).json()) == 2


def test_foreign_keys_filter_on_their_id(api: httpx.Client) -> None:
    prefix = unique("BRANCH:")
    lille = create(api, "accounts", account(f"{prefix}1", branchId=4))
    create(api, "accounts", account(f"{prefix}2", branchId=3))
    where = f"extId LIKE '{prefix}%' AND branchId = 4"
    assert [r["id"] for r in api.get("/accounts", params={"where": where}).json()] == [lille]


def test_order_sorts_descending(api: httpx.Client) -> None:
    prefix = unique("ORDER:")
    for name in ("b", "c", "a"):
        create(api, "accounts", account(f"{prefix}{name}", name=name))
    records = api.get(
        "/accounts", params={"where": f"extId LIKE '{prefix}%'", "order": "name"}
    ).json()
    assert [r["name"] for r in records] == ["c", "b", "a"]


def test_deleted_records_stay_listed_with_their_flag(api: httpx.Client) -> None:
    prefix = unique("DEL:")
    kept = create(api, "accounts", account(f"{prefix}kept"))
    gone = create(api, "accounts", account(f"{prefix}gone"))
    assert api.delete(f"/accounts/{gone}").status_code == 200

    records = api.get("/accounts", params={"where": f"extId LIKE '{prefix}%'"}).json()
    assert [(r["id"], r["deleted"]) for r in records] == [(kept, False), (gone, True)]
    assert records[0]["dateDeleted"] is None and records[1]["dateDeleted"]
    # booleans are not documented where values: deleted records are told apart client-side
    refused = api.get("/accounts", params={"where": f"extId LIKE '{prefix}%' AND deleted = true"})
    assert refused.status_code == 400
    assert refused.json()["Message"].startswith("901:")


def test_invalid_where_answers_400_with_the_position(api: httpx.Client) -> None:
    response = api.get("/accounts", params={"where": "name = 'x' OR 1=1; DROP TABLE records --"})
    assert response.status_code == 400
    assert response.json()["Message"].startswith("901:")
    assert "position" in response.json()["Message"]
    assert api.get("/accounts").status_code == 200


def test_unknown_resource_is_404(api: httpx.Client) -> None:
    response = api.get("/invoices")
    assert response.status_code == 404
    assert "invoices" in response.json()["Message"]


def test_products_bulk_answers_each_item(api: httpx.Client) -> None:
    prefix = unique("BULK:")
    existing = create(api, "products", {"model": "Starter", "extId": f"{prefix}0"})
    items = [
        {"guid": "g1", "data": {"model": "Pro", "extId": f"{prefix}1", "price": 30}},
        {"guid": "g2", "data": {"price": 5}},
        {"guid": "g3", "model": "flat, not under data"},
    ]
    answers = api.post("/products/bulk", json=items).json()
    assert [a["guid"] for a in answers] == ["g1", "g2", "g3"]
    assert answers[0]["statusCode"] == 200
    assert answers[0]["Message"] == "entity created" and answers[0]["id"]
    assert answers[1]["statusCode"] == 400 and "model" in answers[1]["Message"]
    assert answers[2]["statusCode"] == 400 and "data" in answers[2]["Message"]
    created = api.get(f"/products/{answers[0]['id']}").json()
    assert (created["model"], created["price"], created["extId"]) == ("Pro", 30, f"{prefix}1")

    updates = [
        {"guid": "u1", "id": existing, "data": {"price": 12}},
        {"guid": "u2", "data": {"price": 13}},
        {"guid": "u3", "id": 999999, "data": {"price": 14}},
    ]
    answers = api.put("/products/bulk", json=updates).json()
    assert answers[0] == {
        "guid": "u1",
        "statusCode": 200,
        "id": existing,
        "Message": "entity updated",
    }
    assert answers[1]["statusCode"] == 400 and "id" in answers[1]["Message"]
    assert answers[2]["statusCode"] == 400 and "999999" in answers[2]["Message"]
    assert api.get(f"/products/{existing}").json()["price"] == 12

    too_many = [{"guid": str(n), "data": {"model": str(n)}} for n in range(101)]
    assert api.post("/products/bulk", json=too_many).status_code == 400
    assert api.post("/products/bulk", json=[]).status_code == 400
    assert api.post("/products/bulk", json={"guid": "g", "data": {}}).status_code == 400


# --- switches -------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    with running_simulator(rate_limit=3) as limited, session(limited) as api:
        statuses = [api.get("/users") for _ in range(6)]
        refused = [r for r in statuses if r.status_code == 429]
        assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
        assert refused
        assert int(refused[0].headers["Retry-After"]) >= 1
        time.sleep(1.05)
        assert api.get("/users").status_code == 200


def test_error_rate_one_fails_every_call_but_login() -> None:
    with running_simulator(error_rate=1.0, seed=3) as failing, session(failing) as api:
        statuses = {api.get("/users").status_code for _ in range(20)}
        assert statuses <= {500, 503}
        assert statuses


def test_latency_delays_each_answer() -> None:
    with running_simulator(latency_ms=150) as slow, session(slow) as api:
        started = time.monotonic()
        assert api.get("/users").status_code == 200
        assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(
    ("shape", "created", "updated", "failed"),
    [
        (
            "status",
            {"statusCode": 200, "id": "ID", "Message": "entity created"},
            {"statusCode": 200, "id": "ID", "Message": "entity updated"},
            {"statusCode": 400, "Message": "TEXT"},
        ),
        (
            "message",
            {"id": "ID", "Message": "entity created"},
            {"id": "ID", "Message": "entity updated"},
            {"Message": "TEXT"},
        ),
        ("bare", {"id": "ID"}, {"id": "ID"}, {"error": "TEXT"}),
    ],
)
def test_bulk_answer_switch_shapes_the_item_answers(
    shape: str, created: dict[str, str], updated: dict[str, str], failed: dict[str, str]
) -> None:
    """Each shape: done items name their record, failed ones carry no id and say why
    (status, wording or an ``error`` field); refusals are counted whatever the shape."""

    def expected(template: dict[str, str], guid: str, record: int, text: str) -> dict[str, Any]:
        values = {"ID": record, "TEXT": text}
        return {"guid": guid, **{k: values.get(v, v) for k, v in template.items()}}

    with running_simulator(bulk_answer=shape) as sim, session(sim) as api:
        items = [
            {"guid": "g1", "data": account("SHAPE:1")},
            {"guid": "g2", "data": {"name": "no branch", "salesRepId1": 1}},
        ]
        answers = api.post("/accounts/bulk", json=items).json()
        record = api.get("/accounts", params={"where": "extId = 'SHAPE:1'"}).json()[0]["id"]
        missing = "Missing required field 'branchId' for accounts"
        assert answers == [
            expected(created, "g1", record, ""),
            expected(failed, "g2", 0, missing),
        ]
        updates = [
            {"guid": "u1", "id": record, "data": {"city": "Rennes"}},
            {"guid": "u2", "id": 999999, "data": {"city": "Rennes"}},
        ]
        answers = api.put("/accounts/bulk", json=updates).json()
        gone = "910: accounts with id 999999 does not exist"
        assert answers == [expected(updated, "u1", record, ""), expected(failed, "u2", 0, gone)]
        assert sim.stats()["refusals"] == 2
