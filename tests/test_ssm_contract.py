"""The SSM simulator held to the public Sales Management v4 contract (``SSM_API.md``).

One test per row or claim of the design page ``SSM_API.md``; each docstring names its
public source as that page does:

- S1: developer.forcemanager.com, the official v4 overview ("Getting Started",
  "Requests", "Pagination", "Filters, Orders and Language", "API Errors");
- S2: the withone.ai knowledge pages "Sage Sales Management / …" (one per endpoint);
- S3: public clients: paolofraz/Py-ForceManager, m-macnair/WebService-ForceManager,
  ForceManager/api-rest-csharp.

Rows the documentation leaves **unpublished** are tested as the simulator settles them
(said so in the docstring); a client must survive either way. Everything runs against
the real simulator over HTTP; non-default switches start their own process.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from dossiersync.plugins.sales_management.simulator import SimulatorProcess, running_simulator

from support.ssm_http import account, create, login, session

DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
#: writes closer than this may share their (millisecond) date
MILLISECOND = 0.002
SYSTEM_FIELDS = (
    "id",
    "extId",
    "dateCreated",
    "dateUpdated",
    "dateDeleted",
    "deleted",
    "salesRepIdCreated",
    "salesRepIdUpdated",
    "salesRepIdDeleted",
)
#: resource -> fields the S2 "Create …" page marks required
REQUIRED = {
    "accounts": ("branchId", "name", "salesRepId1"),
    "contacts": ("accountId", "firstName", "lastName", "salesRepId"),
    "products": ("model",),
    "productFamilies": ("descriptionEN",),
    "salesorders": ("branchId", "reference", "salesRepId"),
    "salesOrdersLines": ("quantity", "price", "productId"),
}
#: resource -> most items of one POST/PUT /{resource}/bulk
BULK_LIMITS = {
    "accounts": 200,
    "contacts": 200,
    "productFamilies": 200,
    "salesorders": 200,
    "products": 100,
}

_numbers = itertools.count(1)


def unique(prefix: str) -> str:
    """An extId prefix no other test uses on the shared simulator."""
    return f"{prefix}{next(_numbers)}-{time.monotonic_ns()}:"


@contextmanager
def fresh(**switches: Any) -> Iterator[tuple[SimulatorProcess, httpx.Client]]:
    """A simulator of its own with non-default switches, and a logged-in client."""
    with running_simulator(**switches) as simulator, session(simulator) as client:
        yield simulator, client


def stats_url(simulator: SimulatorProcess) -> str:
    return simulator.url.removesuffix("/api/v4") + "/_simulator/stats"


@pytest.fixture(scope="module")
def shared() -> Iterator[SimulatorProcess]:
    """One default simulator for the tests that need no switch (they use unique extIds)."""
    with running_simulator() as simulator:
        yield simulator


@pytest.fixture()
def api(shared: SimulatorProcess) -> Iterator[httpx.Client]:
    with session(shared) as client:
        yield client


def bulk_create(api: httpx.Client, resource: str, bodies: list[dict[str, Any]]) -> list[int]:
    items = [{"guid": f"g{n}", "data": body} for n, body in enumerate(bodies)]
    response = api.post(f"/{resource}/bulk", json=items)
    assert response.status_code == 200, response.text
    answers = {a["guid"]: a for a in response.json()}
    assert {a["statusCode"] for a in answers.values()} == {200}, answers
    return [int(answers[item["guid"]]["id"]) for item in items]


def listed(api: httpx.Client, resource: str, where: str, **headers: str) -> list[dict[str, Any]]:
    response = api.get(f"/{resource}", params={"where": where}, headers=headers)
    assert response.status_code == 200, response.text
    records = response.json()
    assert isinstance(records, list)
    return records


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in records]


def assert_refused(response: httpx.Response, status: int, *fragments: str) -> str:
    """``response`` is a refusal with the documented ``{"Message": …}`` body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("Message"), str), body
    for fragment in fragments:
        assert fragment in body["Message"], body["Message"]
    return str(body["Message"])


def valid_body(api: httpx.Client, resource: str, ext_id: str) -> dict[str, Any]:
    """A body with every required field of ``resource`` (creating what it references)."""
    if resource == "accounts":
        return account(ext_id)
    if resource == "contacts":
        owner = create(api, "accounts", account(f"{ext_id}owner"))
        return {
            "accountId": owner,
            "firstName": "Anne",
            "lastName": "Durand",
            "salesRepId": 2,
            "extId": ext_id,
        }
    if resource == "products":
        return {"model": f"Model {ext_id}", "price": 12.5, "extId": ext_id}
    if resource == "productFamilies":
        return {"descriptionEN": f"Family {ext_id}", "descriptionFR": "Famille", "extId": ext_id}
    if resource == "salesorders":
        return {"branchId": 1, "reference": f"BC-{ext_id}", "salesRepId": 2, "extId": ext_id}
    if resource == "salesOrdersLines":
        order = create(api, "salesorders", valid_body(api, "salesorders", f"{ext_id}order"))
        product = create(api, "products", valid_body(api, "products", f"{ext_id}product"))
        return {
            "salesOrderId": order,
            "productId": product,
            "quantity": 3,
            "price": 9.9,
            "extId": ext_id,
        }
    raise AssertionError(resource)


# --- transport and session ----------------------------------------------------------------


