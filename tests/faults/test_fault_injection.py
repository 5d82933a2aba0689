"""Fault injection: two dossiers with all four entities synced through a proxy that fails
a seeded share of the API requests (500 before and after the server acted, 429 with
``Retry-After``, expired sessions, connection resets, answers held past the client's
timeout); then orders entered in SSM synced to Sage through the same faults. The figures
of docs/reliability.md come from the same scenario (``tests/faults/report.py``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dossiersync.plugins.sales_management.simulator.process import running_simulator

from faults.proxy import FaultProxy
from faults.scenario import run


def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario sets the API keys of its simulators: put them back afterwards."""
    monkeypatch.setenv("SSM_PUBLIC_KEY", "")
    monkeypatch.setenv("SSM_PRIVATE_KEY", "")


def test_at_5_percent_faults_the_first_sync_exits_0_with_nothing_lost_or_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys(monkeypatch)
    figures = run(tmp_path, rate=0.05, seed=5, attempts=1)
    assert sum(v for k, v in figures.faults.items() if k != "requests") > 0
    assert figures.exit_codes == [0], figures
    assert figures.ssm_exit_codes == [0], figures
    assert (figures.duplicates, figures.missing, figures.extra) == (0, 0, 0), figures
    assert figures.ssm_orders_in_sage == figures.ssm_orders > 0, figures
    assert figures.refusals == 0


def test_at_20_percent_faults_the_sync_converges_within_2_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys(monkeypatch)
    figures = run(tmp_path, rate=0.2, seed=20, attempts=2)
    # every kind of fault was met
    assert figures.faults["500_before"] and figures.faults["500_after"], figures.faults
    assert figures.faults["429"] and figures.faults["401"] and figures.faults["hold"]
    assert figures.faults["reset_before"] + figures.faults["reset_after"] > 0
    assert figures.converged and figures.attempts <= 2, figures
    assert len(figures.ssm_exit_codes) <= 2, figures
    assert (figures.duplicates, figures.missing, figures.extra) == (0, 0, 0), figures
    assert figures.ssm_orders_in_sage == figures.ssm_orders > 0, figures
    assert figures.refusals == 0


def test_the_proxy_is_seeded_and_injects_what_it_says(tmp_path: Path) -> None:
    """Same seed, same faults; a 500 after the server acted leaves the record created; a
    reset closes the connection with no answer; an expired session stays expired."""
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        draws = []
        for _ in range(2):
            with FaultProxy(sim.url, rate=0.5, seed=7) as proxy:
                draws.append([proxy.draw("/x", None) for _ in range(40)])
        assert draws[0] == draws[1] and any(draws[0])

        credentials = {"username": sim.public_key, "password": sim.private_key}
        token = httpx.post(f"{sim.url}/login", json=credentials).json()["token"]
        headers = {"X-Session-Key": token}
        body = {"name": "Acme", "branchId": 1, "salesRepId1": 2, "extId": "faults:1"}
        with FaultProxy(sim.url, rate=1.0, seed=1, faults=("500_after",)) as proxy:
            answer = httpx.post(f"{proxy.url}/accounts", json=body, headers=headers)
        assert answer.status_code == 500
        listed = httpx.get(
            f"{sim.url}/accounts", params={"where": "extId = 'faults:1'"}, headers=headers
        ).json()
        assert len(listed) == 1  # the server acted

        with FaultProxy(sim.url, rate=1.0, seed=1, faults=("reset",)) as proxy:
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{proxy.url}/accounts", headers=headers)

        with FaultProxy(sim.url, rate=0.0, seed=1) as proxy:
            for _ in range(6):
                assert httpx.get(f"{proxy.url}/users", headers=headers).status_code == 200
            proxy.rate, proxy.faults = 1.0, ("401",)
            assert httpx.get(f"{proxy.url}/users", headers=headers).status_code == 401
            proxy.rate = 0.0
            assert httpx.get(f"{proxy.url}/users", headers=headers).status_code == 401
            assert proxy.counts["401"] == 1

        with FaultProxy(sim.url, rate=1.0, seed=1, faults=("hold",), hold_seconds=1.0) as proxy:
            with pytest.raises(httpx.ReadTimeout):
                httpx.get(f"{proxy.url}/users", headers=headers, timeout=0.3)
