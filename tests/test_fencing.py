"""No two processes ever write for one dossier at once: a pass that outlives
``lease_seconds`` keeps its lease, and a pass whose lease was taken over stops before its
next write, its run ``interrupted`` naming the new holder."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dossiersync.fence import Fence, LeaseLost
from dossiersync.journal import utcnow
from dossiersync.lease import acquire
from dossiersync.plugins.sales_management.simulator.process import running_simulator
from dossiersync.state.models import Lease
from dossiersync.state.store import StateStore

from support.workspace import Workspace

CLIENTS = 60
OTHER = "machine-b:4242/17"


def slow_workspace(tmp_path: Path, sim: object, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """One dossier whose first sync takes about 15 s: 12 bulk creates sent one at a time
    to a tenant answering each call in a second, with the shortest lease allowed."""
    monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)  # type: ignore[attr-defined]
    monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)  # type: ignore[attr-defined]
    ws = Workspace(tmp_path, sim)  # type: ignore[arg-type]
    ws.sync_settings.update(batch_size=5, lease_seconds=10)
    ws.add_dossier("lent", clients=CLIENTS, seed=3)
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(
        text.replace("max_retries = 3", "max_retries = 3\nmax_concurrency = 1")
    )
    ws.activate_all()
    return ws


def start_sync(ws: Workspace) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
    return subprocess.Popen(
        [*command, "sync", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


@pytest.mark.slow
def test_a_pass_longer_than_its_lease_keeps_it_and_a_second_sync_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=1000) as sim:
        ws = slow_workspace(tmp_path, sim, monkeypatch)
        first = start_sync(ws)
        started = time.monotonic()
        # past lease_seconds: renewed only between passes, the lease would be free now
        time.sleep(11.5)
        assert first.poll() is None, "the first sync ended too soon to outlive its lease"
        second = ws.subprocess("sync", "--json")
        assert first.poll() is None, "the first sync ended before the second one tried"
        assert second.returncode == 1, second.stderr
        assert "being synced by" in second.stdout
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert time.monotonic() - started > 14

        counts = Counter(a["extId"] for a in ws.accounts("lent"))
        assert len(counts) == CLIENTS and max(counts.values()) == 1
        runs = ws.cli_json("journal", "--dossier", "lent")
        holders = {r["holder"] for r in runs}
        assert len(holders) == 1, "a second process ran a pass of the dossier"
        spans = sorted((when(r["started_at"]), when(r["finished_at"]), r["holder"]) for r in runs)
        for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
            assert a == b or end <= start


@pytest.mark.slow
def test_a_pass_whose_lease_was_taken_over_stops_before_its_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=500) as sim:
        ws = slow_workspace(tmp_path, sim, monkeypatch)
        first = start_sync(ws)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ws.accounts("lent"):
            time.sleep(0.2)
        store = StateStore(ws.state_url)
        with store.session() as s:
            s.execute(
                update(Lease)
                .where(Lease.dossier_id == "lent")
                .values(holder=OTHER, expires_at=utcnow() + timedelta(seconds=600))
            )
        out, err = first.communicate(timeout=120)
        assert first.returncode == 1, err
        created = len(ws.accounts("lent"))
        assert 0 < created < CLIENTS, "the pass went on writing after its lease was taken"

        runs = ws.cli_json("journal", "--dossier", "lent")
        stopped = [r for r in runs if r["outcome"] == "interrupted"]
        assert len(stopped) == 1 and OTHER in stopped[0]["message"]
        assert "before its next write" in stopped[0]["message"]

        # the other holder is gone: the next sync completes, with nothing created twice
        with store.session() as s:
            s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        store.dispose()
        ws.sync()
        counts = Counter(a["extId"] for a in ws.accounts("lent"))
        assert len(counts) == CLIENTS and max(counts.values()) == 1


def test_the_fence_renews_the_lease_while_a_pass_runs(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    holder = acquire(store, "nord", 10)
    with store.session() as s:
        first = s.get(Lease, "nord")
        assert first is not None
        expiry = first.expires_at
    with Fence(store, "nord", holder, 10) as fence:
        fence.every = 0.2  # as if the lease were short: beats every 0.2 s
        time.sleep(3.0)
        fence.check()
    with store.session() as s:
        later = s.get(Lease, "nord")
        assert later is not None and later.holder == holder
        assert later.expires_at >= expiry + timedelta(seconds=2)


def test_a_fence_past_its_lease_renews_before_letting_a_write_through(tmp_path: Path) -> None:
    """A process held up past its lease (renewals missed) asks the store before its next
    write: a lease taken over meanwhile stops it, naming the new holder."""
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    holder = acquire(store, "nord", 10)
    now = [0.0]
    fence = Fence(store, "nord", holder, 10, clock=lambda: now[0])
    fence.check()  # fresh: nothing asked
    now[0] = 11.0  # held up for longer than the lease; another process took it over
    with store.session() as s:
        s.execute(update(Lease).where(Lease.dossier_id == "nord").values(holder=OTHER))
    with pytest.raises(LeaseLost, match=OTHER):
        fence.check()
    with pytest.raises(LeaseLost, match="before its next write"):
        fence.check()  # and stays lost


def test_a_fence_past_its_lease_that_still_holds_it_goes_on(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    holder = acquire(store, "nord", 10)
    now = [0.0]
    fence = Fence(store, "nord", holder, 10, clock=lambda: now[0])
    now[0] = 11.0  # held up, but nobody took the lease meanwhile
    fence.check()
    assert fence.lost is None
