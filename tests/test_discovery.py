"""ODBC data sources whose name matches a configured pattern are proposed as dossiers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sales_management.simulator.process import SimulatorProcess


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
