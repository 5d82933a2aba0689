"""Who made each run, and who syncs a dossier now: a run's ``holder`` (``host:pid/thread``)
in the journal and the status, the lease holder as ``synced_by``; a run left ``running``
by a process that died is closed as interrupted when its lease is taken over."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from datetime import timedelta

from dossiersync.journal import utcnow
from dossiersync.lease import holder_name
from dossiersync.state.models import Lease, Run
from dossiersync.state.store import StateStore

from support.workspace import Workspace

HOLDER = re.compile(r"^[^:]+:\d+/\d+$")


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_runs_name_their_holder_in_journal_status_and_csv(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    synced = workspace.sync()[0]["runs"]
    here = f"{socket.gethostname()}:{os.getpid()}/"
    assert synced and all(r["holder"].startswith(here) for r in synced)
    journal = workspace.cli_json("journal", "--dossier", "nord")
    assert all(HOLDER.match(r["holder"]) for r in journal)
    status = workspace.cli_json("status")[0]
    assert status["synced_by"] is None
    assert all(HOLDER.match(r["holder"]) for e in status["entities"] for r in e["last_runs"])
    csv = workspace.cli("journal", "--dossier", "nord", "--format", "csv").stdout.splitlines()
    assert csv[0].endswith(",holder") and csv[1].endswith(synced[0]["holder"])
    table = workspace.cli("journal", "--dossier", "nord").stdout.splitlines()
    assert table[0].split()[-1] == "BY" and synced[0]["holder"] in table[1]


def test_status_shows_who_holds_a_dossier_now(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    store = StateStore(workspace.state_url)
    worker = "machine-b:4242/17"
    with store.session() as s:
        now = utcnow()
        s.add(Lease(dossier_id="nord", holder=worker, acquired_at=now,
                    expires_at=now + timedelta(seconds=600)))  # fmt: skip
    store.dispose()
    assert workspace.cli_json("status")[0]["synced_by"] == worker
    assert f"nord is being synced by {worker}" in workspace.cli("status").stdout
    skipped = workspace.sync(expect=1)[0]
    assert worker in skipped["skipped"] and skipped["runs"] == []


def test_a_dead_holders_running_runs_are_closed_when_its_lease_is_taken_over(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    gone = f"{socket.gethostname()}:{dead_pid()}/1"
    store = StateStore(workspace.state_url)
    with store.session() as s:
        now = utcnow()
        s.add(Lease(dossier_id="nord", holder=gone, acquired_at=now,
                    expires_at=now + timedelta(seconds=600)))  # fmt: skip
        s.add(Run(dossier_id="nord", entity="clients", direction="sage_to_ssm",
                  trigger="schedule", full=True, started_at=now, outcome="running",
                  holder=gone))  # fmt: skip
    store.dispose()
    runs = workspace.sync()[0]["runs"]
    assert runs and all(r["outcome"] == "succeeded" and r["holder"] == holder_name() for r in runs)
    journal = workspace.cli_json("journal", "--dossier", "nord")
    left = [r for r in journal if r["holder"] == gone]
    assert [r["outcome"] for r in left] == ["interrupted"]
    assert gone in left[0]["message"] and left[0]["finished_at"]
    assert not [r for r in journal if r["outcome"] == "running"]


def test_the_status_page_shows_who_made_each_run(workspace: Workspace) -> None:
    from starlette.testclient import TestClient
    from test_web_api import BEARER, TOKEN, open_app

    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    runs = workspace.sync()[0]["runs"]
    _config, store, app = open_app(workspace)
    try:
        page = TestClient(app, headers=BEARER)
        journal = page.get("/journal?dossier=nord").text
        assert "Run by" in journal and runs[0]["holder"] in journal
        one = page.get(f"/journal/{runs[0]['run_id']}?dossier=nord").text
        assert f'<dd class="holder">{runs[0]["holder"]}</dd>' in one
        api = page.get("/api/dossiers/nord/journal").json()
        assert {r["holder"] for r in api} == {r["holder"] for r in runs}
    finally:
        store.dispose()


def test_an_expired_lease_of_another_machine_is_taken_over_and_its_runs_closed(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.activate_all()
    elsewhere = "machine-b:4242/17"  # another host: whether it lives cannot be known
    store = StateStore(workspace.state_url)
    with store.session() as s:
        then = utcnow() - timedelta(seconds=1200)
        s.add(Lease(dossier_id="nord", holder=elsewhere, acquired_at=then,
                    expires_at=then + timedelta(seconds=900)))  # fmt: skip
        s.add(Run(dossier_id="nord", entity="clients", direction="sage_to_ssm",
                  trigger="schedule", full=True, started_at=then, outcome="running",
                  holder=elsewhere))  # fmt: skip
    store.dispose()
    assert workspace.cli_json("status")[0]["synced_by"] is None  # expired: held by nobody
    runs = workspace.sync()[0]["runs"]
    assert runs and all(r["outcome"] == "succeeded" for r in runs)
    left = [
        r for r in workspace.cli_json("journal", "--dossier", "nord") if r["holder"] == elsewhere
    ]
    assert [r["outcome"] for r in left] == ["interrupted"]
