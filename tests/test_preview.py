"""``sync --dry-run``: writes nothing anywhere, and says exactly what the next sync does.

Real parts only: two reference dossiers read (and, for the real sync, written) through
the SQLite3 ODBC driver, the SSM simulator as a real HTTP server, the CLI.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_sync_orders import add_dossier, new_order

from support.workspace import Workspace


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    return workspace


RESOURCES = ("accounts", "products", "productFamilies", "salesorders", "salesordersLines")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def ssm_everything(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Every record of the resources the sync writes, deleted ones included."""
    return {r: sorted(ws.ssm_list(r), key=lambda x: x["id"]) for r in RESOURCES}


def writes_sent(ws: Workspace) -> dict[str, int]:
    calls = ws.simulator_stats()["calls"]
    # signing in is not a write
    return {k: v for k, v in calls.items() if not k.startswith("GET") and k != "POST /login"}


def state_db(ws: Workspace) -> Path:
    return Path(ws.state_url.removeprefix("sqlite:///"))


def events_after(ws: Workspace, run_id: int) -> Counter[tuple[str, str, str, str, str]]:
    conn = sqlite3.connect(state_db(ws))
    try:
        rows = conn.execute(
            "SELECT r.dossier_id, r.entity, r.direction, e.record_key, e.action "
            "FROM event e JOIN run r ON r.id = e.run_id "
            "WHERE r.id > ? AND e.action != 'unchanged'",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    return Counter(tuple(row) for row in rows)


def last_run(ws: Workspace) -> int:
    conn = sqlite3.connect(state_db(ws))
    try:
        return int(conn.execute("SELECT max(id) FROM run").fetchone()[0])
    finally:
        conn.close()


def predicted(preview: list[dict[str, Any]]) -> Counter[tuple[str, str, str, str, str]]:
    out: Counter[tuple[str, str, str, str, str]] = Counter()
    for dossier in preview:
        for step in dossier["entities"]:
            for record in step["records"]:
                out[
                    (
                        dossier["dossier_id"],
                        step["entity"],
                        step["direction"],
                        record["key"],
                        record["action"],
                    )
                ] += 1
    return out


def changed_dossiers(ws: Workspace) -> tuple[str, str, str]:
    """Two synced dossiers, then on both sides: creates, updates, a deletion, one record
    that will be refused.  Returns (updated client, deleted client, refused client)."""
    add_dossier(ws, "alpha", seed=1)
    add_dossier(ws, "beta", seed=2, branch_id=1)
    ws.activate_all()
    ws.sync()
    codes = sorted(ws.sage_clients("alpha"))
    updated, deleted, refused = codes[1], codes[-1], codes[2]
    ws.sage_execute(
        "alpha",
        "UPDATE F_COMPTET SET CT_Ville = 'Albi', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
        (updated,),
    )
    ws.sage_execute("alpha", "DELETE FROM F_COMPTET WHERE CT_Num = ?", (deleted,))
    ws.sage_execute(
        "alpha",
        "UPDATE F_COMPTET SET CT_EMail = 'pas-un-email', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
        (refused,),
    )
    ws.sage_execute(
        "beta",
        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil, "
        "CT_Ville, cbModification) VALUES ('CL09001', 'Boulangerie Neuve', 0, 0, 0, 'Rodez', "
        "strftime('%Y-%m-%d %H:%M:%f','now'))",
    )
    # in SSM: an order for a beta client and a prospect in beta's branch
    new_order(ws, "beta", [("TST-001", 2, 0), ("TST-002", 1, 10)])
    prospect = {"name": "Prospect du salon", "branchId": 1, "salesRepId1": 1, "typeId": 2}
    ws.ssm_post("accounts", dict(prospect, city="Millau"))
    return updated, deleted, refused


def test_dry_run_writes_nothing_and_predicts_the_next_sync(ws: Workspace) -> None:
    updated, deleted, refused = changed_dossiers(ws)
    files = {d: ws.dossiers[d]["path"] for d in ws.dossiers}
    before_files = {d: digest(p) for d, p in files.items()}
    before_state = dump(state_db(ws))
    before_ssm = ssm_everything(ws)
    before_writes = writes_sent(ws)

    preview = ws.cli_json("sync", "--dry-run")

    # nothing written anywhere
    assert {d: digest(p) for d, p in files.items()} == before_files
    assert dump(state_db(ws)) == before_state
    assert writes_sent(ws) == before_writes
    assert ssm_everything(ws) == before_ssm

    # the preview says, field by field, what changes
    by_dossier = {d["dossier_id"]: d for d in preview}
    alpha = {(s["entity"], s["direction"]): s for s in by_dossier["alpha"]["entities"]}
    clients = {r["key"]: r for r in alpha[("clients", "sage_to_ssm")]["records"]}
    assert clients[updated]["action"] == "updated"
    (write,) = clients[updated]["writes"]
    assert write["side"] == "ssm" and write["target"] == "accounts"
    assert write["changes"]["city"]["after"] == "Albi"
    assert write["changes"]["city"]["before"] != "Albi"
    assert clients[deleted]["action"] == "deleted"
    assert clients[refused]["action"] == "failed"
    assert "email" in clients[refused]["detail"]
    beta = {(s["entity"], s["direction"]): s for s in by_dossier["beta"]["entities"]}
    created = {r["key"]: r for r in beta[("clients", "sage_to_ssm")]["records"]}
    assert created["CL09001"]["action"] == "created"
    assert created["CL09001"]["writes"][0]["fields"]["name"] == "Boulangerie Neuve"
    orders = beta[("orders", "ssm_to_sage")]["records"]
    assert [r["action"] for r in orders] == ["created"]
    tables = Counter(w["target"] for w in orders[0]["writes"])
    assert tables["F_DOCENTETE"] == 1 and tables["F_DOCLIGNE"] == 2
    prospects = [r for r in beta[("clients", "ssm_to_sage")]["records"] if r["action"] == "created"]
    assert len(prospects) == 1

    # ... and the real sync then does exactly that
    start = last_run(ws)
    ws.sync(expect=1)  # the refused record makes the run partial
    assert events_after(ws, start) == predicted(preview)


def test_dry_run_in_words(ws: Workspace) -> None:
    updated, deleted, refused = changed_dossiers(ws)
    out = ws.cli("sync", "--dry-run", "--dossier", "alpha").stdout
    lines = out.splitlines()
    assert any(
        "clients" in line and "would update 1" in line and "would delete 1" in line
        for line in lines
    ), out
    assert any(updated in line and "city:" in line and "'Albi'" in line for line in lines), out
    assert any(refused in line and "failed" in line for line in lines), out
    assert lines[-1] == "(dry run: nothing was written)"
    assert "beta" not in out


def test_preview_state_is_a_copy_of_either_store(state_url: str, tmp_path: Path) -> None:
    """The preview reads the state it copies, from SQLite or PostgreSQL, and changes it not."""
    from sqlalchemy import func, select

    from dossiersync.journal import open_incident, utcnow
    from dossiersync.preview import copy_state
    from dossiersync.state import Dossier, Incident, Link, StateStore

    store = StateStore(state_url)
    now = utcnow()
    with store.session() as s:
        s.add(Dossier(id="nord", name="Nord", state="active", created_at=now))
        s.flush()
        s.add(
            Link(
                dossier_id="nord",
                entity="clients",
                sage_key="CL1",
                ssm_id=7,
                base={"name": "Épicerie"},
                updated_at=now,
            )
        )
        open_incident(
            s,
            "nord",
            entity="clients",
            record_key="CL2",
            kind="invalid_record",
            message="bad",
            direction="sage_to_ssm",
        )
    scratch = StateStore(f"sqlite:///{tmp_path / 'copy.db'}")
    copy_state(store, scratch)
    with scratch.session() as s:
        (link,) = s.scalars(select(Link))
        assert (link.sage_key, link.ssm_id, link.base) == ("CL1", 7, {"name": "Épicerie"})
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        s.add(Link(dossier_id="nord", entity="clients", sage_key="CL3", ssm_id=8, updated_at=now))
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Link)) == 1
    scratch.dispose()
    store.dispose()


