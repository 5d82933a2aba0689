"""A dossier in PostgreSQL (psqlODBC), state in PostgreSQL, and no secret anywhere.

The API keys, the ODBC password and the state store password are distinctive strings;
every log line, every ``--json`` output and every journal/incident row is searched
for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint
from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sage50fr_odbc.reference_schema import create_reference_schema
from dossiersync.plugins.sales_management.simulator.process import running_simulator

from support.postgres import PgServer
from support.workspace import Workspace

PUBLIC = "pk-Distinctive-7781"
PRIVATE = "sk-Distinctive-9932"


def copy_clients(source: str, target: str) -> int:
    with Sage50OdbcEndpoint(source) as src, Sage50OdbcEndpoint(target) as dst:
        n = 0
        with dst.transaction():
            for row in src.read("F_COMPTET"):
                row.pop("cbMarq", None)
                dst.insert("F_COMPTET", row)
                n += 1
    return n


@pytest.mark.postgres
def test_postgres_dossier_and_state_leak_no_secret(pg: PgServer, tmp_path: Path) -> None:
    sqlite_file = tmp_path / "source.db"
    write_demo_dossier(sqlite_file, clients=20, seed=5)
    dossier_db = pg.create_database("dossier_est")
    odbc = pg.odbc_connection_string(dossier_db)
    create_reference_schema(odbc)
    assert copy_clients(f"DRIVER={{SQLite3}};Database={sqlite_file}", odbc) == 20
    state_url = pg.sqlalchemy_url(pg.create_database("state_secrets"))
    wrong_port = odbc.replace(f"PORT={pg.port}", "PORT=1")

    with running_simulator(
        str(tmp_path / "ssm.sqlite"), public_key=PUBLIC, private_key=PRIVATE
    ) as sim:
        ws = Workspace(tmp_path, sim)
        config = tmp_path / "dossiersync.toml"
        config.write_text(
            "\n".join(
                [
                    "[implementation]",
                    'name = "Groupe"',
                    f'api_url = "{sim.url}"',
                    'public_key = "env:SSM_PUBLIC_KEY"',
                    f'private_key = "{PRIVATE}"',  # a literal secret is masked as well
                    "max_requests_per_second = 0",
                    "[state]",
                    'url = "env:STATE_URL"',
                    "[dossiers.est]",
                    'connection = "env:DOSSIER_EST"',
                    "[dossiers.panne]",
                    f'connection = "{wrong_port}"',
                ]
            ),
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "SSM_PUBLIC_KEY": PUBLIC,
            "STATE_URL": state_url,
            "DOSSIER_EST": odbc,
        }

        def run(*args: str, expect: int = 0) -> str:
            result = subprocess.run(
                [sys.executable, "-m", "dossiersync.cli", "-vv", "--config", str(config), *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert result.returncode == expect, result.stderr
            logs.append(result.stderr)
            return result.stdout

        logs: list[str] = []
        outputs = [
            run("dossiers", "discover", "--json", expect=1),  # panne is unreachable
            run("dossiers", "activate", "est", "panne", "--json"),
            run("sync", "--json", expect=1),
            run("sync", expect=1),
            run("status", "--json"),
            run("dossiers", "list", "--json"),
            run("incidents", "--json"),
            run("journal", "--dossier", "est", "--json"),
            run("journal", "--dossier", "panne", "--json"),
            run("plugins", "--json"),
        ]
        runs = json.loads(run("journal", "--dossier", "est", "--json"))
        outputs.append(run("journal", "--dossier", "est", "--run", str(runs[-1]["run_id"])))

        assert len(ws.accounts("est")) == 20
        incidents = json.loads(run("incidents", "--dossier", "panne", "--json"))
        assert incidents and all(i["kind"] == "run_failed" for i in incidents)
        assert "cannot connect" in incidents[0]["message"]
        assert "(driver PostgreSQL Unicode)" in incidents[0]["message"]
        assert "port 1 failed" in incidents[0]["message"]

    with psycopg.connect(state_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for table in ("run", "event", "incident", "dossier", "link"):
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
            outputs.append(repr(rows))

    everything = "\n".join(outputs + logs)
    assert "-vv" not in everything and "DEBUG" in everything  # the logs were captured
    for secret in (PUBLIC, PRIVATE, pg.password):
        assert secret not in everything
