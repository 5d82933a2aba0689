"""A sync killed with SIGKILL half-way leaves no duplicate and misses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dossiersync.plugins.sales_management.simulator.process import running_simulator

from support.workspace import Workspace

CLIENTS = 3000


@pytest.mark.slow
def test_sigkill_mid_sync_then_resync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=3) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.add_dossier("gros", clients=CLIENTS, seed=7)
        ws.activate_all()

        command = [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
        process = subprocess.Popen(
            [*command, "sync"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        seen = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen = len(ws.accounts("gros"))
            if seen >= CLIENTS // 4:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        at_kill = len(ws.accounts("gros"))
        assert 0 < at_kill < CLIENTS, "the kill did not land in the middle of the sync"

        rerun = subprocess.run([*command, "sync"], capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr

        accounts = ws.accounts("gros")
        counts = Counter(a["extId"] for a in accounts)
        duplicates = {ext: n for ext, n in counts.items() if n > 1}
        assert duplicates == {}
        assert set(counts) == {f"gros:{code}" for code in ws.sage_clients("gros")}
        assert len(accounts) == CLIENTS

        # a killed process leaves its lease behind; the next sync after it worked,
        # and a further one has nothing left to write
        again = ws.sync()
        counts_again = Counter()
        for run in again[0]["runs"]:
            counts_again.update(run["counts"])
        assert counts_again["created"] + counts_again["updated"] == 0


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "interrupted by SIGTERM"),
        (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
    ],
)
def test_an_interrupted_sync_journals_its_run_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, status: int, said: str
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=20) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.sync_settings["batch_size"] = 20
        ws.add_dossier("gros", clients=1500, seed=7)
        ws.activate_all()
        command = [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
        process = subprocess.Popen(
            [*command, "sync"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(ws.accounts("gros")) < 100:
            time.sleep(0.05)
        process.send_signal(signum)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"no exit after the signal:\n{stderr}") from None
        assert process.returncode == status, stderr
        assert said in stderr

        runs = ws.cli_json("journal", "--dossier", "gros")
        assert [r["outcome"] for r in runs if r["outcome"] == "running"] == []
        (stopped,) = [r for r in runs if r["outcome"] == "interrupted"]
        assert stopped["finished_at"] is not None
        assert stopped["direction"] == "sage_to_ssm"

        ws.sync()  # goes on from there: nothing twice, nothing missed
        counts = Counter(a["extId"] for a in ws.accounts("gros"))
        assert len(counts) == 1500 and max(counts.values()) == 1
