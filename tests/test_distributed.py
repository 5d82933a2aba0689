"""Celery workers and their scheduler, with the real parts started here: ``redis-server``
(a free port, a temporary folder), PostgreSQL (one database per implementation), the
simulator, ``dossiersync worker`` × 2 and ``dossiersync scheduler`` as processes.

Three implementations × four dossiers: every dossier synced by exactly one worker,
nothing twice in Sales Management, every run closed; a dossier whose Sage file is gone
fails alone; the broker stopped and started again mid-run loses nothing; a worker killed
with SIGKILL in mid-pass leaves a dossier another worker takes over and converges."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dossiersync.plugins.sales_management.simulator.process import (
    SimulatorProcess,
    running_simulator,
)

from support.cluster import Cluster, cluster
from support.postgres import PgServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IMPLEMENTATIONS = {
    "alpha": ["a1", "a2", "a3", "a4"],
    "beta": ["b1", "b2", "b3", "b4"],
    "gamma": ["g1", "g2", "g3", "g4"],
}
HOLDER = re.compile(r"^[^:]+:(\d+)/\d+$")


@pytest.fixture
def parts(
    tmp_path: Path, pg: PgServer, simulator: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.setenv("SSM_PUBLIC_KEY", simulator.public_key)
    monkeypatch.setenv("SSM_PRIVATE_KEY", simulator.private_key)
    with cluster(tmp_path, pg, simulator) as made:
        yield made
    stats = simulator.stats()
    assert stats["refusals"] == 0, stats["reasons"]


def synced(parts: Cluster, name: str, dossier_id: str) -> bool:
    """Both passes of the dossier's first (full) sync ended."""
    for d in parts.status(name):
        if d["id"] == dossier_id:
            runs = [r for e in d["entities"] for r in e["last_runs"]]
            return len(runs) == 2 and all(r["outcome"] != "running" for r in runs)
    return False


def extids_unique(parts: Cluster) -> dict[str, int]:
    ws = next(iter(parts.implementations.values()))
    live = [a["extId"] for a in ws.accounts() if a.get("extId")]
    twice = [e for e, n in Counter(live).items() if n > 1]
    assert twice == [], f"records twice in Sales Management: {twice}"
    return Counter(e.split(":", 1)[0] for e in live)


def assert_converged(parts: Cluster, name: str, dossier_id: str) -> None:
    ws = parts.implementations[name]
    sage = set(ws.sage_clients(dossier_id))
    ssm = {a["extId"].split(":", 1)[1] for a in ws.accounts(dossier_id)}
    assert ssm == sage, f"{name}/{dossier_id}: {len(ssm)} in SSM, {len(sage)} in Sage"


def test_twelve_dossiers_of_three_implementations_on_two_workers(parts: Cluster) -> None:
    for name, ids in IMPLEMENTATIONS.items():
        ws = parts.implementation(name, dict.fromkeys(ids, 5))
        if name == "gamma":
            gone = ws.add_dossier("g5", clients=5, seed=9)
        ws.activate_all()
    gone.unlink()  # g5's Sage file is missing: it fails, alone
    workers = [parts.worker(1), parts.worker(2)]
    parts.wait_ready(*workers)
    parts.scheduler()

    # the broker stops as soon as the work has begun, and comes back
    parts.wait("a first run", lambda: any(r["holder"] for r in parts.journal("alpha", "a1")), 60)
    parts.broker.stop()
    time.sleep(2)
    parts.broker.start()

    every = [(n, d) for n, ids in IMPLEMENTATIONS.items() for d in ids]
    parts.wait("every dossier synced", lambda: all(synced(parts, n, d) for n, d in every), 120)
    parts.wait("g5 tried", lambda: synced(parts, "gamma", "g5"), 30)

    per_dossier = extids_unique(parts)
    pids = {str(w.pid) for w in workers}
    holders: set[str] = set()
    for name, dossier_id in every:
        assert_converged(parts, name, dossier_id)
        assert per_dossier[dossier_id] == 5
        runs = parts.journal(name, dossier_id)
        assert runs and all(r["outcome"] == "succeeded" for r in runs), runs
        first = [r for r in runs if r["trigger"] == "activation"]
        # one worker made the dossier's first sync, both directions
        assert len(first) == 2 and len({r["holder"] for r in first}) == 1, first
        match = HOLDER.match(first[0]["holder"])
        assert match and match.group(1) in pids
        holders.add(match.group(1))
    assert holders == pids, "both workers took part"

    # the dossier whose Sage file is missing failed alone, and says why
    failed = parts.journal("gamma", "g5")
    assert failed and all(r["outcome"] == "failed" for r in failed)
    incidents = parts.implementations["gamma"].cli_json("incidents", "--dossier", "g5")
    assert incidents and all(i["kind"] == "run_failed" for i in incidents)
    assert per_dossier.get("g5", 0) == 0

    # after the broker's restart the workers and the scheduler carry on: a change made
    # now in a Sage file is found by the scheduler's probe and synced by a worker
    alpha = parts.implementations["alpha"]
    alpha.sage_execute(
        "a2",
        "UPDATE F_COMPTET SET CT_Intitule = 'Après redémarrage', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE CT_Num = ?",
        (sorted(alpha.sage_clients("a2"))[0],),
    )
    key = sorted(alpha.sage_clients("a2"))[0]
    parts.wait(
        "the change synced",
        lambda: alpha.account(f"a2:{key}")["name"] == "Après redémarrage",
        60,
    )
    changed = [r for r in parts.journal("alpha", "a2") if r["trigger"] == "change"]
    assert changed and HOLDER.match(changed[0]["holder"]).group(1) in pids  # type: ignore[union-attr]
    extids_unique(parts)
    assert all(w.poll() is None for w in workers)


