"""The dossier lifecycle: reactivation, reinstall, restored Sage database, one sync per
dossier at a time, and the service."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from dossiersync.plugins.sales_management.simulator.process import running_simulator

from support.workspace import Workspace

SAGE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')"


def touch_client(ws: Workspace, dossier_id: str, code: str, column: str, value: str) -> None:
    ws.sage_execute(
        dossier_id,
        f"UPDATE F_COMPTET SET {column} = ?, cbModification = {SAGE_NOW} WHERE CT_Num = ?",  # noqa: S608
        (value, code),
    )


def test_reactivation_realigns_from_sage_and_keeps_ssm_fields(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.add_dossier("sud", clients=10, seed=2)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("dossiers", "deactivate", "sud")

    account = workspace.account("sud:CL00003")
    touch_client(workspace, "sud", "CL00003", "CT_Intitule", "Nom venu de Sage")
    workspace.ssm_put(
        "accounts", account["id"], {"comment": "Note commerciale", "name": "Nom saisi dans SSM"}
    )
    workspace.sync()  # sud is inactive: untouched
    assert workspace.account("sud:CL00003")["name"] == "Nom saisi dans SSM"

    activated = workspace.cli_json("dossiers", "activate", "sud")
    assert activated[0]["needs_full_sync"] is True
    workspace.sync()
    after = workspace.account("sud:CL00003")
    assert after["name"] == "Nom venu de Sage"
    assert after["comment"] == "Note commerciale"
    assert len(workspace.accounts("sud")) == 10
    runs = workspace.cli_json("journal", "--dossier", "sud")
    assert runs[0]["trigger"] == "reactivation" or runs[1]["trigger"] == "reactivation"
    realigned = [
        r for r in runs if r["trigger"] == "reactivation" and r["direction"] == "sage_to_ssm"
    ]
    events = workspace.cli_json("journal", "--dossier", "sud", "--run", str(realigned[0]["run_id"]))
    assert {e["record_key"] for e in events if e["action"] == "updated"} >= {"CL00003"}
    # the realignment is done: the next sync is incremental again and writes nothing
    again = workspace.sync()
    assert all(r["trigger"] == "manual" for d in again for r in d["runs"])


def test_reinstall_finds_previous_dossiers_and_duplicates_nothing(workspace: Workspace) -> None:
    entities = ("clients", "contacts")
    workspace.add_dossier("nord", clients=12, seed=1, entities=entities)
    workspace.add_dossier("sud", clients=8, seed=2, entities=entities)
    workspace.activate_all()
    workspace.sync()
    counts = {
        r: Counter(x["extId"].split(":")[0] for x in workspace.records(r))
        for r in ("accounts", "contacts")
    }
    workspace.ssm_post(
        "accounts",
        {"name": "Ancien dossier", "branchId": 1, "salesRepId1": 1, "extId": "ancien:C1"},
    )

    # the connector's state is lost (reinstall, server restored without it)
    state = Path(workspace.state_url.removeprefix("sqlite:///"))
    for path in state.parent.glob(state.name + "*"):
        path.unlink()

    found = {d["id"]: d for d in workspace.cli_json("dossiers", "discover")}
    for dossier_id in ("nord", "sud"):
        assert found[dossier_id]["state"] == "new"
        assert found[dossier_id]["previously_synced"] is True
        expected = counts["accounts"][dossier_id] + counts["contacts"][dossier_id]
        assert found[dossier_id]["records_in_ssm"] == expected
    assert found["ancien"]["origin"] == "ssm-only"
    assert found["ancien"]["records_in_ssm"] == 1
    assert found["ancien"]["in_configuration"] is False

    workspace.cli("dossiers", "activate", "nord", "sud")
    workspace.sync()
    for resource in ("accounts", "contacts"):
        extids = Counter(x["extId"] for x in workspace.records(resource))
        assert max(extids.values()) == 1, "a record was created twice"
        per_dossier = Counter(e.split(":")[0] for e in extids)
        for dossier_id in ("nord", "sud"):
            assert per_dossier[dossier_id] == counts[resource][dossier_id]


def test_restored_sage_database_realigns_and_deletes_nothing(workspace: Workspace) -> None:
    path = workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    backup = path.with_suffix(".backup")
    shutil.copy(path, backup)

    touch_client(workspace, "nord", "CL00002", "CT_Ville", "Ville après la sauvegarde")
    workspace.sage_execute(
        "nord",
        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil, "
        "cbModification) VALUES ('CL09999', 'Client récent', 0, 0, 0, "
        "strftime('%Y-%m-%d %H:%M:%f','now'))",
    )
    workspace.sync()
    assert workspace.account("nord:CL00002")["city"] == "Ville après la sauvegarde"
    before = len(workspace.accounts("nord"))

    shutil.copy(backup, path)  # the Sage database is restored from the older copy
    workspace.sync()
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert [i["kind"] for i in incidents] == ["restored_database"]
    assert "restored" in incidents[0]["message"]
    assert len(workspace.accounts("nord")) == before
    assert workspace.accounts("nord", deleted=True) == []
    restored_city = workspace.sage_clients("nord")["CL00002"]["CT_Ville"]
    assert workspace.account("nord:CL00002")["city"] == restored_city
    review = workspace.cli_json("records", "--dossier", "nord", "--label", "pending_review")
    assert [r["sage_key"] for r in review] == ["CL09999"]


def test_deleting_the_newest_sage_row_is_no_restore(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.activate_all()
    touch_client(workspace, "nord", "CL00005", "CT_Ville", "Douai")  # the newest row
    workspace.sync()

    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = 'CL00005'")
    runs = workspace.sync()

    counts = runs[0]["runs"][0]["counts"]
    assert (counts["deleted"], counts["updated"]) == (1, 0)
    assert workspace.cli_json("incidents", "--dossier", "nord", "--open") == []
    assert [a["extId"] for a in workspace.accounts("nord", deleted=True)] == ["nord:CL00005"]


@pytest.mark.slow
def test_two_syncs_of_one_dossier_never_interleave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=2) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.add_dossier("nord", clients=600, seed=3, contacts=0, products=0, orders=0)
        ws.activate_all()
        command = [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
        both = [
            subprocess.Popen(
                [*command, "sync", "--wait", "300"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for process in both:
            _out, err = process.communicate(timeout=600)
            assert process.returncode == 0, err

        runs = sorted(ws.cli_json("journal", "--dossier", "nord"), key=lambda r: r["run_id"])
        spans = [
            (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
            for r in runs
        ]
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, "two processes wrote to the same dossier at once"
        assert sum(r["counts"]["created"] for r in runs) == 600
        extids = Counter(a["extId"] for a in ws.accounts("nord"))
        assert len(extids) == 600 and max(extids.values()) == 1


@pytest.mark.slow
def test_service_keeps_syncing_the_others_when_one_source_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        for n, dossier_id in enumerate(("nord", "sud", "ouest")):
            ws.add_dossier(dossier_id, clients=10, seed=n + 1)
        ws.extra_config = "[service]\ninterval_seconds = 2\nparallel_dossiers = 3\n"
        ws.write_config()
        ws.activate_all()
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dossiersync.cli",
                "--config",
                str(ws.config_path),
                "run",
                "--no-web",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(ws.accounts()) < 30:
                time.sleep(0.2)
            # the sud dossier's ODBC source disappears while the service runs
            path = ws.dossiers["sud"]["path"]
            path.rename(path.with_suffix(".gone"))
            path.parent.joinpath("sud.db").mkdir()  # not a database any more
            time.sleep(9)
        finally:
            service.send_signal(signal.SIGTERM)
            _out, err = service.communicate(timeout=60)
        assert service.returncode == 0, err
        assert "run start dossier=nord" in err and "run end dossier=ouest" in err

        def runs(dossier_id: str) -> list[dict]:
            return ws.cli_json("journal", "--dossier", dossier_id, "--limit", "500")

        for healthy in ("nord", "ouest"):
            outcomes = [r["outcome"] for r in runs(healthy) if r["direction"] == "sage_to_ssm"]
            assert len(outcomes) >= 4 and set(outcomes) == {"succeeded"}
        broken = [r for r in runs("sud") if r["outcome"] == "failed"]
        assert len(broken) >= 4
        incidents = ws.cli_json("incidents", "--dossier", "sud", "--open")
        per_process = Counter((i["entity"], i["direction"], i["kind"]) for i in incidents)
        assert max(per_process.values()) == 1, "one incident per failing process, not per cycle"
        assert max(i["occurrences"] for i in incidents) >= 3
        assert all(r["outcome"] != "running" for d in ("nord", "sud", "ouest") for r in runs(d))


def test_journal_csv_report(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.activate_all()
    workspace.sync()
    text = workspace.cli("journal", "--dossier", "nord", "--format", "csv").stdout
    lines = text.strip().splitlines()
    assert lines[0].startswith("run_id,dossier_id,entity,direction,trigger")
    assert len(lines) == 3 and all(",nord,clients," in line for line in lines[1:])
    assert json.loads(workspace.cli("journal", "--dossier", "nord", "--format", "json").stdout)


def test_service_serves_the_status_page_and_honours_deactivation(workspace: Workspace) -> None:
    import socket

    import httpx

    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.add_dossier("sud", clients=5, seed=2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "jeton-de-test-0123456789-abcdefghij"
    workspace.extra_config = (
        f'[service]\ninterval_seconds = 1\n[web]\nport = {port}\ntoken = "{token}"\n'
    )
    workspace.write_config()
    workspace.activate_all()
    service = subprocess.Popen(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workspace.accounts()) < 10:
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/dossiers").status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(f"{base}/api/dossiers", headers=headers, timeout=30)
        assert listed.status_code == 200
        workspace.cli("dossiers", "deactivate", "sud")
        time.sleep(1.5)  # the cycle in flight, if any, ends
        runs_before = len(workspace.cli_json("journal", "--dossier", "sud", "--limit", "500"))
        time.sleep(3)
        runs_after = len(workspace.cli_json("journal", "--dossier", "sud", "--limit", "500"))
        nord = len(workspace.cli_json("journal", "--dossier", "nord", "--limit", "500"))
    finally:
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err
    assert f"Status page: http://127.0.0.1:{port}" in err and token not in err
    assert runs_after == runs_before, "the deactivated dossier kept being synced"
    assert nord > 4


def test_known_records_vanishing_en_masse_are_not_deleted(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=40, seed=1)
    workspace.activate_all()
    workspace.sync()
    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num > 'CL00010'")

    workspace.sync()
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert [i["kind"] for i in incidents] == ["mass_deletion_refused"]
    assert incidents[0]["message"].startswith("30 of 40 known clients vanished")
    assert workspace.accounts("nord", deleted=True) == []
    assert len(workspace.accounts("nord")) == 40
    review = workspace.cli_json("records", "--dossier", "nord", "--label", "pending_review")
    assert len(review) == 30
    (listed,) = workspace.cli_json("dossiers", "list")
    assert listed["needs_full_sync"] is True

    # a few deletions later are ordinary ones: the guard's incident closes
    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = 'CL00001'")
    runs = workspace.sync()
    assert sum(r["counts"]["deleted"] for r in runs[0]["runs"]) == 1
    assert workspace.cli_json("incidents", "--dossier", "nord", "--open") == []


@pytest.mark.parametrize(
    "command",
    [
        ("sync", "--dossier", "nosuch"),
        ("status", "--dossier", "nosuch"),
        ("journal", "--dossier", "nosuch"),
        ("incidents", "--dossier", "nosuch"),
        ("records", "--dossier", "nosuch"),
    ],
)
def test_an_unknown_dossier_is_the_same_clear_error_everywhere(
    workspace: Workspace, command: tuple[str, ...]
) -> None:
    workspace.add_dossier("nord", clients=3, seed=1)
    result = workspace.cli(*command, expect=2)
    assert "unknown dossier 'nosuch'" in result.output
    assert "neither in the configuration nor in the state store" in result.output
    assert "known: nord" in result.output
    # a configured dossier not activated yet is no error for the views
    workspace.cli("status", "--dossier", "nord")


def test_a_missing_dossier_file_is_named_and_never_created(workspace: Workspace) -> None:
    """A mistyped path: the SQLite3 driver must not create an empty dossier there; every
    process of that dossier fails naming the file, and none reports success."""
    workspace.add_dossier("nord", clients=3, seed=1)
    missing = workspace.root / "nosuch.db"
    workspace.dossiers["nord"]["path"] = missing
    workspace.write_config()
    workspace.activate_all()
    result = workspace.cli("sync", expect=1)
    assert not missing.exists()
    assert "FAILED nord: cannot connect to the ODBC data source (driver SQLite3)" in result.output
    assert str(missing) not in result.output  # the configuration's to show, not a message's
    runs = workspace.cli_json("journal", "--dossier", "nord")
    assert runs and {r["outcome"] for r in runs} == {"failed"}
    assert all("(driver SQLite3)" in (r["message"] or "") for r in runs)
    assert not any(str(missing) in (r["message"] or "") for r in runs)
