"""What a new user sees in the first hour: one vocabulary, no noise."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from support.workspace import Workspace

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BAD_EMAIL = "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00001'"
RUN_KEYS = {
    "holder",
    "run_id",
    "dossier_id",
    "entity",
    "direction",
    "trigger",
    "full",
    "started_at",
    "finished_at",
    "duration_seconds",
    "outcome",
    "message",
    "counts",
}


def timestamps(value: object, key: str = "") -> list[tuple[str, str]]:
    """Every (key, value) of a JSON document whose key says it is a time."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in timestamps(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in timestamps(v, key)]
    if key.endswith(("_at", "_seen")) or key == "at":
        return [(key, str(value))] if value is not None else []
    return []


def test_a_run_is_the_same_object_in_sync_journal_and_status(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.activate_all()

    synced = workspace.sync()[0]["runs"]
    journal = workspace.cli_json("journal", "--dossier", "nord")
    status = workspace.cli_json("status")[0]["entities"][0]["last_runs"]

    assert {frozenset(r) for r in synced} == {frozenset(RUN_KEYS)}
    by_id = {r["run_id"]: r for r in journal}
    for run in synced + status:
        # the same run says the same thing, to the second, wherever it is shown
        assert run == by_id[run["run_id"]]


def test_every_timestamp_is_utc_to_the_second_with_z(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.sage_execute("nord", BAD_EMAIL)
    workspace.activate_all()
    runs = workspace.sync(expect=1)
    run_id = str(runs[0]["runs"][0]["run_id"])

    outputs = {
        "sync": runs,
        "journal": workspace.cli_json("journal", "--dossier", "nord"),
        "events": workspace.cli_json("journal", "--dossier", "nord", "--run", run_id),
        "status": workspace.cli_json("status"),
        "incidents": workspace.cli_json("incidents"),
        "records": workspace.cli_json("records", "--dossier", "nord"),
    }
    for command, data in outputs.items():
        found = timestamps(data)
        assert found, command
        wrong = [(key, value) for key, value in found if not TIMESTAMP.match(value)]
        assert wrong == [], command


def test_the_journal_table_shows_each_runs_duration(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.activate_all()
    workspace.sync()

    lines = workspace.cli("journal", "--dossier", "nord").stdout.splitlines()
    headers = lines[0].split()
    assert headers[:8] == [
        "RUN",
        "ENTITY",
        "DIRECTION",
        "TRIGGER",
        "START",
        "END",
        "DURATION",
        "OUTCOME",
    ]
    for line in lines[1:]:
        assert re.fullmatch(r"\d+\.\ds|\d+s|\d+m\d\ds", line.split()[6]), line


def test_count_columns_that_are_zero_everywhere_are_left_out(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.activate_all()
    workspace.sync()

    header = workspace.cli("status").stdout.splitlines()[0].split()
    # every record synced: no pending, review, error, deleted or incident column
    assert header == ["DOSSIER", "NAME", "STATE", "ENTITY", "SAGE->SSM", "SSM->SAGE", "SYNCED"]

    workspace.sage_execute("nord", BAD_EMAIL)
    workspace.sync("--full", expect=1)
    table = workspace.cli("status").stdout.splitlines()
    assert table[0].split()[-2:] == ["ERROR", "INCIDENTS"]
    assert table[1].split()[-3:] == ["5", "1", "1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_simulator_says_where_it_is_once(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dossiersync.cli", "simulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)  # anything it would print on start-up is out by now
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert output.count(f"http://127.0.0.1:{port}/api/v4") == 1, output
    assert output.strip().splitlines()[0].startswith("SSM simulator on http://"), output


def test_the_demo_says_once_where_the_simulator_is(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "demo", "--dir", str(tmp_path / "demo")]
        + ["--clients", "5"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert len(re.findall(r"simulator on http://", said, re.I)) == 1, said


def lose_the_file_of(workspace: Workspace, dossier_id: str, password: str) -> Path:
    """The dossier's configuration now names a file that does not exist (with a password
    that must never be shown)."""
    missing = workspace.root / "nosuch.db"
    workspace.dossiers[dossier_id]["path"] = f"{missing};PWD={password}"
    workspace.write_config()
    return missing


def test_a_dossier_whose_source_is_gone_is_said_once_and_the_others_sync(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.add_dossier("sud", clients=6, seed=2, entities=("clients", "contacts"))
    workspace.activate_all()
    missing = lose_the_file_of(workspace, "sud", "motdepasse42")

    done = workspace.subprocess("sync")
    assert done.returncode == 1
    failed = done.stderr.strip().splitlines()
    assert len(failed) == 1, done.stderr
    assert failed[0].startswith("FAILED sud: ") and "(driver SQLite3)" in failed[0]
    assert str(missing) not in done.stdout + done.stderr
    assert "motdepasse42" not in done.stdout + done.stderr
    assert not missing.exists()  # no empty dossier created in its place
    # nothing of sud is shown as if it had run; nord synced all the same
    assert "sud" not in done.stdout
    assert re.search(r"nord\s+clients\s+sage_to_ssm\s+succeeded", done.stdout)

    results = {r["dossier_id"]: r for r in workspace.sync(expect=1)}
    assert results["nord"]["ok"] is True
    sud = results["sud"]
    assert sud["ok"] is False and "(driver SQLite3)" in sud["error"]
    assert str(missing) not in sud["error"]
    assert "motdepasse42" not in sud["error"]
    # each process is journaled as failed, none as succeeded
    assert {(r["entity"], r["direction"], r["outcome"]) for r in sud["runs"]} == {
        ("clients", "sage_to_ssm", "failed"),
        ("clients", "ssm_to_sage", "failed"),
        ("contacts", "sage_to_ssm", "failed"),
        ("contacts", "ssm_to_sage", "failed"),
    }


def test_discover_marks_a_dossier_whose_source_is_gone_unreachable(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.add_dossier("sud", clients=6, seed=2)
    missing = lose_the_file_of(workspace, "sud", "motdepasse42")

    result = workspace.cli("dossiers", "discover", expect=1)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["nord"][3:5] == ["new", "ok"]
    assert rows["sud"][3:5] == ["new", "unreachable"]
    assert result.stderr.startswith("UNREACHABLE sud: ") and "(driver SQLite3)" in result.stderr
    # the path, like the password, is the configuration's to show (docs/security.md)
    assert "motdepasse42" not in result.output and str(missing) not in result.output

    found = {d["id"]: d for d in workspace.cli_json("dossiers", "discover", expect=1)}
    assert (found["nord"]["reachable"], found["nord"]["source_error"]) == (True, None)
    assert found["sud"]["reachable"] is False
    assert str(missing) not in found["sud"]["source_error"]
    assert "motdepasse42" not in found["sud"]["source_error"]
    # the source named by its driver, and what the driver said kept after it
    assert "ODBC data source (driver SQLite3): [HY000]" in found["sud"]["source_error"]
    assert "Check that the data source exists" in found["sud"]["source_error"]
    assert not missing.exists()

    # once the file is back, discover is content again
    workspace.dossiers["sud"]["path"] = workspace.root / "sud.db"
    workspace.write_config()
    assert all(d["reachable"] for d in workspace.cli_json("dossiers", "discover"))


def test_the_status_api_speaks_the_same_timestamps(workspace: Workspace) -> None:
    """The page's JSON (a sync started from it, the schedule, the health figures) writes
    time as the CLI does."""
    import time as clock

    from starlette.testclient import TestClient
    from test_web_api import BEARER, TOKEN, open_app

    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    _config, _store, app = open_app(workspace)
    api = TestClient(app, headers=BEARER)
    assert api.post("/api/dossiers/nord/sync").status_code == 202
    for _ in range(600):
        job = api.get("/api/dossiers/nord/sync").json()["job"]
        if not job["running"]:
            break
        clock.sleep(0.1)
    outputs = {
        "job": job,
        "schedule": api.get("/api/schedule").json(),
        "health": api.get("/api/dossiers/nord/health").json(),
        "status": api.get("/api/status").json(),
        "journal": api.get("/api/dossiers/nord/journal").json(),
    }
    for name, data in outputs.items():
        found = timestamps(data)
        assert found, name
        wrong = [(key, value) for key, value in found if not TIMESTAMP.match(value)]
        assert wrong == [], name