def test_base_path_is_api_v4_and_json_both_ways(
    api: httpx.Client, shared: SimulatorProcess
) -> None:
    """S1 developer.forcemanager.com "Getting Started": base URL …/api/v4, all requests and
    responses in JSON (``Content-Type: application/json``)."""
    assert shared.url.endswith("/api/v4")
    for response in (
        api.get("/users"),
        api.post("/accounts", json=account(unique("JSON:"))),
        api.get("/accounts", params={"where": "id >= 1"}),
    ):
        assert response.headers["content-type"].startswith("application/json")
        response.json()
    not_json = api.post("/accounts", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert_refused(not_json, 400, "JSON")
    outside = httpx.get(shared.url.removesuffix("/v4") + "/v3/accounts", headers=api.headers)
    assert outside.status_code == 404


def test_login_gives_a_token_for_the_session_key(shared: SimulatorProcess) -> None:
    """S1 developer.forcemanager.com "Getting Started" (POST /api/v4/login → token in
    X-Session-Key), S2 "Login" (``{"username": publicKey, "password": privateKey}`` → 200
    ``{"token": …}``), S3 m-macnair/WebService-ForceManager (login)."""
    credentials = {"username": shared.public_key, "password": shared.private_key}
    response = httpx.post(f"{shared.url}/login", json=credentials)
    assert response.status_code == 200
    assert list(response.json()) == ["token"]
    token = response.json()["token"]
    assert isinstance(token, str) and token
    answer = httpx.get(f"{shared.url}/users", headers={"X-Session-Key": token})
    assert answer.status_code == 200


def test_every_other_call_needs_a_live_session_key(
    api: httpx.Client, shared: SimulatorProcess
) -> None:
    """S1 developer.forcemanager.com "Requests" (all API requests require authentication)
    and "Getting Started" (token in X-Session-Key). The status of a refused key is
    unpublished: the simulator answers 401, the client re-logs once on 401."""
    record = create(api, "accounts", account(unique("KEY:")))
    calls = [
        ("GET", "/accounts", None),
        ("GET", f"/accounts/{record}", None),
        ("POST", "/accounts", account(unique("KEY:"))),
        ("PUT", f"/accounts/{record}", {"city": "Nantes"}),
        ("DELETE", f"/accounts/{record}", None),
        ("POST", "/accounts/bulk", [{"guid": "g", "data": account(unique("KEY:"))}]),
        ("PUT", "/accounts/bulk", [{"guid": "g", "id": record, "data": {"city": "Nantes"}}]),
    ]
    for headers in ({}, {"X-Session-Key": "made-up"}, {"X-Session-Key": ""}):
        for method, path, body in calls:
            response = httpx.request(method, shared.url + path, json=body, headers=headers)
            assert_refused(response, 401)
    assert api.get(f"/accounts/{record}").json()["deleted"] is False


def test_wrong_keys_get_no_token(shared: SimulatorProcess) -> None:
    """S2 "Login" documents only the success; the status of bad keys is unpublished
    (SSM_API.md "Transport and session"): the simulator answers 401 without a token."""
    for credentials in (
        {"username": shared.public_key, "password": "wrong"},
        {"username": "wrong", "password": shared.private_key},
        {"username": shared.public_key},
        {},
    ):
        response = httpx.post(f"{shared.url}/login", json=credentials)
        assert_refused(response, 401)
        assert "token" not in response.json()


def test_an_expired_session_answers_401_and_a_new_login_works() -> None:
    """S1 developer.forcemanager.com "Getting Started" and S3 m-macnair/WebService-ForceManager
    (login → session key); the session lifetime is unpublished (SSM_API.md "Transport and
    session"): the client re-logs once on 401. The ``session_ttl`` switch expires a session."""
    with fresh(session_ttl=1) as (simulator, client):
        assert client.get("/users").status_code == 200
        time.sleep(1.2)
        assert_refused(client.get("/users"), 401)
        client.headers["X-Session-Key"] = login(simulator)
        assert client.get("/users").status_code == 200


def test_rate_limit_is_per_tenant_and_answers_429_with_retry_after() -> None:
    """Rate limits and ``Retry-After`` are unpublished; S3 paolofraz/Py-ForceManager
    throttles itself to 200 requests per 65 s per tenant. The ``rate_limit`` switch caps
    requests per second for the whole tenant (every session of the keys) with 429 and an
    integer ``Retry-After``; login is not limited; a 429 is not counted as a refusal."""
    with fresh(rate_limit=3) as (simulator, first), session(simulator) as second:
        before = httpx.get(stats_url(simulator)).json()["refusals"]
        answers = [first.get("/users"), second.get("/users"), first.get("/branches")]
        assert [a.status_code for a in answers] == [200, 200, 200]
        refused = second.get("/users")
        assert_refused(refused, 429)
        assert int(refused.headers["Retry-After"]) >= 1
        assert login(simulator)  # login still answers
        time.sleep(1.05)
        assert second.get("/users").status_code == 200
        assert httpx.get(stats_url(simulator)).json()["refusals"] == before


def test_latency_switch_delays_every_answer_and_defaults_stay_fast(api: httpx.Client) -> None:
    """No public source publishes response times: S1 developer.forcemanager.com "Getting
    Started" (a remote HTTPS service) and S3 paolofraz/Py-ForceManager (a few requests per
    second per tenant) are why SSM_API.md "What the simulator must do" wants a latency per
    call for benchmarks, while the defaults stay fast for tests."""
    started = time.monotonic()
    for _ in range(10):
        assert api.get("/users").status_code == 200
    assert time.monotonic() - started < 1.0
    with fresh(latency_ms=200) as (_simulator, slow):
        for path in ("/users", "/accounts"):
            started = time.monotonic()
            assert slow.get(path).status_code == 200
            assert time.monotonic() - started >= 0.2


# --- lists ----------------------------------------------------------------------------------


def test_pages_are_numbered_from_0_with_50_records_by_default(api: httpx.Client) -> None:
    """S1 developer.forcemanager.com "Pagination": 50 items per request by default, the
    ``page`` query parameter pages through (S2 "List Entity Owners": default page 0)."""
    prefix = unique("FIFTY:")
    created = bulk_create(api, "accounts", [account(f"{prefix}{n:02}") for n in range(60)])
    where = {"where": f"extId LIKE '{prefix}%'"}
    first = api.get("/accounts", params=where).json()
    assert ids(first) == created[:50]
    assert ids(api.get("/accounts", params={**where, "page": 0}).json()) == created[:50]
    assert ids(api.get("/accounts", params={**where, "page": 1}).json()) == created[50:]
    assert api.get("/accounts", params={**where, "page": 2}).json() == []


def test_entity_count_header_sets_the_page_size(api: httpx.Client) -> None:
    """S1 developer.forcemanager.com "Pagination": the ``X-FM-Entity-Count`` request header
    controls the page size."""
    prefix = unique("SIZE:")
    created = bulk_create(api, "accounts", [account(f"{prefix}{n}") for n in range(7)])
    where = {"where": f"extId LIKE '{prefix}%'"}
    pages = [
        api.get("/accounts", params={**where, "page": page}, headers={"X-FM-Entity-Count": "3"})
        for page in range(4)
    ]
    assert [len(p.json()) for p in pages] == [3, 3, 1, 0]
    assert [i for p in pages for i in ids(p.json())] == created
    # the name the scraped S2 pages hesitate on ("Count") is not the documented header
    assert len(api.get("/accounts", params=where, headers={"Count": "2"}).json()) == 7
    for size in ("0", "-1", "ten"):
        assert_refused(api.get("/accounts", headers={"X-FM-Entity-Count": size}), 400)


def test_the_largest_page_is_the_servers_choice() -> None:
    """S1 developer.forcemanager.com "Pagination" does not publish a maximum page size
    (SSM_API.md "Lists"): the ``max_page_size`` switch caps it, and a client that keeps
    the size it actually got, and stops on a shorter page, still reads everything once."""
    with fresh(max_page_size=4) as (_simulator, client):
        created = bulk_create(client, "accounts", [account(f"CAP:{n}") for n in range(10)])
        assert len(client.get("/accounts", headers={"X-FM-Entity-Count": "50"}).json()) == 4
        assert len(client.get("/accounts").json()) == 4  # the default 50, capped too
        seen: list[int] = []
        size = None
        for page in itertools.count():
            response = client.get(
                "/accounts", params={"page": page}, headers={"X-FM-Entity-Count": "50"}
            )
            records = response.json()
            seen += ids(records)
            if not records or (size is not None and len(records) < size):
                break
            size = len(records)
        assert seen == created


@pytest.mark.parametrize(
    ("mode", "announced"),
    [
        ("none", [None, None, None, None]),
        ("next", ["1", "2", None, None]),
        ("repeat", ["1", "2", "2", "3"]),
    ],
)
def test_next_page_header_modes(mode: str, announced: list[str | None]) -> None:
    """S1 developer.forcemanager.com "Pagination" does not document the end of a list;
    S3 ForceManager/api-rest-csharp (older API) sent ``X-FM-Next-Page`` = current page on
    the last one. The ``next_page`` switch: "none" (default: no header), "next" (on every
    page but the last), "repeat" (the older API). A page past the end is empty."""
    switches = {} if mode == "none" else {"next_page": mode}
    with fresh(**switches) as (_simulator, client):
        created = bulk_create(client, "accounts", [account(f"NEXT:{n}") for n in range(5)])
        pages = [
            client.get("/accounts", params={"page": n}, headers={"X-FM-Entity-Count": "2"})
            for n in range(4)
        ]
        assert [len(p.json()) for p in pages] == [2, 2, 1, 0]
        assert [p.headers.get("X-FM-Next-Page") for p in pages] == announced
        assert [i for p in pages for i in ids(p.json())] == created


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("extId = '{p}b'", ["b"]),
        ("extId LIKE '{p}%'", ["a", "b", "c"]),
        ("extId LIKE '{p}%' AND extId LIKE '%c'", ["c"]),
        ("extId = '{p}a' OR extId = '{p}c'", ["a", "c"]),
        ("extId = '{p}a' OR extId = '{p}b' AND name = 'nobody'", ["a"]),
        ("extId LIKE '{p}%' AND stock > 5", ["b", "c"]),
        ("extId LIKE '{p}%' AND name > 'Client {p}a'", ["b", "c"]),
        ("extId LIKE '{p}%' AND branchId = 3", ["c"]),
    ],
)
def test_documented_where_operators_filter(
    api: httpx.Client, where: str, expected: list[str]
) -> None:
    """S1 developer.forcemanager.com "Filters, Orders and Language": SQL-style filters with
    ``=``, ``>``, ``LIKE``, ``AND``, ``OR`` (``AND`` binding tighter, as in SQL); single-quoted
    strings and numbers as values (S3 paolofraz/Py-ForceManager)."""
    prefix = unique("OPS:")
    made = {
        name: create(api, "accounts", account(f"{prefix}{name}", stock=stock, branchId=branch))
        for name, stock, branch in (("a", 1, 1), ("b", 10, 2), ("c", 20, 3))
    }
    records = listed(api, "accounts", where.format(p=prefix))
    assert ids(records) == [made[name] for name in expected]


