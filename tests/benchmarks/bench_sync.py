"""Benchmarks: wall time, peak memory and API calls of real syncs.

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_sync.py``). Each
scenario writes a reference dossier, starts the simulator as a real HTTP server, and
runs ``dossiersync sync`` under ``/usr/bin/time -v`` with request logging on, so the
figures are those of the real command. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sales_management.simulator.process import running_simulator

SCENARIOS = {
    # name: (generator counts, enabled entities)
    "products-20k": ({"clients": 50, "contacts": 0, "products": 20000, "orders": 0}, ["products"]),
    "clients-5k": ({"clients": 5000, "contacts": 0, "products": 0, "orders": 0}, ["clients"]),
    "all-1k": ({"clients": 1000}, ["clients", "contacts", "products"]),
}


def timed_sync(config: Path) -> dict[str, object]:
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "dossiersync.cli",
        "-vv",
        "--config",
        str(config),
        "sync",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"sync failed:\n{result.stderr[-3000:]}")
    err = result.stderr
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", err).group(1)  # type: ignore[union-attr]
    requests = re.findall(r"dossiersync\.ssm (\w+) (/\S+) ->", err)
    return {
        "wall": wall.strip(),
        "peak_rss_mb": round(rss / 1024, 1),
        "requests": len(requests),
        "bulk_calls": sum(1 for m, p in requests if m == "POST" and p.endswith("/bulk")),
    }


def run(name: str) -> list[str]:
    counts, entities = SCENARIOS[name]
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        root = Path(tmp)
        summary = write_demo_dossier(root / "d.db", seed=1, **counts)
        with running_simulator(str(root / "ssm.sqlite")) as sim:
            config = root / "dossiersync.toml"
            config.write_text(
                "\n".join(
                    [
                        "[implementation]",
                        'name = "bench"',
                        f'api_url = "{sim.url}"',
                        f'public_key = "{sim.public_key}"',
                        f'private_key = "{sim.private_key}"',
                        "max_requests_per_second = 0",
                        "[state]",
                        f'url = "sqlite:///{root / "state.db"}"',
                        "[dossiers.bench]",
                        f'connection = "DRIVER={{SQLite3}};Database={root / "d.db"}"',
                        "entities = [" + ", ".join(f'"{e}"' for e in entities) + "]",
                    ]
                ),
                encoding="utf-8",
            )
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "dossiersync.cli",
                    "--config",
                    str(config),
                    "dossiers",
                    "activate",
                    "bench",
                ],
                check=True,
                capture_output=True,
                env=os.environ,
            )
            for label in ("first sync", "second sync (nothing changed)"):
                r = timed_sync(config)
                rows.append(
                    f"| {name} | {label} | {summary} | {r['wall']} | {r['peak_rss_mb']} MB "
                    f"| {r['requests']} | {r['bulk_calls']} |"
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    print("| scenario | run | dossier | wall time | peak RSS | API requests | bulk calls |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        for row in run(name):
            print(row, flush=True)


if __name__ == "__main__":
    main()
