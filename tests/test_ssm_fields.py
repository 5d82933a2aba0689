"""Sync states and dossiers shown in Sales Management itself, as extra fields.

The extra-field calls are documented (S2, withone.ai "Sage Sales Management / List Extra
Fields for a Resource", "Create an Extra Field for a Resource", "Get Extra Fields Schema
for a Resource"); how a field's value appears on a record is not, so the simulator
offers two shapes (``--extra-fields-shape flat|nested``) and every test here runs on
both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dossiersync.plugins.sales_management.simulator import SimulatorProcess, running_simulator

from support.ssm_http import account, create, session

SHAPES = ("flat", "nested")


def value_of(record: dict[str, Any], name: str, shape: str) -> Any:
    """An extra field's value as the simulator shows it in ``shape``."""
    if shape == "nested":
        return (record.get("extraFields") or {}).get(name)
    return record.get(name)


def written(shape: str, **values: Any) -> dict[str, Any]:
    """Extra field values as a record body carries them in ``shape``."""
    return {"extraFields": values} if shape == "nested" else values


# --- the simulator ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=SHAPES)
def shaped(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatorProcess, str]]:
    with running_simulator(extra_fields_shape=request.param) as simulator:
        yield simulator, request.param


@pytest.fixture(scope="module")
def tenant(shaped: tuple[SimulatorProcess, str]) -> Iterator[tuple[httpx.Client, str]]:
    """A session on a tenant whose accounts have a list field and a text field."""
    simulator, shape = shaped
    with session(simulator) as api:
        for name, kind in (("Z_group", "list"), ("Z_note", "text")):
            body = {"entity": "accounts", "fieldName": name, "type": kind}
            answer = api.post("/extrafields/accounts", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["Message"] == "entity created"
            assert isinstance(answer.json()["id"], int)
        yield api, shape


def test_extra_fields_are_listed_with_their_type_and_schema(
    tenant: tuple[httpx.Client, str],
) -> None:
    api, _shape = tenant
    listed = api.get("/extrafields/accounts").json()
    assert [(f["fieldName"], f["type"], f["entity"]) for f in listed] == [
        ("Z_group", "list", "accounts"),
        ("Z_note", "text", "accounts"),
    ]
    assert api.get("/extrafields/contacts").json() == []
    schema = api.get("/extrafields/ACCOUNTS/schema").json()
    assert schema["properties"]["type"]["enum"] == [
        "datetime",
        "text",
        "decimal",
        "bit",
        "list",
        "multivalue",
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "said"),
    [
        ("/extrafields/accounts", {"entity": "accounts", "fieldName": "Z_x"}, 400, "'type'"),
        ("/extrafields/accounts", {"entity": "accounts", "type": "text"}, 400, "'fieldName'"),
        (
            "/extrafields/accounts",
            {"entity": "accounts", "fieldName": "Z_x", "type": "integer"},
            400,
            "type must be one of",
        ),
        (
            "/extrafields/accounts",
            {"entity": "contacts", "fieldName": "Z_x", "type": "text"},
            400,
            "does not match",
        ),
        (
            "/extrafields/accounts",
            {"entity": "accounts", "fieldName": "z_GROUP", "type": "text"},
            400,
            "already",
        ),
        (
            "/extrafields/accounts",
            {"entity": "accounts", "fieldName": "name", "type": "text"},
            400,
            "field of accounts already",
        ),
        (
            "/extrafields/productFamilies",
            {"entity": "productFamilies", "fieldName": "Z_x", "type": "text"},
            404,
            "910",
        ),
    ],
)
def test_an_extra_field_the_documentation_does_not_allow_is_refused(
    tenant: tuple[httpx.Client, str], path: str, body: dict[str, Any], status: int, said: str
) -> None:
    api, _shape = tenant
    answer = api.post(path, json=body)
    assert answer.status_code == status
    assert said in answer.json()["Message"]


def test_a_value_is_kept_in_the_tenants_shape_only(tenant: tuple[httpx.Client, str]) -> None:
    api, shape = tenant
    other = "flat" if shape == "nested" else "nested"
    kept = create(api, "accounts", account("x:kept", **written(shape, Z_group="Acme")))
    ignored = create(api, "accounts", account("x:ignored", **written(other, Z_group="Acme")))
    assert value_of(api.get(f"/accounts/{kept}").json(), "Z_group", shape) == "Acme"
    record = api.get(f"/accounts/{ignored}").json()
    assert value_of(record, "Z_group", shape) is None
    assert value_of(record, "Z_group", other) is None


def test_a_partial_update_keeps_the_other_extra_fields(tenant: tuple[httpx.Client, str]) -> None:
    api, shape = tenant
    record_id = create(api, "accounts", account("x:partial", **written(shape, Z_group="A")))
    answer = api.put(f"/accounts/{record_id}", json=written(shape, Z_note="seen"))
    assert answer.status_code == 200, answer.text
    record = api.get(f"/accounts/{record_id}").json()
    assert value_of(record, "Z_group", shape) == "A"
    assert value_of(record, "Z_note", shape) == "seen"


def test_a_value_of_the_wrong_type_is_refused(tenant: tuple[httpx.Client, str]) -> None:
    api, shape = tenant
    answer = api.post("/accounts", json=account("x:typed", **written(shape, Z_group=12)))
    assert answer.status_code == 400
    assert "Z_group" in answer.json()["Message"]


def test_lists_filter_on_an_extra_field_by_its_name(tenant: tuple[httpx.Client, str]) -> None:
    api, shape = tenant
    ids = {
        create(api, "accounts", account(f"f:{n}", **written(shape, Z_group=group)))
        for n, group in enumerate(["Nord", "Sud", "Nord"])
    }
    found = api.get("/accounts", params={"where": "Z_group = 'Nord' AND extId LIKE 'f:%'"})
    assert found.status_code == 200, found.text
    nord = [r["id"] for r in found.json()]
    assert len(nord) == 2 and set(nord) <= ids
    assert all(value_of(r, "Z_group", shape) == "Nord" for r in found.json())


def test_a_simulator_file_of_the_previous_version_gets_the_extra_fields_table(
    tmp_path: Any,
) -> None:
    import sqlite3

    from dossiersync.plugins.sales_management.simulator.store import Store

    path = str(tmp_path / "ssm.sqlite")
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE extra_fields")
        db.execute("PRAGMA user_version = 1")
    db.close()
    store = Store(path)
    try:
        assert store.create_extra_field(
            "accounts", {"entity": "accounts", "fieldName": "Z_a", "type": "text"}
        )
        _users, total = store.page("users")
        assert total == 3  # the reference lists are not seeded twice
    finally:
        store.close()
