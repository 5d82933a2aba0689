"""ODBC data sources whose name matches a configured pattern are proposed as dossiers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sales_management.simulator.process import (
    SimulatorProcess,
    running_simulator,
)

from support.workspace import Workspace


def test_matching_data_sources_are_proposed_and_sync(
    tmp_path: Path, simulator: SimulatorProcess
) -> None:
    lyon = tmp_path / "lyon.db"
    write_demo_dossier(lyon, clients=8, seed=4)
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text(
        f"[SAGE50_Lyon]\nDriver=SQLite3\nDatabase={lyon}\n\n"
        f"[Compta_Autre]\nDriver=SQLite3\nDatabase={tmp_path / 'other.db'}\n",
        encoding="utf-8",
    )
    config = tmp_path / "dossiersync.toml"
    config.write_text(
        "\n".join(
            [
                "[implementation]",
                'name = "Groupe"',
                f'api_url = "{simulator.url}"',
                f'public_key = "{simulator.public_key}"',
                f'private_key = "{simulator.private_key}"',
                "max_requests_per_second = 0",
                "[discovery]",
                'dsn_patterns = ["SAGE50_*"]',
                'entities = ["clients"]',
            ]
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "ODBCINI": str(odbc_ini)}

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "dossiersync.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    proposed = json.loads(run("dossiers", "discover", "--json"))
    assert [(d["id"], d["name"], d["state"], d["origin"]) for d in proposed] == [
        ("SAGE50_Lyon", "SAGE50_Lyon", "new", "odbc-dsn")
    ]
    run("dossiers", "activate", "SAGE50_Lyon")
    sync = json.loads(run("sync", "--json"))
    assert sync[0]["ok"] is True
    assert sync[0]["runs"][0]["counts"]["created"] == 8
    listed = json.loads(run("dossiers", "list", "--json"))
    assert [(d["id"], d["state"], d["linked_records"]) for d in listed] == [
        ("SAGE50_Lyon", "active", 8)
    ]


def test_discover_without_sales_management_says_so_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped Sales Management: discover names the URL it could not reach, and what
    it cannot know is shown as unknown, not as "no"; what this state store linked is
    still known."""
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)
        monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)
        workspace = Workspace(tmp_path, sim)
        workspace.add_dossier("nord", clients=5, seed=1)
        workspace.add_dossier("sud", clients=5, seed=2)
        workspace.cli("dossiers", "activate", "nord")
        workspace.sync()
    # the simulator is stopped now
    result = workspace.cli("dossiers", "discover")
    assert "Sales Management not asked" in result.output
    assert sim.url in result.output
    found = {d["id"]: d for d in workspace.cli_json("dossiers", "discover")}
    assert found["nord"]["previously_synced"] is True  # it has linked records here
    assert found["sud"]["previously_synced"] is None
    assert found["sud"]["records_in_ssm"] is None
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert rows["sud"][-2:] == ["?", "0"]  # synced before: unknown; incidents: 0


def test_discovery_asks_the_endpoint_plugin_it_is_configured_with(tmp_path: Path) -> None:
    """Listing data sources belongs to an endpoint plugin: the one named in
    ``[discovery] endpoint`` (a second Sage endpoint needs no change to the core)."""
    config = tmp_path / "dossiersync.toml"
    config.write_text(
        "\n".join(
            [
                "[implementation]",
                'name = "Groupe"',
                'api_url = "http://127.0.0.1:9"',
                'public_key = "k"',
                'private_key = "s"',
                "[discovery]",
                'dsn_patterns = ["SAGE50_*"]',
                'endpoint = "ciel_odbc"',
            ]
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(config), "dossiers", "list"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "endpoint plugin 'ciel_odbc' not found in dossiersync.endpoints" in result.stderr
