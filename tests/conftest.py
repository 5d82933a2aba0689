"""Shared fixtures: a throw-away PostgreSQL; the SSM simulator and dossier workspaces are
the package's test kit (``dossiersync.testing``, a pytest plugin), under the names the
suite has always used."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dossiersync.plugins.sales_management.simulator.process import SimulatorProcess
from dossiersync.testing import Workspace

from support.postgres import PgServer, throwaway_postgres

# the suite reads the command line's English: a French locale on the machine running it
# must not translate it (LANGUAGE is the first locale variable the CLI reads; the tests
# of the French remove it)
os.environ["LANGUAGE"] = "en"


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
def simulator(ssm_simulator: SimulatorProcess) -> SimulatorProcess:
    """A fresh simulator (empty business data) for one test."""
    return ssm_simulator


@pytest.fixture
def workspace(dossiersync_workspace: Workspace) -> Workspace:
    """A workspace; afterwards, the simulator must have refused nothing the connector sent
    (tests that provoke refusals on purpose are marked ``ssm_refusals``)."""
    return dossiersync_workspace