def test_not_like_seen_in_real_use_is_accepted(api: httpx.Client) -> None:
    """S3 paolofraz/Py-ForceManager uses ``NOT LIKE`` with single-quoted strings."""
    prefix = unique("NOTLIKE:")
    kept = create(api, "accounts", account(f"{prefix}keep"))
    create(api, "accounts", account(f"{prefix}drop"))
    assert ids(listed(api, "accounts", f"extId LIKE '{prefix}%' AND extId NOT LIKE '%drop'")) == [
        kept
    ]


def test_a_date_cursor_compares_with_the_date_format(api: httpx.Client) -> None:
    """S1 developer.forcemanager.com "Filters, Orders and Language" (``>``) with the S2
    date format: ``dateUpdated > '<a date read back>'`` lists what changed after it."""
    prefix = unique("CURSOR:")
    first = create(api, "accounts", account(f"{prefix}1"))
    cursor = api.get(f"/accounts/{first}").json()["dateUpdated"]
    time.sleep(MILLISECOND)  # dates have millisecond precision
    second = create(api, "accounts", account(f"{prefix}2"))
    assert ids(listed(api, "accounts", f"extId LIKE '{prefix}%' AND dateUpdated > '{cursor}'")) == [
        second
    ]


@pytest.mark.parametrize(
    "where",
    [
        "id >= 1",
        "id < 5",
        "id <= 5",
        "id != 5",
        "id <> 5",
        "id IN (1, 2)",
        "id NOT IN (1, 2)",
        "extId IS NULL",
        "extId IS NOT NULL",
        "NOT id = 1",
        "(id = 1 OR id = 2)",
        "id = 1 AND (id = 2 OR id = 3)",
        "deleted = true",
        "deleted = false",
        "extId = null",
    ],
)
def test_undocumented_where_syntax_answers_400_code_901(api: httpx.Client, where: str) -> None:
    """S1 developer.forcemanager.com "Filters, Orders and Language" documents only ``=``,
    ``>``, ``LIKE``, ``AND``, ``OR``; "API Errors": 901 "the SQL is not generated correctly".
    SSM_API.md: an undocumented operator or value is refused with 400 code 901."""
    assert_refused(api.get("/accounts", params={"where": where}), 400, "901:")


