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
from support.workspace import Workspace

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


# --- the connector ---------------------------------------------------------------------

STATUS_FIELDS = """
[implementation.status_fields]
language = "fr"
"""
NAMES = ("Z_dossier", "Z_sync_state", "Z_sync_problem")


@pytest.fixture(params=SHAPES)
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tenant_workspace(
    shape: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A workspace on a simulator of ``shape``, the status fields on (in French); the
    connector must cause no refusal, the shape's trial included."""
    with running_simulator(str(tmp_path / "ssm.sqlite"), extra_fields_shape=shape) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        workspace = Workspace(tmp_path, sim)
        workspace.extra_config = STATUS_FIELDS
        yield workspace
        stats = workspace.simulator_stats()
        assert stats["refusals"] == 0, stats["reasons"]


def status_of(record: dict[str, Any], shape: str) -> tuple[Any, Any, Any]:
    return tuple(value_of(record, name, shape) for name in NAMES)  # type: ignore[return-value]


def calls(workspace: Workspace) -> dict[str, int]:
    return dict(workspace.simulator_stats()["calls"])


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests by call between two snapshots of the simulator's stats."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_set_up_then_every_record_shows_its_dossier_and_state(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    workspace.add_dossier("nord", clients=12, seed=1, entities=("clients", "contacts"))
    workspace.add_dossier("sud", clients=9, seed=2)
    workspace.activate_all()

    # shown, not created without a yes
    checked = workspace.cli_json("ssm", "fields")
    assert {(f["resource"], f["name"], f["type"], f["state"]) for f in checked["fields"]} == {
        (resource, name, kind, "missing")
        for resource in ("accounts", "contacts")
        for name, kind in zip(NAMES, ("list", "list", "text"), strict=True)
    }
    assert workspace.http.get("/extrafields/accounts").json() == []

    # created; no record linked yet, so the shape is not known and nothing is written
    created = workspace.cli_json("ssm", "fields", "--yes")
    assert {f["state"] for f in created["fields"]} == {"created"}
    assert created["shape"] is None and created["problem"] is None
    listed = workspace.http.get("/extrafields/accounts").json()
    assert [(f["fieldName"], f["type"]) for f in listed] == [
        ("Z_dossier", "list"),
        ("Z_sync_state", "list"),
        ("Z_sync_problem", "text"),
    ]
    assert all(f["description"].startswith("dossiersync") for f in listed)
    workspace.sync()
    assert {status_of(a, shape) for a in workspace.accounts()} == {(None, None, None)}

    # the shape found on a synced record, and said
    found = workspace.cli_json("ssm", "fields", "--yes")
    assert found["shape"] == shape and found["problem"] is None
    assert found["finding"]["trials"][-1] == {
        "shape": shape,
        "taken": True,
        "said": "read back as written",
    }
    assert {f["state"] for f in found["fields"]} == {"present"}
    said = workspace.cli("ssm", "fields").stdout
    assert f"(shape: {shape})" in said

    # the next pass writes every record's state, in bulk, with the fields only
    before = calls(workspace)
    workspace.sync()
    used = spent(before, calls(workspace))
    # 12 + 9 accounts: one bulk per dossier, or one shared by both (synced side by side)
    assert used.get("PUT /accounts/bulk") in (1, 2)
    assert used.get("PUT /contacts/bulk") == 1
    assert "POST /accounts/bulk" not in used
    for dossier_id, name in (("nord", "Dossier nord"), ("sud", "Dossier sud")):
        accounts = workspace.accounts(dossier_id)
        assert accounts
        assert {status_of(a, shape) for a in accounts} == {(name, "synchronisé", None)}
    contacts = workspace.records("contacts", "nord")
    assert {status_of(c, shape) for c in contacts} == {("Dossier nord", "synchronisé", None)}

    # steady state: nothing written
    before = calls(workspace)
    workspace.sync()
    used = spent(before, calls(workspace))
    assert not [call for call in used if call.startswith(("PUT", "POST /a", "POST /c"))], used


def test_a_list_filtered_by_the_dossier_field_holds_that_dossiers_accounts_only(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    for n, dossier_id in enumerate(("nord", "sud", "est")):
        workspace.add_dossier(dossier_id, clients=8 + n, seed=n + 1)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("ssm", "fields", "--yes")
    workspace.sync()
    for dossier_id in ("nord", "sud", "est"):
        filtered = workspace.ssm_list("accounts", f"Z_dossier = 'Dossier {dossier_id}'")
        expected = {a["extId"] for a in workspace.accounts(dossier_id)}
        assert len(expected) == 8 + ("nord", "sud", "est").index(dossier_id)
        assert {a["extId"] for a in filtered} == expected


def test_a_new_dossier_after_set_up_carries_its_fields_in_its_creates(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("ssm", "fields", "--yes")
    workspace.sync()
    workspace.add_dossier("sud", clients=30, seed=2)
    workspace.cli("dossiers", "activate", "sud")
    before = calls(workspace)
    workspace.sync("--dossier", "sud")
    used = spent(before, calls(workspace))
    assert used["POST /accounts/bulk"] == 1
    assert "PUT /accounts/bulk" not in used  # no request of their own
    assert {status_of(a, shape) for a in workspace.accounts("sud")} == {
        ("Dossier sud", "synchronisé", None)
    }


def test_a_record_moving_to_error_and_back_shows_it_within_one_pass(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("ssm", "fields", "--yes")
    workspace.sync()
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00003'",
    )
    # the dry run shows the state it would write, and writes nothing
    preview = workspace.cli_json("sync", "--dry-run")
    updates = [
        w
        for step in preview[0]["entities"]
        for w in step["writes"]
        if w["action"] == "update" and w["target"] == "accounts"
    ]
    assert [w["key"] for w in updates] == ["CL00003"]
    assert "erreur" in str(updates[0]["changes"])
    before = calls(workspace)
    workspace.sync(expect=1)
    assert spent(before, calls(workspace)).get("PUT /accounts/bulk") == 1
    dossier, state, problem = status_of(workspace.account("nord:CL00003"), shape)
    assert (dossier, state) == ("Dossier nord", "erreur")
    assert problem.startswith("adresse e-mail non valide : 'pas-une-adresse'")
    assert "Dossier nord" not in problem and len(problem) <= 250
    others = [a for a in workspace.accounts("nord") if a["extId"] != "nord:CL00003"]
    assert {status_of(a, shape)[1] for a in others} == {"synchronisé"}

    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'contact@exemple.fr', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00003'",
    )
    before = calls(workspace)
    workspace.sync()
    used = spent(before, calls(workspace))
    assert used.get("PUT /accounts/bulk") == 1  # the data update carries the state
    assert status_of(workspace.account("nord:CL00003"), shape) == (
        "Dossier nord",
        "synchronisé",
        None,
    )


def test_a_deactivated_dossiers_records_keep_their_fields_labelled_inactive(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.add_dossier("sud", clients=7, seed=2)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("ssm", "fields", "--yes")
    workspace.sage_execute(
        "sud",
        "UPDATE F_COMPTET SET CT_EMail = 'autre-adresse', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'",
    )
    workspace.sync(expect=1)
    refused_problem = status_of(workspace.account("sud:CL00002"), shape)[2]
    assert "autre-adresse" in refused_problem

    workspace.cli("dossiers", "deactivate", "sud")
    sud = {a["extId"]: status_of(a, shape) for a in workspace.accounts("sud")}
    assert {state for _, state, _ in sud.values()} == {"inactif"}
    assert {dossier for dossier, _, _ in sud.values()} == {"Dossier sud"}
    assert sud["sud:CL00002"][2] == refused_problem  # its problem as it was
    assert {status_of(a, shape)[1] for a in workspace.accounts("nord")} == {"synchronisé"}

    # said once: the next check labels nothing again
    again = workspace.cli_json("ssm", "fields")
    assert again["inactive_labelled"] == 0


# --- reading what the unpublished parts may look like ----------------------------------


def test_a_listed_field_is_read_by_its_signs() -> None:
    from dossiersync.plugins.sales_management.extra_fields import definitions

    listed = [
        {"id": 3, "fieldName": "Z_dossier", "type": "List", "description": "dossiersync: x"},
        {"name": "Z_other", "typeId": 5, "descriptionES": "Otro", "descriptionFR": "Autre"},
        {"fieldName": "Z_gone", "type": "text", "deleted": True},
        {"type": "text"},
        "not a field",
    ]
    found = definitions("accounts", listed)
    assert [(f.name, f.type, f.id, f.marked) for f in found] == [
        ("Z_dossier", "list", 3, True),
        ("Z_other", None, None, False),  # a type shown as a number is not guessed
    ]


def test_a_tenant_replacing_every_extra_field_at_each_write_is_refused() -> None:
    """A plausible third behaviour, which no simulator switch offers: a write of some
    extra fields empties the others. Writing the status fields there would erase the
    implementation's own fields, so the shape found is not used."""
    from dossiersync.plugins.sales_management.extra_fields import find_shape

    record: dict[str, Any] = {"id": 1, "extraFields": {"Z_own": "kept?"}}

    def update(resource: str, record_id: int, body: Any) -> None:
        if "extraFields" in body:
            record["extraFields"] = dict(body["extraFields"])  # replaced whole

    def read(resource: str, record_id: int) -> dict[str, Any]:
        return record

    names = {"dossier": "Z_d", "state": "Z_s", "problem": "Z_p"}
    finding = find_shape(update, read, "accounts", 1, names, "Dossier nord")
    assert finding.shape == "nested"
    assert finding.problem is not None and "erase" in finding.problem
    assert [t.taken for t in finding.trials] == [False, True]


def test_the_set_up_screen_shows_what_ssm_fields_last_found(
    tenant_workspace: Workspace, shape: str
) -> None:
    import warnings

    from dossiersync.config import load
    from dossiersync.state.store import StateStore
    from dossiersync.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    token = "status-fields-page-token-0123456789"
    workspace = tenant_workspace
    workspace.extra_config = STATUS_FIELDS + f'[web]\ntoken = "{token}"\n'
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    workspace.sync()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "fr"}
    with TestClient(create_app(config, store), headers=headers) as page:
        before = page.get("/setup").text
        assert "Champs d’état dans Sales Management" in before
        assert "Pas encore vérifiés" in before
        workspace.cli("ssm", "fields", "--yes")
        after = page.get("/setup").text
    store.dispose()
    assert f'data-shape="{shape}"' in after
    for name in NAMES:
        assert f'data-field="accounts.{name}"' in after
    assert after.count("créé") >= 3  # the three fields, as created


def test_fields_dossiersync_did_not_create_are_said_and_left_alone(
    tenant_workspace: Workspace, shape: str
) -> None:
    workspace = tenant_workspace
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    workspace.sync()
    for name, kind in (("Z_dossier", "text"), ("Z_sync_state", "list")):
        body = {"entity": "accounts", "fieldName": name, "type": kind, "description": "ours"}
        assert workspace.http.post("/extrafields/accounts", json=body).status_code == 200
    tenant_value = written(shape, Z_dossier="the tenant's own")
    first = workspace.accounts("nord")[0]
    workspace.ssm_put("accounts", first["id"], tenant_value)

    refused = workspace.cli_json("ssm", "fields", "--yes", expect=1)
    states = {f["name"]: f["state"] for f in refused["fields"]}
    assert states == {
        "Z_dossier": "other_type",
        "Z_sync_state": "not_ours",
        "Z_sync_problem": "missing",
    }
    assert any("exists as a text field, not a list one" in c for c in refused["conflicts"])
    assert any("did not create it" in c for c in refused["conflicts"])
    listed = workspace.http.get("/extrafields/accounts").json()
    assert [f["fieldName"] for f in listed] == ["Z_dossier", "Z_sync_state"]  # nothing created
    workspace.sync()
    assert value_of(workspace.account(first["extId"]), "Z_dossier", shape) == "the tenant's own"
    assert {value_of(a, "Z_sync_state", shape) for a in workspace.accounts("nord")} == {None}

    # other names in the configuration: the set-up goes through, the tenant's fields
    # are still left as they are
    workspace.extra_config = STATUS_FIELDS + 'dossier = "Z_groupe"\nstate = "Z_etat"\n'
    workspace.write_config()
    done = workspace.cli_json("ssm", "fields", "--yes")
    assert {f["name"]: f["state"] for f in done["fields"]} == {
        "Z_groupe": "created",
        "Z_etat": "created",
        "Z_sync_problem": "created",
    }
    assert done["shape"] == shape
    workspace.sync()
    for record in workspace.accounts("nord"):
        assert value_of(record, "Z_groupe", shape) == "Dossier nord"
        assert value_of(record, "Z_etat", shape) == "synchronisé"
        assert value_of(record, "Z_sync_state", shape) is None
    assert value_of(workspace.account(first["extId"]), "Z_dossier", shape) == "the tenant's own"
