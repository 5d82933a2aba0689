"""Syncs on every shape of bulk item answer the simulator offers.

The answer of ``POST|PUT /{resource}/bulk`` for each item is unpublished: the simulator
answers ``{"guid", "statusCode", "id", "Message"}`` (``status``), ``{"guid", "id",
"Message"}`` (``message``) or ``{"guid", "id"}`` (``bare``) as ``--bulk-answer`` says.
A first sync of two dossiers, a second sync with nothing changed, and a sync through
API faults must give the same SSM on each: nothing lost, nothing doubled, nothing sent
again. (The full fault scenario of tests/faults runs on the ``status`` shape.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dossiersync.plugins.sales_management.simulator.app import BULK_ANSWERS
from dossiersync.plugins.sales_management.simulator.process import running_simulator

from faults.proxy import FaultProxy
from faults.scenario import DOSSIERS, FaultWorkspace, ext_ids, make_dossiers, reference
from support.workspace import Workspace, totals

#: the proxy's faults here: the ones after which the client must make out what the server
#: did (a lost answer, a reset, an expired session, throttling); an answer held past the
#: client's timeout is left to the full scenario, whose time it is mostly spent waiting
FAULTS = ("500_before", "500_after", "429", "401", "reset")


@contextmanager
def shaped_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> Iterator[Workspace]:
    with running_simulator(str(tmp_path / "ssm.sqlite"), bulk_answer=shape) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        yield Workspace(tmp_path, sim)


def writes_of(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The write calls (anything but GET and login) between two stats snapshots."""
    return {
        call: n - before.get(call, 0)
        for call, n in after.items()
        if n != before.get(call, 0) and not call.startswith("GET ") and call != "POST /login"
    }


def labels(ws: Workspace) -> Counter[str]:
    return Counter(
        str(r["label"])
        for dossier_id in DOSSIERS
        for r in ws.cli_json("records", "--dossier", dossier_id, "--limit", "100000")
    )


@pytest.mark.parametrize("shape", BULK_ANSWERS)
def test_first_sync_of_two_dossiers_then_a_second_sending_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    with shaped_workspace(tmp_path, monkeypatch, shape) as ws:
        make_dossiers(ws)
        ws.activate_all()
        first = ws.sync()
        created = totals(first)["created"]
        held = ext_ids(ws)
        # every client, contact, family, product and order (with its lines) once in SSM
        assert max(held.values()) == 1
        accounts = sum(1 for e in held if e.startswith("accounts/"))
        assert accounts == sum(d["clients"] for d in DOSSIERS.values())
        assert {e.split("/")[0] for e in held} >= {"accounts", "contacts", "products"}
        assert set(labels(ws)) == {"synced"}
        assert created == sum(labels(ws).values()) > accounts

        before = ws.simulator_stats()["calls"]
        second = ws.sync()
        assert writes_of(before, ws.simulator_stats()["calls"]) == {}
        assert sum(totals(second)[k] for k in ("created", "updated", "deleted")) == 0
        assert ext_ids(ws) == held
        assert ws.simulator_stats()["refusals"] == 0


@pytest.mark.parametrize("shape", BULK_ANSWERS)
def test_a_sync_through_api_faults_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """A tenth of the writes carried out and then answered 500 by the simulator, and a
    proxy failing a seeded 5 % of the requests: the dossiers converge to what a
    fault-free sync gives; a sync after that sends no write."""
    expected = reference(tmp_path / "reference", shape)
    root = tmp_path / "faults"
    root.mkdir()
    switches = {"bulk_answer": shape, "lost_answer_rate": 0.1, "seed": 5}
    with running_simulator(str(root / "ssm.sqlite"), **switches) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        with FaultProxy(sim.url, rate=0.05, seed=5, faults=FAULTS) as proxy:
            ws = FaultWorkspace(root, sim)
            ws.api_url = proxy.url
            make_dossiers(ws)
            ws.activate_all()
            codes: list[int] = []
            for _ in range(3):
                result: Any = ws.cli("sync", "--json", expect=None)
                codes.append(result.exit_code)
                if result.exit_code == 0:
                    break
            assert codes[-1] == 0, codes
            assert sum(n for k, n in proxy.counts.items() if k != "requests") > 0
            before = sim.stats()["calls"]
            ws.sync()
            assert writes_of(before, sim.stats()["calls"]) == {}
        held = ext_ids(ws)
        assert held == expected  # the same records, each once
        assert set(labels(ws)) == {"synced"}
        assert sim.stats()["refusals"] == 0