def test_order_sorts_and_lang_is_accepted(api: httpx.Client) -> None:
    """S1 developer.forcemanager.com "Filters, Orders and Language": ``order`` sorts the
    results (S2 "List Entity Owners": descending), ``lang`` picks the response language
    (en, es, pt, it, fr, de, ru)."""
    prefix = unique("SORT:")
    for name in ("b", "c", "a"):
        create(api, "accounts", account(f"{prefix}{name}", name=name))
    where = f"extId LIKE '{prefix}%'"
    records = api.get("/accounts", params={"where": where, "order": "name"}).json()
    assert [r["name"] for r in records] == ["c", "b", "a"]
    for lang in ("en", "fr"):
        response = api.get("/accounts", params={"where": where, "lang": lang})
        assert response.status_code == 200 and len(response.json()) == 3


def test_deleted_records_stay_listed_with_deleted_and_date_deleted(api: httpx.Client) -> None:
    """S2 value-list examples and "Get a Sales Order Line" (a record with ``deleted: true``
    and ``dateDeleted``): deleted records keep both and appear in lists."""
    prefix = unique("DELLIST:")
    kept, gone = bulk_create(api, "accounts", [account(f"{prefix}kept"), account(f"{prefix}gone")])
    assert api.delete(f"/accounts/{gone}").status_code == 200
    records = {r["id"]: r for r in listed(api, "accounts", f"extId LIKE '{prefix}%'")}
    assert set(records) == {kept, gone}
    assert (records[kept]["deleted"], records[kept]["dateDeleted"]) == (False, None)
    assert records[gone]["deleted"] is True and DATE.fullmatch(records[gone]["dateDeleted"])
    assert api.get(f"/accounts/{gone}").json()["deleted"] is True


def test_a_deletion_does_not_move_date_updated(api: httpx.Client) -> None:
    """S2 "Get a Sales Order Line" example: ``dateDeleted`` later than ``dateUpdated`` on a
    deleted record; a ``dateUpdated`` cursor alone misses deletions."""
    prefix = unique("DELDATE:")
    record = create(api, "accounts", account(f"{prefix}1"))
    before = api.get(f"/accounts/{record}").json()
    time.sleep(MILLISECOND)  # dates have millisecond precision
    api.delete(f"/accounts/{record}")
    after = api.get(f"/accounts/{record}").json()
    assert after["dateUpdated"] == before["dateUpdated"]
    assert after["dateDeleted"] > after["dateUpdated"]
    cursor = f"extId LIKE '{prefix}%' AND dateUpdated > '{before['dateUpdated']}'"
    assert listed(api, "accounts", cursor) == []


def test_dates_have_milliseconds_and_z(api: httpx.Client) -> None:
    """S2 examples ("Get a Sales Order Line", "List Entity Owners"): dates look like
    ``2017-10-17T11:17:57.363Z``."""
    record = create(api, "accounts", account(unique("DATE:")))
    api.put(f"/accounts/{record}", json={"city": "Lille"})
    api.delete(f"/accounts/{record}")
    read = api.get(f"/accounts/{record}").json()
    for name in ("dateCreated", "dateUpdated", "dateDeleted"):
        assert DATE.fullmatch(read[name]), (name, read[name])
    for user in api.get("/users").json():
        assert DATE.fullmatch(user["dateCreated"])


# --- writes -----------------------------------------------------------------------------------


def test_create_answers_200_entity_created_with_the_id(api: httpx.Client) -> None:
    """S2 "Create an Order Line", "Create Product Family", "Create Order Header": POST
    answers 200 ``{"Message": "entity created", "id": …}``."""
    response = api.post("/accounts", json=account(unique("CREATE:")))
    assert response.status_code == 200
    body = response.json()
    assert body == {"Message": "entity created", "id": body["id"]}
    assert isinstance(body["id"], int)
    assert api.get(f"/accounts/{body['id']}").status_code == 200


def test_update_is_partial_and_answers_entity_updated(api: httpx.Client) -> None:
    """S2 "Update a Sale", "Update a Sales Order Header": PUT with only the fields to
    change → 200 ``{"Message": "entity updated"}``; a missing id → 400."""
    record = create(api, "accounts", account(unique("UPD:"), city="Paris", comment="kept"))
    before = api.get(f"/accounts/{record}").json()
    response = api.put(f"/accounts/{record}", json={"city": "Lyon"})
    assert response.status_code == 200
    assert response.json() == {"Message": "entity updated"}
    after = api.get(f"/accounts/{record}").json()
    assert after["city"] == "Lyon"
    for name in ("name", "comment", "branchId", "salesRepId1", "extId", "dateCreated"):
        assert after[name] == before[name]
    assert after["dateUpdated"] >= before["dateUpdated"]
    assert_refused(api.put("/accounts/999999", json={"city": "Lyon"}), 400, "999999")