@pytest.fixture
def slow_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    db = tmp_path_factory.mktemp("ssm") / "ssm.sqlite"
    with running_simulator(str(db), latency_ms=60) as sim:
        yield sim


def test_a_worker_killed_mid_pass_leaves_a_dossier_that_converges(
    tmp_path: Path, pg: PgServer, slow_simulator: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSM_PUBLIC_KEY", slow_simulator.public_key)
    monkeypatch.setenv("SSM_PRIVATE_KEY", slow_simulator.private_key)
    with cluster(tmp_path, pg, slow_simulator) as parts:
        ws = parts.implementation(
            "alpha",
            {"gros": 300, "petit": 5},
            sync={"batch_size": 10},
            implementation="max_concurrency = 1",
        )
        ws.activate_all()
        workers = {str(w.pid): w for w in (parts.worker(1, 1), parts.worker(2, 1))}
        parts.wait_ready(*workers.values())
        scheduler = parts.scheduler()

        def mid_pass() -> Any:
            links = [r for r in ws.cli_json("records", "--dossier", "gros")]
            running = [r for r in parts.journal("alpha", "gros") if r["outcome"] == "running"]
            return running if len(links) >= 30 else None

        parts.wait("gros in mid-pass", lambda: bool(mid_pass()), 60)
        victim = HOLDER.match(mid_pass()[0]["holder"]).group(1)  # type: ignore[index,union-attr]
        os.kill(int(victim), signal.SIGKILL)
        workers[victim].wait()
        survivor = next(pid for pid in workers if pid != victim)

        def converged() -> bool:
            # the first full sync done (a change-triggered pass alone does not end it)
            gros = next(d for d in parts.status("alpha") if d["id"] == "gros")
            runs = parts.journal("alpha", "gros")
            return not gros["needs_full_sync"] and not any(r["outcome"] == "running" for r in runs)

        parts.wait("gros taken over and synced", converged, 90)
        scheduler.terminate()  # nothing more sent: what was sent ends
        scheduler.wait(20)
        idle = lambda: not any(r["outcome"] == "running" for r in parts.journal("alpha", "gros"))  # noqa: E731
        time.sleep(1)
        parts.wait("the last runs", idle, 30)
        runs = parts.journal("alpha", "gros")
        killed = [r for r in runs if HOLDER.match(r["holder"]).group(1) == victim]  # type: ignore[union-attr]
        assert killed and any(r["outcome"] == "interrupted" for r in killed), killed
        after = [r for r in runs if HOLDER.match(r["holder"]).group(1) == survivor]  # type: ignore[union-attr]
        assert after and all(r["outcome"] == "succeeded" for r in after), after
        assert_converged(parts, "alpha", "gros")
        assert_converged(parts, "alpha", "petit")
        extids_unique(parts)
        assert slow_simulator.stats()["refusals"] == 0