def test_preview_on_the_page_and_in_the_api(ws: Workspace) -> None:
    """The page's Preview button and ``POST /api/dossiers/{id}/preview`` say what the CLI's
    dry run says, and write nothing either."""
    from test_web_api import BEARER, TOKEN, browser, csrf_of, open_app

    updated, deleted, refused = changed_dossiers(ws)
    ws.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    ws.write_config()
    _config, _store, app = open_app(ws)
    files = {d: digest(p["path"]) for d, p in ws.dossiers.items()}
    before_state = dump(state_db(ws))
    before_writes = writes_sent(ws)
    expected = ws.cli_json("sync", "--dry-run", "--dossier", "alpha")[0]

    from starlette.testclient import TestClient

    api = TestClient(app, headers=BEARER)
    answer = api.post("/api/dossiers/alpha/preview")
    assert answer.status_code == 200, answer.text
    assert predicted([answer.json()]) == predicted([expected])
    assert api.post("/api/dossiers/nosuch/preview").status_code == 404

    page = browser(app)
    status = page.get("/?dossier=alpha").text
    assert 'data-preview-button="alpha"' in status
    assert page.post("/dossiers/alpha/preview", data={}).status_code == 403  # no CSRF token
    shown = page.post("/dossiers/alpha/preview", data={"csrf_token": csrf_of(page)})
    assert shown.status_code == 200
    html = shown.text
    assert f'data-record="{updated}" data-action="updated"' in html
    assert f'data-record="{deleted}" data-action="deleted"' in html
    assert f'data-record="{refused}" data-action="failed"' in html
    assert 'data-field="city"' in html and "Albi" in html
    assert "nothing was written" in html

    assert {d: digest(p["path"]) for d, p in ws.dossiers.items()} == files
    assert dump(state_db(ws)) == before_state
    assert writes_sent(ws) == before_writes