def test_delete_answers_entity_deleted_and_a_missing_id_400(api: httpx.Client) -> None:
    """S2 "Delete an Account": 200 ``{"Message": "entity deleted"}``; an Account that does
    not exist → 400."""
    record = create(api, "accounts", account(unique("DEL:")))
    response = api.delete(f"/accounts/{record}")
    assert response.status_code == 200
    assert response.json() == {"Message": "entity deleted"}
    assert_refused(api.delete("/accounts/999999"), 400, "999999")
    assert_refused(api.delete(f"/accounts/{record}"), 400)  # already deleted


@pytest.mark.parametrize("resource", sorted(BULK_LIMITS))
def test_bulk_create_takes_guid_and_data_and_answers_per_guid(
    api: httpx.Client, resource: str
) -> None:
    """S2 "Bulk Create Resources" (POST /{resource}/bulk, an array of ``{"guid", "data"}``,
    ``data`` the single create's payload) and "Bulk Create Products". The per-item answer
    is unpublished: the simulator answers ``{"guid", "statusCode", "id", "Message"}``."""
    prefix = unique("BULKC:")
    bodies = {f"guid-{n}": valid_body(api, resource, f"{prefix}{n}") for n in range(3)}
    items = [{"guid": guid, "data": body} for guid, body in bodies.items()]
    response = api.post(f"/{resource}/bulk", json=items)
    assert response.status_code == 200
    answers = response.json()
    assert sorted(a["guid"] for a in answers) == sorted(bodies)
    for answer in answers:
        assert set(answer) == {"guid", "statusCode", "id", "Message"}
        assert (answer["statusCode"], answer["Message"]) == (200, "entity created")
        record = api.get(f"/{resource}/{answer['id']}").json()
        assert record["extId"] == bodies[answer["guid"]]["extId"]


@pytest.mark.parametrize("resource", sorted(BULK_LIMITS))
def test_bulk_update_takes_guid_id_and_data(api: httpx.Client, resource: str) -> None:
    """S2 "Bulk Update Resources (by Resource Type)" (PUT /{resource}/bulk, an array of
    ``{"guid", "id", "data"}``, partial ``data``) and "Bulk Update Products"."""
    prefix = unique("BULKU:")
    created = [create(api, resource, valid_body(api, resource, f"{prefix}{n}")) for n in range(2)]
    items = [
        {"guid": f"u{n}", "id": record, "data": {"comment": f"note {n}"}}
        for n, record in enumerate(created)
    ]
    response = api.put(f"/{resource}/bulk", json=items)
    assert response.status_code == 200
    answers = {a["guid"]: a for a in response.json()}
    for n, record in enumerate(created):
        assert answers[f"u{n}"] == {
            "guid": f"u{n}",
            "statusCode": 200,
            "id": record,
            "Message": "entity updated",
        }
        read = api.get(f"/{resource}/{record}").json()
        assert read["comment"] == f"note {n}"
        assert read["extId"] == f"{prefix}{n}"  # partial: the rest is kept


@pytest.mark.parametrize(("resource", "limit"), sorted(BULK_LIMITS.items()))
def test_bulk_limits(api: httpx.Client, resource: str, limit: int) -> None:
    """S2 "Bulk Create Resources" / "Bulk Update Resources (by Resource Type)": up to 200
    items; "Bulk Create Products" / "Bulk Update Products": up to 100. SSM_API.md: more
    than the limit → 400, and nothing is written."""
    prefix = unique("LIMIT:")
    template = valid_body(api, resource, prefix)
    over = [
        {"guid": str(n), "data": {**template, "extId": f"{prefix}x{n}"}} for n in range(limit + 1)
    ]
    assert_refused(api.post(f"/{resource}/bulk", json=over), 400, str(limit))
    assert listed(api, resource, f"extId LIKE '{prefix}x%'") == []

    created = bulk_create(
        api, resource, [{**template, "extId": f"{prefix}{n}"} for n in range(limit)]
    )
    assert len(created) == limit
    updates = [{"guid": str(n), "id": i, "data": {"comment": "x"}} for n, i in enumerate(created)]
    response = api.put(f"/{resource}/bulk", json=updates)
    assert response.status_code == 200 and len(response.json()) == limit
    too_many = [*updates, {"guid": "one-more", "id": created[0], "data": {"comment": "y"}}]
    assert_refused(api.put(f"/{resource}/bulk", json=too_many), 400, str(limit))
    assert api.get(f"/{resource}/{created[0]}").json()["comment"] == "x"


def test_bulk_exists_only_where_documented(api: httpx.Client) -> None:
    """S2 "Bulk Create Resources": generic bulk for accounts, contacts, opportunities,
    orders, value lists; "Bulk Create Products". Order lines, invoices and reference lists
    have no bulk call in the simulator."""
    item = [{"guid": "g", "data": {"model": "x"}}]
    assert_refused(api.post("/salesOrdersLines/bulk", json=item), 404, "910")
    assert_refused(api.put("/salesInvoices/bulk", json=item), 404, "910")
    assert_refused(api.post("/users/bulk", json=item), 405)


