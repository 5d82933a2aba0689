"""A restored Sage file against the simulator: what it lacks is never deleted in SSM
without a person confirming it; one or a few vanished newest rows are deletions.

The Sage rows carry real stamps, as Sage writes them: a client created after the backup
has its creation date (``CT_DateCreate``) and a modification time (``cbModification``)
later than any row of the backup, so restoring the backup moves the table's high-water
mark backwards and leaves every other row as it was synced.
"""

from __future__ import annotations

import html
import shutil
import warnings

from click.testing import CliRunner

from dossiersync.cli import cli
from dossiersync.config import load
from dossiersync.state.store import StateStore
from dossiersync.sync.links import Kept
from dossiersync.web import create_app

from support.workspace import Workspace, totals

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "web-token-for-restore-tests-0123"


def create_clients(ws: Workspace, codes: list[str]) -> None:
    """New clients, each stamped with its creation time as Sage does (one after the other)."""
    for code in codes:
        ws.sage_execute(
            "nord",
            "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil, "
            "CT_Ville, CT_DateCreate, cbModification) VALUES (?, ?, 0, 0, 0, 'Lens', "
            "date('now'), strftime('%Y-%m-%d %H:%M:%f','now'))",
            (code, f"Client récent {code}"),
        )


def review(ws: Workspace) -> dict[str, dict]:
    found = ws.cli_json("records", "--dossier", "nord", "--label", "pending_review")
    return {r["sage_key"]: r for r in found if not r["deleted"]}


def open_incidents(ws: Workspace) -> list[dict]:
    found: list[dict] = ws.cli_json("incidents", "--dossier", "nord", "--open")
    return found


def test_a_restore_that_lost_the_newest_rows_deletes_nothing_until_confirmed(
    workspace: Workspace,
) -> None:
    path = workspace.add_dossier("nord", clients=150, seed=1)
    workspace.activate_all()
    workspace.sync()
    backup = path.with_suffix(".backup")
    shutil.copy(path, backup)
    new = [f"CN{n:05d}" for n in range(1, 41)]
    create_clients(workspace, new)
    assert totals(workspace.sync())["created"] == 40
    assert len(workspace.accounts("nord")) == 190

    shutil.copy(backup, path)  # the Sage file restored from the copy taken before
    runs = workspace.sync()

    # nothing deleted in SSM: 40 of 190 is under the mass-deletion threshold, but the
    # high-water mark went backwards with 40 keys gone: a restore, not 40 deletions
    assert totals(runs)["deleted"] == 0
    assert len(workspace.accounts("nord")) == 190
    assert workspace.accounts("nord", deleted=True) == []
    (incident,) = open_incidents(workspace)
    assert incident["kind"] == "restored_database"
    assert "restored database" in incident["message"]
    assert "40 clients not in the restored database are kept there" in incident["message"]
    assert "dossiersync deletions confirm --dossier nord --entity clients" in incident["message"]
    kept = review(workspace)
    assert sorted(kept) == new
    assert {r["error"] for r in kept.values()} == {Kept.NOT_RESTORED}

    # the status page shows what a person can do, in the page's language
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        app = create_app(config, store)
        french = TestClient(app, headers={**auth, "Accept-Language": "fr-FR,fr;q=0.9"})
        page = html.unescape(french.get(f"/incidents/{incident['incident_id']}").text)
        assert "40 fiches (clients) absentes de la base restaurée" in page
        assert "dossiersync deletions confirm --dossier nord --entity clients" in page
    finally:
        store.dispose()

    # later passes delete nothing either, and the incident stays open: nobody decided
    workspace.sync()
    assert len(workspace.accounts("nord")) == 190
    assert [i["kind"] for i in open_incidents(workspace)] == ["restored_database"]

    # one of them is entered again in Sage: synced again, no longer waiting for anyone
    create_clients(workspace, [new[0]])
    workspace.sync()
    assert new[0] not in review(workspace)
    assert workspace.account(f"nord:{new[0]}")["city"] == "Lens"
    assert [i["kind"] for i in open_incidents(workspace)] == ["restored_database"]

    # a person confirms the others' deletion; the next sync carries it out
    confirmed = workspace.cli_json("deletions", "confirm", "--dossier", "nord", "--yes")
    assert sorted(r["sage_key"] for r in confirmed) == new[1:]
    runs = workspace.sync()
    assert totals(runs)["deleted"] == 39
    gone = {a["extId"] for a in workspace.accounts("nord", deleted=True)}
    assert gone == {f"nord:{code}" for code in new[1:]}
    assert len(workspace.accounts("nord")) == 151
    assert review(workspace) == {}
    assert open_incidents(workspace) == []
    events = workspace.cli_json(
        "journal", "--dossier", "nord", "--run", str(runs[0]["runs"][0]["run_id"])
    )
    assert {e["record_key"] for e in events if e["action"] == "deleted"} == set(new[1:])


def test_deletions_confirm_asks_first_and_changes_nothing_on_no(workspace: Workspace) -> None:
    workspace.sync_settings["mass_deletion_minimum"] = 3
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.activate_all()
    workspace.sync()
    # 6 of 10 clients vanish, the 4 newest stay (no restore): too many at once
    workspace.sage_execute(
        "nord",
        "DELETE FROM F_COMPTET WHERE CT_Type = 0 AND CT_Num NOT IN (SELECT CT_Num FROM "
        "F_COMPTET WHERE CT_Type = 0 ORDER BY cbModification DESC LIMIT 4)",
    )
    workspace.sync()
    assert [i["kind"] for i in open_incidents(workspace)] == ["mass_deletion_refused"]
    assert (
        "dossiersync deletions confirm --dossier nord --entity clients"
        in (open_incidents(workspace)[0]["message"])
    )
    assert len(review(workspace)) == 6

    args = ["--config", str(workspace.config_path), "deletions", "confirm", "--dossier", "nord"]
    answered = CliRunner().invoke(cli, args, input="n\n")
    assert answered.exit_code == 1
    assert "Delete in Sales Management 6 clients of dossier nord" in answered.output
    assert "nothing confirmed" in answered.output
    assert {r["error"] for r in review(workspace).values()} == {Kept.MASS_DELETION}
    workspace.sync()
    assert workspace.accounts("nord", deleted=True) == []

    answered = CliRunner().invoke(cli, args, input="y\n")
    assert answered.exit_code == 0, answered.output
    assert "6 clients confirmed" in answered.output
    assert totals(workspace.sync())["deleted"] == 6
    assert len(workspace.accounts("nord", deleted=True)) == 6
    again = workspace.cli("deletions", "confirm", "--dossier", "nord", "--yes")
    assert "no deletion waits for a confirmation" in again.output


def test_deleting_the_newest_rows_is_no_restore(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=150, seed=1)
    workspace.activate_all()
    workspace.sync()
    new = ["CN00001", "CN00002"]
    create_clients(workspace, new)  # the newest rows of the table
    workspace.sync()

    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num IN ('CN00001', 'CN00002')")
    runs = workspace.sync()

    counts = totals(runs)
    assert (counts["deleted"], counts["updated"]) == (2, 0)  # no realigning pass either
    assert open_incidents(workspace) == []
    gone = {a["extId"] for a in workspace.accounts("nord", deleted=True)}
    assert gone == {"nord:CN00001", "nord:CN00002"}
    assert review(workspace) == {}
