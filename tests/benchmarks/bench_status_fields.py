"""Benchmark: what the status fields cost in requests (``[implementation.status_fields]``).

Run with ``.venv/bin/python tests/benchmarks/bench_status_fields.py``. In a temporary
directory, removed at the end, twice — the status fields off, then on — each time
with a fresh simulator (no latency, no rate limit: only the requests are counted, from
``GET /_simulator/stats``) and a fresh state store: two demo dossiers written by
``dossiersync demo-dossier`` (``nord``: ``--clients`` clients, seed 1; ``sud``: 60 % of
that, seed 2; contacts, products and orders at the generator's defaults), entities
clients, contacts, products and orders. Then the real command, each step in a process
of its own:

1. ``dossiers activate nord``, ``sync``: the first sync of nord;
2. with the fields on only: ``ssm fields --yes`` (they are created, the shape found on
   a synced record);
3. ``sync``: the next sync (with the fields on: every record's fields written once);
4. ``sync``: a sync with nothing changed;
5. ``dossiers activate sud``, ``sync --dossier sud``: the first sync of a dossier added
   once the fields are set up;
6. one client of nord given an invalid e-mail address in Sage, ``sync``: a record moving
   to error with no data write.

Prints a Markdown table for docs/benchmarks.md: requests by step, off and on, and per
record written.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from dossiersync.plugins.sales_management.simulator.process import running_simulator

BIN = Path(sys.executable).parent
KEYS = {"SSM_PUBLIC_KEY": "bench-public", "SSM_PRIVATE_KEY": "bench-private"}
ENTITIES = ["clients", "contacts", "products", "orders"]


def cli(config: Path, *args: str, expect: tuple[int, ...] = (0,)) -> Any:
    done = subprocess.run(
        [str(BIN / "dossiersync"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **KEYS},
        timeout=1800,
    )
    if done.returncode not in expect:
        sys.exit(f"dossiersync {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout) if "--json" in args else done.stdout


def requests(api_url: str) -> dict[str, int]:
    base = api_url.removesuffix("/api/v4")
    stats: dict[str, Any] = httpx.get(f"{base}/_simulator/stats", timeout=10).json()
    assert stats["refusals"] == 0, stats["reasons"]
    return {"all": int(stats["requests"]), **stats["calls"]}


def written(runs: list[dict[str, Any]]) -> int:
    """Records created or updated in SSM by a ``sync --json``."""
    return sum(
        run["counts"].get("created", 0) + run["counts"].get("updated", 0)
        for dossier in runs
        for run in dossier["runs"]
        if run["direction"] == "sage_to_ssm"
    )


def write_config(root: Path, api_url: str, status_fields: bool) -> Path:
    lines = [
        "[implementation]",
        'name = "Bench"',
        f'api_url = "{api_url}"',
        'public_key = "env:SSM_PUBLIC_KEY"',
        'private_key = "env:SSM_PRIVATE_KEY"',
        "max_requests_per_second = 0",
    ]
    if status_fields:
        lines += ["[implementation.status_fields]", 'language = "fr"']
    lines += ["[state]", f'url = "sqlite:///{root / "state.db"}"']
    for dossier_id, branch in (("nord", 2), ("sud", 3)):
        lines += [
            f"[dossiers.{dossier_id}]",
            f'name = "Dossier {dossier_id}"',
            f'connection = "DRIVER={{SQLite3}};Database={root / dossier_id}.db"',
            "entities = [" + ", ".join(f'"{e}"' for e in ENTITIES) + "]",
            f"branch_id = {branch}",
        ]
    config = root / "dossiersync.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


Step = tuple[str, dict[str, int], int]


def scenario(root: Path, clients: int, status_fields: bool) -> list[Step]:
    """(step, requests by call with ``all`` for their total, records written) of each
    step."""
    root.mkdir()
    for dossier_id, count, seed in (("nord", clients, 1), ("sud", clients * 6 // 10, 2)):
        demo = [str(BIN / "dossiersync"), "demo-dossier", str(root / f"{dossier_id}.db")]
        demo += ["--clients", str(count), "--seed", str(seed)]
        subprocess.run(demo, check=True, capture_output=True)
    steps: list[Step] = []
    with running_simulator(
        str(root / "ssm.sqlite"),
        public_key=KEYS["SSM_PUBLIC_KEY"],
        private_key=KEYS["SSM_PRIVATE_KEY"],
    ) as sim:
        config = write_config(root, sim.url, status_fields)

        def step(name: str, *args: str, expect: tuple[int, ...] = (0,)) -> None:
            before = requests(sim.url)
            out = cli(config, *args, expect=expect)
            records = written(out) if args[0] == "sync" else 0
            after = requests(sim.url)
            spent = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
            steps.append((name, spent, records))

        cli(config, "dossiers", "activate", "nord")
        step("first sync of nord", "sync", "--json")
        if status_fields:
            step("ssm fields --yes", "ssm", "fields", "--yes")
        step("next sync", "sync", "--json")
        step("nothing changed", "sync", "--json")
        cli(config, "dossiers", "activate", "sud")
        step("first sync of sud, added later", "sync", "--dossier", "sud", "--json")
        with sqlite3.connect(root / "nord.db") as sage:
            sage.execute(
                "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse', cbModification = "
                "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00003'"
            )
        step("one client of nord in error", "sync", "--json", expect=(1,))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="clients of nord (500)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-status-") as folder:
        off = {n: spent for n, spent, _ in scenario(Path(folder) / "off", options.clients, False)}
        on = scenario(Path(folder) / "on", options.clients, True)
    print("| step | records written | requests, fields off | fields on | the difference |")
    print("|---|---|---|---|---|")
    for name, spent, records in on:
        before = off.get(name, {})
        more = {k: spent.get(k, 0) - before.get(k, 0) for k in {*spent, *before} - {"all"}}
        said = ", ".join(f"`{k}` {n:+d}" for k, n in sorted(more.items()) if n) or "none"
        shown_off = f"{before['all']:,}" if before else "—"
        print(f"| {name} | {records:,} | {shown_off} | {spent['all']:,} | {said} |")


if __name__ == "__main__":
    main()