def test_a_malformed_bulk_create_item_fails_alone(api: httpx.Client) -> None:
    """S2 "Bulk Create Resources" (each item ``{"guid", "data"}``); SSM_API.md "What the
    simulator must do": an item without ``guid`` or ``data`` fails, the others land."""
    prefix = unique("BADC:")
    items: list[Any] = [
        {"guid": "ok1", "data": account(f"{prefix}ok1")},
        {"data": account(f"{prefix}noguid")},
        {"guid": "nodata", **account(f"{prefix}nodata")},
        {"guid": "notobject", "data": [account(f"{prefix}notobject")]},
        {
            "guid": "noname",
            "data": {k: v for k, v in account(f"{prefix}noname").items() if k != "name"},
        },
        {"guid": "badbranch", "data": account(f"{prefix}badbranch", branchId=99)},
        "not an item",
        {"guid": "ok2", "data": account(f"{prefix}ok2")},
    ]
    response = api.post("/accounts/bulk", json=items)
    assert response.status_code == 200
    answers = response.json()
    assert len(answers) == len(items)
    by_guid = {a["guid"]: a for a in answers if a["guid"] is not None}
    assert by_guid["ok1"]["statusCode"] == by_guid["ok2"]["statusCode"] == 200
    for guid, fragment in (
        ("nodata", "data"),
        ("notobject", "data"),
        ("noname", "name"),
        ("badbranch", "branchId"),
    ):
        assert by_guid[guid]["statusCode"] == 400
        assert fragment in by_guid[guid]["Message"]
    assert [a["statusCode"] for a in answers if a["guid"] is None] == [400, 400]
    landed = listed(api, "accounts", f"extId LIKE '{prefix}%'")
    assert sorted(r["extId"] for r in landed) == [f"{prefix}ok1", f"{prefix}ok2"]


