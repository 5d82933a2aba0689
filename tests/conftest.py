"""Shared fixtures: a throw-away PostgreSQL, the SSM simulator, dossier workspaces."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dossiersync.plugins.sales_management.simulator.process import (
    SimulatorProcess,
    running_simulator,
)

from support.postgres import PgServer, throwaway_postgres
from support.workspace import Workspace


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty state store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
    server: PgServer = request.getfixturevalue("pg")
    name = f"state_{os.getpid()}_{len(tmp_path_factory.getbasetemp().name)}_{id(request)}"
    return server.sqlalchemy_url(server.create_database(name[:60]))


@pytest.fixture
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """A fresh simulator (empty business data) for one test."""
    db = tmp_path_factory.mktemp("ssm") / "ssm.sqlite"
    with running_simulator(str(db)) as sim:
        yield sim


@pytest.fixture
def workspace(
    request: pytest.FixtureRequest,
    tmp_path: pytest.TempPathFactory,
    simulator: SimulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Workspace]:
    """A workspace; afterwards, the simulator must have refused nothing the connector sent
    (tests that provoke refusals on purpose are marked ``ssm_refusals``)."""
    monkeypatch.setenv("SSM_PUBLIC_KEY", simulator.public_key)
    monkeypatch.setenv("SSM_PRIVATE_KEY", simulator.private_key)
    workspace = Workspace(tmp_path, simulator)  # type: ignore[arg-type]
    yield workspace
    if request.node.get_closest_marker("ssm_refusals") is None:
        stats = workspace.simulator_stats()
        assert stats["refusals"] == 0, f"the simulator refused requests: {stats['reasons']}"
