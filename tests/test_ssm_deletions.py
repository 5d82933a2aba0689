"""A client deleted in Sales Management, against the simulator: kept in Sage (a deletion
in SSM does not reach Sage for clients), labelled ``pending_review`` and told in an
incident that says what a person can do; never created again in SSM behind anyone's back.

The deletion is made as a user makes it, ``DELETE /accounts/{id}``: the account stays
listed with ``deleted: true`` and a ``dateDeleted``, its ``dateUpdated`` unmoved
(SSM_API.md, "Lists").
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import pytest

from dossiersync.config import load
from dossiersync.state.store import StateStore
from dossiersync.sync.links import Kept
from dossiersync.web import create_app

from support.workspace import Workspace, totals

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "web-token-for-deletion-tests-0123"
PROSPECT = "CL00002"  # a prospect of the seed-1 demo dossier: edited on both sides
SAGE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')"


def record(ws: Workspace, key: str) -> dict[str, Any]:
    (found,) = [
        r
        for r in ws.cli_json("records", "--dossier", "nord", "--entity", "clients")
        if r["sage_key"] == key
    ]
    return found


def incidents(ws: Workspace) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ws.cli_json("incidents", "--dossier", "nord", "--open")
    return found


def edit_in_sage(ws: Workspace, city: str) -> None:
    ws.sage_execute(
        "nord",
        f"UPDATE F_COMPTET SET CT_Ville = ?, cbModification = {SAGE_NOW} WHERE CT_Num = ?",  # noqa: S608
        (city, PROSPECT),
    )


def synced_then_deleted_in_ssm(ws: Workspace) -> dict[str, Any]:
    ws.add_dossier("nord", clients=10, seed=1)
    ws.activate_all()
    ws.sync()
    account = ws.account(f"nord:{PROSPECT}")
    assert account["typeId"]["id"] == 2  # a prospect: both ways
    ws.ssm_delete("accounts", account["id"])
    return account


def test_an_account_deleted_in_ssm_is_kept_labelled_and_told(workspace: Workspace) -> None:
    account = synced_then_deleted_in_ssm(workspace)

    runs = workspace.sync()
    assert all(r["outcome"] == "succeeded" for d in runs for r in d["runs"])
    assert PROSPECT in workspace.sage_clients("nord")  # not deleted in Sage
    link = record(workspace, PROSPECT)
    assert (link["label"], link["error"], link["ssm_id"]) == (
        "pending_review",
        Kept.IN_SAGE,
        account["id"],
    )
    (incident,) = incidents(workspace)
    assert (incident["kind"], incident["record_key"]) == ("deleted_in_ssm", PROSPECT)
    assert incident["message"] == (
        f"Dossier nord, client {PROSPECT} (SSM id {account['id']}): deleted in Sales "
        "Management; kept in Sage 50FR, which a deletion made in Sales Management does not "
        "reach (label pending_review). Its Sage 50FR edits are not sent any more: delete it "
        "in Sage 50FR too, or run `dossiersync deletions recreate --dossier nord --entity "
        f"clients {PROSPECT}` to create it again in Sales Management."
    )
    # told once: a sync that finds nothing new adds no occurrence
    workspace.sync()
    assert [i["occurrences"] for i in incidents(workspace)] == [1]

    # the Sage edit of that client is not sent: no account created, none undeleted
    edit_in_sage(workspace, "Arras")
    runs = workspace.sync()
    assert totals(runs)["created"] == totals(runs)["updated"] == 0
    assert workspace.records("accounts", f"nord:{PROSPECT}") == []
    assert workspace.http.get(f"/accounts/{account['id']}").json()["deleted"] is True
    assert len(workspace.accounts("nord")) == 9
    assert record(workspace, PROSPECT)["label"] == "pending_review"
    (incident,) = incidents(workspace)
    assert incident["occurrences"] == 2
    assert (
        "It was changed in Sage 50FR after that deletion: the change was not sent and "
        "nothing was created again in Sales Management." in incident["message"]
    )
    assert f"deletions recreate --dossier nord --entity clients {PROSPECT}" in (incident["message"])

    # the status page says the same in French
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        french = TestClient(
            create_app(config, store), headers={**auth, "Accept-Language": "fr-FR,fr;q=0.9"}
        )
        page = html.unescape(french.get(f"/incidents/{incident['incident_id']}").text)
        assert "fiche supprimée dans Sales Management ; conservée dans Sage 50FR" in page
        assert "la modification n’a pas été envoyée" in page
        assert f"deletions recreate --dossier nord --entity clients {PROSPECT}" in page
    finally:
        store.dispose()

    # a person asks for it back: the next sync creates it again from what Sage holds
    asked = workspace.cli_json(
        "deletions", "recreate", "--dossier", "nord", "--entity", "clients", PROSPECT
    )
    assert asked == [{"entity": "clients", "sage_key": PROSPECT}]
    assert totals(workspace.sync())["created"] == 1
    again = workspace.account(f"nord:{PROSPECT}")
    assert again["id"] != account["id"] and again["city"] == "Arras"
    assert record(workspace, PROSPECT)["label"] == "synced"
    assert incidents(workspace) == []
    assert len(workspace.accounts("nord")) == 10


def test_deleting_it_in_sage_too_closes_the_incident(workspace: Workspace) -> None:
    account = synced_then_deleted_in_ssm(workspace)
    workspace.sync()
    assert [i["kind"] for i in incidents(workspace)] == ["deleted_in_ssm"]

    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = ?", (PROSPECT,))
    runs = workspace.sync()

    assert totals(runs)["deleted"] == 0  # nothing left to delete on either side
    assert incidents(workspace) == []
    assert record(workspace, PROSPECT)["deleted"] is True
    assert workspace.http.get(f"/accounts/{account['id']}").json()["deleted"] is True


def test_recreate_refuses_a_record_that_was_not_deleted_in_ssm(workspace: Workspace) -> None:
    synced_then_deleted_in_ssm(workspace)
    workspace.sync()

    refused = workspace.cli(
        "deletions",
        "recreate",
        "--dossier",
        "nord",
        "--entity",
        "clients",
        "CL00001",
        PROSPECT,
        expect=2,
    )
    assert "dossier nord, clients: CL00001: not a record deleted in Sales Management" in (
        refused.output
    )
    assert record(workspace, PROSPECT)["label"] == "pending_review"  # nothing changed


@pytest.mark.ssm_refusals  # the update of the deleted account: answered "does not exist"
def test_a_sage_edit_sent_after_the_deletion_is_told_too(workspace: Workspace) -> None:
    """The Sage edit reaches the Sage -> SSM pass before the SSM pass has seen the
    deletion: the update is answered "not found", and the record is told the same way."""
    account = synced_then_deleted_in_ssm(workspace)
    edit_in_sage(workspace, "Béthune")

    runs = workspace.sync("--entity", "clients")

    assert totals(runs)["created"] == 0
    assert workspace.records("accounts", f"nord:{PROSPECT}") == []
    assert workspace.http.get(f"/accounts/{account['id']}").json()["deleted"] is True
    assert record(workspace, PROSPECT)["label"] == "pending_review"
    (incident,) = incidents(workspace)
    assert incident["kind"] == "deleted_in_ssm"
    assert "the change was not sent" in incident["message"]


def test_under_the_service_a_recreate_is_carried_out_within_seconds(
    workspace: Workspace,
) -> None:
    """No probe sees a person's decision (Sage did not change): the service looks for
    decided records itself, and their pass runs within seconds, not at the complete pass
    an hour later."""
    import time

    from support.service import running_service

    ws = workspace
    account = synced_then_deleted_in_ssm(ws)
    ws.sync()
    assert record(ws, PROSPECT)["label"] == "pending_review"
    ws.extra_config = "[service]\ninterval_seconds = 3600\n"
    ws.write_config()
    before = max(r["run_id"] for r in ws.cli_json("journal", "--dossier", "nord"))
    with running_service(ws):
        time.sleep(2)  # started, and idle: its dossier was passed within its interval
        ws.cli_json("deletions", "recreate", "--dossier", "nord", "--entity", "clients", PROSPECT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not live(ws):
            time.sleep(0.2)
    (again,) = live(ws)
    assert again["id"] != account["id"]
    runs = [r for r in ws.cli_json("journal", "--dossier", "nord") if r["run_id"] > before]
    created = [r for r in runs if r["counts"].get("created")]
    assert [(r["direction"], r["trigger"]) for r in created] == [("sage_to_ssm", "change")]
    assert record(ws, PROSPECT)["label"] == "synced"


def live(ws: Workspace) -> list[dict[str, Any]]:
    """The prospect's live accounts in SSM."""
    return [a for a in ws.accounts("nord") if a["extId"] == f"nord:{PROSPECT}"]