def test_a_malformed_bulk_update_item_fails_alone(api: httpx.Client) -> None:
    """S2 "Bulk Update Resources (by Resource Type)" (each item ``{"guid", "id", "data"}``);
    SSM_API.md: an item without ``id`` fails, the others land."""
    prefix = unique("BADU:")
    first, second = bulk_create(api, "accounts", [account(f"{prefix}1"), account(f"{prefix}2")])
    items = [
        {"guid": "ok1", "id": first, "data": {"city": "Metz"}},
        {"guid": "noid", "data": {"city": "Metz"}},
        {"guid": "missing", "id": 999999, "data": {"city": "Metz"}},
        {"guid": "badid", "id": "abc", "data": {"city": "Metz"}},
        {"guid": "nodata", "id": second, "city": "Metz"},
        {"guid": "emptyname", "id": second, "data": {"name": ""}},
        {"guid": "ok2", "id": second, "data": {"city": "Nancy"}},
    ]
    answers = {a["guid"]: a for a in api.put("/accounts/bulk", json=items).json()}
    assert answers["ok1"]["statusCode"] == answers["ok2"]["statusCode"] == 200
    for guid in ("noid", "missing", "badid", "nodata", "emptyname"):
        assert answers[guid]["statusCode"] == 400, answers[guid]
    assert "999999" in answers["missing"]["Message"]
    assert api.get(f"/accounts/{first}").json()["city"] == "Metz"
    second_read = api.get(f"/accounts/{second}").json()
    assert (second_read["city"], second_read["name"]) == ("Nancy", f"Client {prefix}2")


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_bulk_body_must_be_a_non_empty_array(api: httpx.Client, method: str) -> None:
    """S2 "Bulk Create Resources" / "Bulk Update Resources (by Resource Type)": the body is
    a JSON array of items."""
    for body in ([], {"guid": "g", "data": {}}, "items", 3):
        assert_refused(api.request(method, "/accounts/bulk", json=body), 400)
    invalid = api.request(
        method, "/accounts/bulk", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert_refused(invalid, 400, "JSON")


def test_a_lost_answer_still_wrote_and_the_record_is_found_by_ext_id() -> None:
    """SSM_API.md "Writes": after an ambiguous failure (timeout, 5xx) the client finds the
    records by ``extId`` (S1 "API Errors"; records carry ``extId``, S2 "Create Account")
    before creating again. The ``lost_answer_rate`` switch carries a write out, then
    answers 500; reads and login are not affected."""
    with fresh(lost_answer_rate=1.0, seed=1) as (simulator, client):
        created = client.post("/accounts", json=account("LOST:1"))
        assert_refused_5xx(created)
        found = listed(client, "accounts", "extId = 'LOST:1'")
        assert len(found) == 1
        record = found[0]["id"]

        items = [{"guid": f"g{n}", "data": account(f"LOST:bulk{n}")} for n in range(2)]
        assert_refused_5xx(client.post("/accounts/bulk", json=items))
        assert len(listed(client, "accounts", "extId LIKE 'LOST:bulk%'")) == 2

        assert_refused_5xx(client.put(f"/accounts/{record}", json={"city": "Caen"}))
        assert client.get(f"/accounts/{record}").json()["city"] == "Caen"
        assert_refused_5xx(client.delete(f"/accounts/{record}"))
        assert client.get(f"/accounts/{record}").json()["deleted"] is True
        # retrying the lost delete meets the deletion that did happen
        assert_refused(client.delete(f"/accounts/{record}"), 400)
        assert login(simulator)


def assert_refused_5xx(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert isinstance(response.json()["Message"], str)


# --- errors ---------------------------------------------------------------------------------


def test_error_bodies_carry_a_message(api: httpx.Client) -> None:
    """SSM_API.md "Errors" (S2 error examples): a 400 body is ``{"Message": "…"}`` or
    ``{"statusCode": 400, "message": "…", "error": "Bad Request"}``; the simulator uses
    the first form for every refusal."""
    responses = [
        (api.get("/accounts", params={"where": "id IN (1)"}), 400),
        (api.get("/accounts/999999"), 400),
        (api.get("/accounts/abc"), 400),
        (api.post("/accounts", json={"name": "x"}), 400),
        (api.post("/accounts", json=["not", "an", "object"]), 400),
        (api.get("/opportunities"), 404),
        (api.post("/users", json={"name": "x"}), 405),
        (api.patch("/accounts/1", json={"name": "x"}), 405),
        (api.get("/accounts/1/x"), 404),
    ]
    for response, status in responses:
        message = assert_refused(response, status)
        assert message


def test_api_error_codes_901_and_910(api: httpx.Client) -> None:
    """S1 developer.forcemanager.com "API Errors": 901 internal data error (the SQL is not
    generated correctly: a bad ``where``), 910 the resource does not exist."""
    assert_refused(api.get("/accounts", params={"where": "name = 'x' ;"}), 400, "901:")
    assert_refused(api.get("/accounts", params={"where": "name"}), 400, "901:")
    assert_refused(api.get("/opportunities"), 404, "910:")
    assert_refused(api.get("/accounts/999999"), 400, "910:")
    assert_refused(api.put("/accounts/999999", json={"city": "x"}), 400, "910:")


def test_api_error_code_900_on_injected_unavailability() -> None:
    """S1 developer.forcemanager.com "API Errors": 900 connection error. The ``error_rate``
    switch fails calls with 500 (901) or 503 (900) before doing anything; login is spared."""
    with fresh(error_rate=1.0, seed=7) as (simulator, client):
        answers = [client.post("/accounts", json=account(f"FAIL:{n}")) for n in range(12)]
        assert {a.status_code for a in answers} == {500, 503}
        for answer in answers:
            code = "900:" if answer.status_code == 503 else "901:"
            assert answer.json()["Message"].startswith(code)
        assert login(simulator)


# --- records ----------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", sorted(REQUIRED))
def test_every_record_carries_the_system_fields(api: httpx.Client, resource: str) -> None:
    """SSM_API.md "Records" (S2 "Get a Sales Order Line" and the "Create …" pages): ``id``,
    ``extId`` (external id from a third party system), ``dateCreated``, ``dateUpdated``,
    ``dateDeleted``, ``deleted``, ``salesRepIdCreated/Updated/Deleted``."""
    ext_id = unique("SYS:")
    record_id = create(api, resource, valid_body(api, resource, ext_id))
    record = api.get(f"/{resource}/{record_id}").json()
    for name in SYSTEM_FIELDS:
        assert name in record, name
    assert (record["id"], record["extId"], record["deleted"]) == (record_id, ext_id, False)
    assert record["dateDeleted"] is None and record["salesRepIdDeleted"] is None
    assert record["dateCreated"] == record["dateUpdated"]
    assert record["salesRepIdCreated"]["id"] == record["salesRepIdUpdated"]["id"]


def test_foreign_keys_are_written_as_ids_and_read_as_id_and_value(api: httpx.Client) -> None:
    """SSM_API.md "Records" (S2 "Get a Sales Order Line": ``"productId": {"id": 128,
    "value": "Starter"}``): foreign keys written as plain ids, read as ``{id, value}``."""
    prefix = unique("FK:")
    record_id = create(api, "accounts", account(prefix, branchId=2, typeId=1, salesRepId1=3))
    record = api.get(f"/accounts/{record_id}").json()
    assert record["branchId"] == {"id": 2, "value": "Agence Lyon"}
    assert record["typeId"] == {"id": 1, "value": "Client"}
    assert record["salesRepId1"] == {"id": 3, "value": "Élodie Moreau"}
    listed_record = listed(api, "accounts", f"extId = '{prefix}'")[0]
    assert listed_record["branchId"] == record["branchId"]
    assert_refused(api.post("/accounts", json=account(prefix, branchId=99)), 400, "branchId")
    # written as documented, as a plain id: the shape read back is not a way to write
    read_back = account(unique("FK:"), branchId={"id": 2, "value": "Agence Lyon"})
    assert_refused(api.post("/accounts", json=read_back), 400, "branchId")


@pytest.mark.parametrize(
    ("resource", "field"), [(r, f) for r, fields in REQUIRED.items() for f in fields]
)
def test_a_missing_required_field_is_refused_by_name(
    api: httpx.Client, resource: str, field: str
) -> None:
    """S2 "Create Account", "Create Contact" (salesRepId required), "Create Product",
    "Create Product Family" (descriptionEN required), "Create Order Header" (branchId,
    reference, salesRepId), "Create an Order Line" (quantity, price, productId): a create
    without a required field → 400 naming it (SSM_API.md "What the simulator must do")."""
    body = valid_body(api, resource, unique("REQ:"))
    assert create(api, resource, body)
    missing = {k: v for k, v in body.items() if k != field}
    assert_refused(api.post(f"/{resource}", json=missing), 400, field)
    assert_refused(api.post(f"/{resource}", json={**body, field: None}), 400, field)
    bulk = api.post(f"/{resource}/bulk", json=[{"guid": "g", "data": missing}])
    if bulk.status_code == 200:
        assert bulk.json()[0]["statusCode"] == 400 and field in bulk.json()[0]["Message"]
    else:
        assert_refused(bulk, 404)  # no bulk call for this resource


@pytest.mark.parametrize("value", ["BC00042", 42.5, "42", True])
def test_an_order_number_must_be_an_integer(api: httpx.Client, value: Any) -> None:
    """S2 "Create Order Header": ``number`` is an integer (a Sage piece number such as
    ``BC00042`` belongs in ``reference``/``extId``)."""
    body = valid_body(api, "salesorders", unique("NUM:"))
    record = create(api, "salesorders", {**body, "number": 42})
    assert api.get(f"/salesorders/{record}").json()["number"] == 42
    assert_refused(api.post("/salesorders", json={**body, "number": value}), 400, "number")
    assert_refused(api.put(f"/salesorders/{record}", json={"number": value}), 400, "number")


@pytest.mark.parametrize("value", [2.5, "3", True, None])
def test_an_order_line_quantity_must_be_an_integer(api: httpx.Client, value: Any) -> None:
    """S2 "Create an Order Line": ``quantity`` is a required integer (a decimal Sage
    quantity does not fit)."""
    body = valid_body(api, "salesOrdersLines", unique("QTY:"))
    record = create(api, "salesOrdersLines", body)
    assert api.get(f"/salesordersLines/{record}").json()["quantity"] == 3
    assert_refused(api.post("/salesOrdersLines", json={**body, "quantity": value}), 400, "quantity")


def test_an_order_line_is_written_with_sales_order_id_and_read_with_salesorder_id(
    api: httpx.Client,
) -> None:
    """S2 "Create an Order Line" (POST /salesOrdersLines with ``salesOrderId``) and "Get a
    Sales Order Line" (GET /salesordersLines/{id} answers ``"salesorderId": {"id": 15,
    "value": "33445566"}`` and ``productId`` as ``{id, value}``)."""
    body = valid_body(api, "salesOrdersLines", unique("LINE:"))
    order = api.get(f"/salesorders/{body['salesOrderId']}").json()
    product = api.get(f"/products/{body['productId']}").json()
    response = api.post("/salesOrdersLines", json={**body, "discount1": 10, "order": 1})
    assert response.status_code == 200
    assert response.json()["Message"] == "entity created"
    line = api.get(f"/salesordersLines/{response.json()['id']}").json()
    assert line["salesorderId"] == {"id": order["id"], "value": order["reference"]}
    assert line["productId"] == {"id": product["id"], "value": product["model"]}
    assert "salesOrderId" not in line
    assert (line["quantity"], line["price"], line["discount1"], line["order"]) == (3, 9.9, 10, 1)
    lines = listed(api, "salesordersLines", f"salesorderId = {order['id']}")
    assert ids(lines) == [line["id"]]


def test_resource_paths_are_case_insensitive(api: httpx.Client) -> None:
    """SSM_API.md "Records": both spellings appear (S2 "Create an Order Line" POSTs
    /salesOrdersLines, "Get a Sales Order Line" GETs /salesordersLines/{id}); the simulator
    matches resource paths case-insensitively."""
    prefix = unique("CASE:")
    record = create(api, "ACCOUNTS", account(prefix))
    assert api.get(f"/Accounts/{record}").json()["extId"] == prefix
    assert ids(listed(api, "aCcOuNtS", f"extId = '{prefix}'")) == [record]
    assert api.put(f"/accounts/{record}", json={"city": "Dijon"}).status_code == 200
    body = valid_body(api, "salesOrdersLines", unique("CASE:"))
    line = create(api, "salesOrdersLines", body)
    for path in ("salesordersLines", "salesOrdersLines", "SALESORDERSLINES"):
        assert api.get(f"/{path}/{line}").json()["id"] == line
    answers = api.post("/Products/bulk", json=[{"guid": "g", "data": {"model": "m"}}]).json()
    assert answers[0]["statusCode"] == 200
    assert api.delete(f"/AcCoUnTs/{record}").json() == {"Message": "entity deleted"}


def test_reference_lists_are_readable_and_read_only(api: httpx.Client) -> None:
    """SSM_API.md "Records": ``users``, ``branches``, ``accountTypes``,
    ``salesorderStatuses``, ``currencies`` are reference lists (S2 "list of value lists")."""
    for resource in ("users", "branches", "accountTypes", "salesorderStatuses", "currencies"):
        records = api.get(f"/{resource}").json()
        assert records and all(DATE.fullmatch(r["dateCreated"]) for r in records)
        assert_refused(api.post(f"/{resource}", json={"name": "x"}), 405)
        assert_refused(api.put(f"/{resource}/1", json={"name": "x"}), 405)
        assert_refused(api.delete(f"/{resource}/1"), 405)


def test_custom_fields_are_stored_as_sent(api: httpx.Client) -> None:
    """SSM_API.md "Records": custom ("extra") fields are SSM-owned; the API stores what it
    is sent (S2 "Bulk Create Resources" data example)."""
    record = create(api, "accounts", account(unique("EXTRA:"), extra1="vip", comment="hello"))
    read = api.get(f"/accounts/{record}").json()
    assert (read["extra1"], read["comment"]) == ("vip", "hello")


# --- the simulator's own window ------------------------------------------------------------


def test_stats_count_requests_and_refusals(simulator: SimulatorProcess) -> None:
    """S1 developer.forcemanager.com "API Errors" (refusals are 4xx answers with an API
    code) and SSM_API.md "What the simulator must do" (refuse what the documentation does
    not promise): ``GET /_simulator/stats``, outside /api/v4 and without a session,
    answers ``{"requests", "calls", "refusals", "reasons"}``; a refusal is a 4xx other
    than 401 and 429, or a failed bulk item. Not an SSM call: the simulator's own window."""
    url = stats_url(simulator)
    before = httpx.get(url)
    assert before.status_code == 200
    assert set(before.json()) == {"requests", "calls", "refusals", "reasons"}
    assert before.json()["refusals"] == 0 and before.json()["reasons"] == {}

    with session(simulator) as client:  # 1 request: login
        assert client.get("/accounts").status_code == 200
        assert httpx.get(f"{simulator.url}/accounts").status_code == 401  # not a refusal
        assert client.get("/accounts", params={"where": "id >= 1"}).status_code == 400
        assert client.get("/opportunities").status_code == 404
        assert client.post("/accounts", json={"name": "no branch"}).status_code == 400
        items = [
            {"guid": "ok", "data": account("STATS:ok")},
            {"guid": "bad", "data": {"name": "no branch"}},
        ]
        assert client.post("/accounts/bulk", json=items).status_code == 200
        over = [{"guid": str(n), "data": account(f"STATS:{n}")} for n in range(201)]
        assert client.post("/accounts/bulk", json=over).status_code == 400

    after = httpx.get(url).json()
    assert after["requests"] - before.json()["requests"] == 8
    calls = {k: v - before.json()["calls"].get(k, 0) for k, v in after["calls"].items()}
    assert {k: v for k, v in calls.items() if v} == {
        "POST /login": 1,
        "GET /accounts": 3,
        "GET /opportunities": 1,
        "POST /accounts": 1,
        "POST /accounts/bulk": 2,
    }
    assert after["refusals"] == 5
    assert sum(after["reasons"].values()) == 5
    reasons = " | ".join(after["reasons"])
    for fragment in ("GET /accounts 400", "901:", "GET /opportunities 404", "POST /accounts 400"):
        assert fragment in reasons, reasons
    assert "branchId" in reasons and "at most 200" in reasons
