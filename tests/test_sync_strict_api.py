"""Syncs against a strict simulator: bulk writes, ambiguous answers, paging, deletions.

Each test runs the real command against the simulator as a real HTTP server, with the
switches that make it behave like a remote tenant the connector cannot take for granted.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dossiersync.plugins.sales_management.simulator.process import running_simulator

from support.workspace import Workspace


@contextmanager
def strict_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **switches: Any
) -> Iterator[Workspace]:
    """A workspace on a simulator started with these switches."""
    with running_simulator(str(tmp_path / "ssm.sqlite"), **switches) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        yield Workspace(tmp_path, sim)


def runs_of(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [run for dossier in result for run in dossier["runs"]]


def test_bulk_create_carried_out_but_answered_500_creates_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write is carried out, then answered 500: the connector finds the accounts
    by extId, links them in the same pass, and never sends them again (six batches, sent
    while the next ones are read)."""
    with strict_workspace(tmp_path, monkeypatch, lost_answer_rate=1.0) as ws:
        ws.sync_settings["batch_size"] = 20
        ws.add_dossier("nord", clients=120, seed=1)
        ws.activate_all()
        runs = runs_of(ws.sync())
        created = next(r for r in runs if r["direction"] == "sage_to_ssm")
        assert (created["outcome"], created["counts"]["created"]) == ("succeeded", 120)
        extids = Counter(a["extId"] for a in ws.records("accounts"))
        assert len(extids) == 120 and max(extids.values()) == 1
        records = ws.cli_json("records", "--dossier", "nord", "--entity", "clients")
        assert {r["label"] for r in records} == {"synced"} and len(records) == 120
        # nothing changed: nothing is written again
        again = runs_of(ws.sync())
        assert sum(r["counts"].get("created", 0) for r in again) == 0
        assert len(ws.records("accounts")) == 120
        assert ws.simulator_stats()["refusals"] == 0


@pytest.mark.ssm_refusals
def test_one_record_refused_in_a_bulk_call_fails_alone(workspace: Workspace) -> None:
    """The account of some contacts was deleted in SSM: those contacts are refused, with
    an incident each; every other contact of the same bulk calls lands."""
    workspace.add_dossier("nord", clients=20, seed=1, entities=("clients", "contacts"))
    workspace.activate_all()
    workspace.sync("--entity", "clients")
    sage = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT")
    per_account = Counter(row["CT_Num"] for row in sage)
    code = next(c for c, n in per_account.items() if n >= 2)
    workspace.ssm_delete("accounts", workspace.account(f"nord:{code}")["id"])

    workspace.sync("--entity", "contacts", expect=1)
    in_ssm = {c["extId"] for c in workspace.records("contacts", "nord")}
    expected = {f"nord:{r['CT_Num']}:{r['CT_No']}" for r in sage if r["CT_Num"] != code}
    assert in_ssm == expected
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    refused = {i["record_key"] for i in incidents if i["kind"] == "refused_by_ssm"}
    assert refused == {f"{code}:{r['CT_No']}" for r in sage if r["CT_Num"] == code}
    assert all("accountId" in i["message"] for i in incidents)
    assert workspace.simulator_stats()["refusals"] == per_account[code]


@pytest.mark.parametrize("next_page", ["none", "next", "repeat"])
def test_small_pages_without_an_end_marker_leave_no_record_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, next_page: str
) -> None:
    """Pages of 7 whatever the connector asks, and the end of a list announced in each
    of the ways a server may (or not at all): after a reinstall, every account is found
    by its extId and none is created twice."""
    with strict_workspace(tmp_path, monkeypatch, max_page_size=7, next_page=next_page) as ws:
        ws.add_dossier("nord", clients=30, seed=1)
        ws.activate_all()
        ws.sync()
        state = Path(ws.state_url.removeprefix("sqlite:///"))
        for path in state.parent.glob(state.name + "*"):
            path.unlink()
        ws.activate_all()
        runs = runs_of(ws.sync())
        assert sum(r["counts"].get("created", 0) for r in runs) == 0
        extids = Counter(a["extId"] for a in ws.records("accounts"))
        assert len(extids) == 30 and max(extids.values()) == 1
        assert ws.simulator_stats()["refusals"] == 0


def test_contact_removed_from_ssm_without_a_trace_is_found_by_reconciliation(
    workspace: Workspace,
) -> None:
    """A record gone from SSM's lists altogether (no deleted flag, no dateDeleted) is
    noticed by the periodic complete listing, not by the incremental one."""
    workspace.add_dossier("nord", clients=10, seed=1, entities=("clients", "contacts"))
    workspace.activate_all()
    workspace.sync()
    contact = workspace.records("contacts", "nord")[0]
    key = contact["extId"].removeprefix("nord:")
    db = sqlite3.connect(workspace.simulator.db_path)
    with db:
        db.execute("DELETE FROM records WHERE resource = 'contacts' AND id = ?", (contact["id"],))
    db.close()

    def label() -> str:
        (record,) = [
            r
            for r in workspace.cli_json("records", "--dossier", "nord", "--entity", "contacts")
            if r["sage_key"] == key
        ]
        return str(record["label"])

    workspace.sync()  # incremental: nothing says it changed
    assert label() == "synced"
    workspace.sync_settings["reconcile_hours"] = 0.0001  # 0.36 s
    workspace.write_config()
    time.sleep(0.5)  # the last complete listing is now older than that
    workspace.sync()
    # created in Sage: kept there, flagged for review
    assert label() == "pending_review"
    assert workspace.sage_rows(
        "nord", "SELECT 1 FROM F_CONTACTT WHERE CT_Num || ':' || CT_No = ?", (key,)
    )


def test_a_first_sync_writes_in_bulk_as_many_records_per_call_as_the_api_takes(
    workspace: Workspace,
) -> None:
    """200 accounts, contacts or families per call, 100 products; no single create."""
    workspace.sync_settings.clear()  # the default batch size
    entities = ("clients", "contacts", "products")
    workspace.add_dossier("nord", clients=450, seed=3, entities=entities)
    workspace.activate_all()
    workspace.sync()
    calls = workspace.simulator_stats()["calls"]
    for resource, limit in (
        ("accounts", 200),
        ("contacts", 200),
        ("productFamilies", 200),
        ("products", 100),
    ):
        synced = len(workspace.records(resource, "nord"))
        assert synced > 0
        assert calls.get(f"POST /{resource}/bulk") == -(-synced // limit), (resource, calls)
        assert f"POST /{resource}" not in calls
