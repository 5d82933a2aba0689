"""An edit made in Sage while a long complete pass runs reaches SSM during that pass, not
after it (``SageToSsm.catch_up``): the first pass of a large dossier or a realignment
takes minutes, and the dossier's lease keeps its change passes waiting meanwhile."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from dossiersync.plugins.sales_management.simulator.process import running_simulator
from dossiersync.sync import to_sage, to_ssm

from support.workspace import Workspace

CLIENTS = 60


def test_an_edit_made_during_a_complete_pass_is_sent_by_that_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every batch looks for edits (5 s by default: this pass is short)
    monkeypatch.setattr(to_ssm, "CATCH_UP_SECONDS", 0.0)
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.sync_settings.update(batch_size=5)  # a dozen bulk calls: a long pass
        ws.add_dossier("nord", clients=CLIENTS, seed=3)
        # a tenant of 4 requests a second, one at a time: the pass reads a batch as the
        # one before is answered
        text = ws.config_path.read_text(encoding="utf-8")
        text = text.replace(
            "max_requests_per_second = 0", "max_requests_per_second = 4\nmax_concurrency = 1"
        )
        ws.config_path.write_text(text, encoding="utf-8")
        ws.activate_all()
        first = sorted(ws.sage_clients("nord"))[0]
        edited = threading.Event()

        def edit_once_sent() -> None:
            """Once the first client is in SSM (the pass is past it), edit it in Sage."""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if ws.ssm_list("accounts", f"extId = 'nord:{first}'"):
                    break
                time.sleep(0.05)
            ws.sage_execute(
                "nord",
                "UPDATE F_COMPTET SET CT_Ville = 'Espalion', cbModification = "
                "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
                (first,),
            )
            edited.set()

        editor = threading.Thread(target=edit_once_sent)
        editor.start()
        results = ws.sync("--entity", "clients")
        editor.join(60)
        assert edited.is_set()
        accounts = Counter(a["extId"] for a in ws.accounts("nord"))
        assert len(accounts) == CLIENTS and max(accounts.values()) == 1
        # sent by the pass that was running when the edit was made, before it ended
        assert ws.account(f"nord:{first}")["city"] == "Espalion", results
        runs = results[0]["runs"]
        assert [r["outcome"] for r in runs if r["direction"] == "sage_to_ssm"] == ["succeeded"]


def test_an_edit_made_during_the_ssm_pass_of_a_complete_sync_is_sent_during_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SSM -> Sage pass of a complete sync lists every account: an edit made in Sage
    meanwhile is sent by a change pass run between its batches, and the account, listed
    before that change pass wrote it, is read again instead of carrying its older city
    back to Sage."""
    monkeypatch.setattr(to_sage, "CATCH_UP_SECONDS", 0.0)  # every batch looks
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.sync_settings.update(batch_size=5)
        ws.add_dossier("nord", clients=CLIENTS, seed=3)
        ws.activate_all()
        ws.sync("--entity", "clients")
        last = sorted(ws.sage_clients("nord"))[-1]
        before = ws.account(f"nord:{last}")["city"]
        assert before != "Espalion"
        listed = to_sage.SsmToSage.mine
        edits: list[str] = []

        def mine(self: to_sage.SsmToSage, records: list[dict[str, object]]) -> list[object]:
            # the person edits the last client in Sage while the pass is at its first
            # batch: the page holding that account was read already
            if not edits:
                edits.append(last)
                ws.sage_execute(
                    "nord",
                    "UPDATE F_COMPTET SET CT_Ville = 'Espalion', cbModification = "
                    "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
                    (last,),
                )
            return listed(self, records)  # type: ignore[return-value]

        monkeypatch.setattr(to_sage.SsmToSage, "mine", mine)
        results = ws.sync("--full", "--entity", "clients")
        assert edits == [last]
        runs = results[0]["runs"]
        # the complete passes, then the change pass run during the second one
        assert [(r["direction"], r["trigger"] == "change") for r in runs] == [
            ("sage_to_ssm", False),
            ("ssm_to_sage", False),
            ("sage_to_ssm", True),
        ], runs
        assert runs[2]["counts"]["updated"] == 1, runs
        assert runs[2]["finished_at"] <= runs[1]["finished_at"]
        assert ws.account(f"nord:{last}")["city"] == "Espalion"
        assert ws.sage_clients("nord")[last]["CT_Ville"] == "Espalion"
        # and nothing is left for the next sync to send either way
        again = ws.sync("--entity", "clients")[0]["runs"]
        assert all(r["counts"].get("updated", 0) == 0 for r in again), again
        assert ws.sage_clients("nord")[last]["CT_Ville"] == "Espalion"


def test_the_service_stops_a_long_pass_at_its_next_batch_once_its_grace_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a long pass runs: the service leaves it ``stop_grace_seconds``, then
    stops it at its next batch — journaled interrupted, what it sent kept — instead of
    holding the shutdown until every record is sent; the next sync goes on from there
    and creates nothing twice."""
    clients = 200
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        ws = Workspace(tmp_path, sim)
        ws.sync_settings.update(batch_size=5)
        ws.add_dossier("nord", clients=clients, seed=3, entities=("clients",))
        ws.extra_config = "[service]\nstop_grace_seconds = 1\n"
        ws.write_config()
        # 40 bulk calls at 4 requests a second: a pass of ten seconds or more
        text = ws.config_path.read_text(encoding="utf-8")
        text = text.replace(
            "max_requests_per_second = 0", "max_requests_per_second = 4\nmax_concurrency = 1"
        )
        ws.config_path.write_text(text, encoding="utf-8")
        ws.activate_all()
        service = subprocess.Popen(
            [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
            + ["run", "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(ws.accounts("nord")) < 10:
                time.sleep(0.1)
        finally:
            service.send_signal(signal.SIGTERM)
            _out, err = service.communicate(timeout=60)
        assert service.returncode == 0, err
        sent = len(ws.accounts("nord"))
        assert 10 <= sent < clients, err
        runs = ws.cli_json("journal", "--dossier", "nord", "--limit", "50")
        assert [r["outcome"] for r in runs] == ["interrupted"], runs
        results = ws.sync()
        assert all(r["outcome"] == "succeeded" for r in results[0]["runs"]), results
        accounts = Counter(a["extId"] for a in ws.accounts("nord"))
        assert len(accounts) == clients and max(accounts.values()) == 1
