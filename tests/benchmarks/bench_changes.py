"""Benchmark: a sync's cost follows what changed, not the dossier's size.

Run with ``make bench-changes`` (or ``.venv/bin/python tests/benchmarks/bench_changes.py``).
In one temporary directory, removed at the end: a simulator with ``--latency-ms 50
--rate-limit 20``, one dossier of ``--products`` articles (and a few clients) written by
``dossiersync demo-dossier``, a configuration setting nothing but the keys, the state
file and the dossier (entities clients and products). Then, each timed as a whole
process, with the simulator's request count around it:

1. the first ``dossiersync sync`` (everything created);
2. a second one with nothing changed;
3. a third after ``--changed`` articles were edited in the dossier file (their
   modification time set, as Sage does).

Prints a Markdown table for docs/benchmarks.md: seconds, requests, and each later sync
as a share of the first.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dossiersync.plugins.sales_management.simulator.process import running_simulator

BIN = Path(sys.executable).parent
KEYS = {"SSM_PUBLIC_KEY": "bench-public", "SSM_PRIVATE_KEY": "bench-private"}


def timed(config: Path, *args: str) -> float:
    start = time.monotonic()
    done = subprocess.run(
        [str(BIN / "dossiersync"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **KEYS},
        timeout=7200,
    )
    if done.returncode != 0:
        sys.exit(f"dossiersync {' '.join(args)} failed:\n{done.stderr}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dossiersync-bench-changes-") as folder:
        root = Path(folder)
        dossier = root / "nord.db"
        subprocess.run(
            [BIN / "dossiersync", "demo-dossier", dossier, "--clients", "200"]
            + ["--products", str(args.products), "--contacts", "0", "--orders", "0"],
            check=True,
            capture_output=True,
        )
        with running_simulator(
            str(root / "ssm.sqlite"),
            latency_ms=50,
            rate_limit=20,
            public_key=KEYS["SSM_PUBLIC_KEY"],
            private_key=KEYS["SSM_PRIVATE_KEY"],
        ) as sim:
            config = root / "dossiersync.toml"
            config.write_text(
                "\n".join(
                    [
                        "[implementation]",
                        'name = "Bench"',
                        f'api_url = "{sim.url}"',
                        'public_key = "env:SSM_PUBLIC_KEY"',
                        'private_key = "env:SSM_PRIVATE_KEY"',
                        "[state]",
                        f'url = "sqlite:///{root / "state.db"}"',
                        "[dossiers.nord]",
                        'name = "Nord"',
                        f'connection = "DRIVER={{SQLite3}};Database={dossier}"',
                        'entities = ["clients", "products"]',
                    ]
                )
                + "\n",
                encoding="utf-8",
            )
            timed(config, "dossiers", "activate", "nord")
            rows = []
            for label in ("first sync", "nothing changed", f"{args.changed} articles changed"):
                if label.endswith("changed") and label[0].isdigit():
                    with sqlite3.connect(dossier) as conn:
                        conn.execute(
                            "UPDATE F_ARTICLE SET AR_Design = AR_Design || ' *', "
                            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') "
                            "WHERE rowid IN (SELECT rowid FROM F_ARTICLE ORDER BY AR_Ref "
                            "LIMIT ?)",
                            (args.changed,),
                        )
                before = sim.stats()["requests"]
                seconds = timed(config, "sync")
                rows.append((label, seconds, sim.stats()["requests"] - before))
    first = rows[0][1]
    print(f"{args.products} articles and 200 clients, default settings\n")
    print("| sync | seconds | API requests | share of the first |")
    print("|---|---|---|---|")
    for label, seconds, requests in rows:
        print(f"| {label} | {seconds:.1f} | {requests} | {100 * seconds / first:.1f} % |")


if __name__ == "__main__":
    main()
