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

With ``--products 0 --clients N``, the dossier is N clients alone (entity clients), and
the third sync follows ``--changed`` clients edited.

The measured commands run the connector as a user installs it: ``pip install`` of this
clone into a virtualenv of the temporary directory, with its dependencies and nothing
else (``--dev-venv`` runs the project's ``.venv`` instead, which also holds the test
tools: there httpx and httpcore import the trio, rich and pygments the test tools bring,
about 0.2 s more at every start). They keep their compiled modules, as an installed
connector does: the first sync compiles them, the later ones do not.

Prints a Markdown table for docs/benchmarks.md: seconds, requests, each later sync as a
share of the first, and the peak RSS of each process (``os.wait4``).
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

from bench_latency import KEYS, strict_simulator, write_config

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def user_install(folder: Path) -> Path:
    """A virtualenv in ``folder`` with this clone installed as a user installs it (its
    dependencies, no test tools); the folder of its commands."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if done.returncode != 0:
        sys.exit(f"pip install {ROOT} failed:\n{done.stdout}{done.stderr}")
    return bin_dir


def timed(config: Path, *args: str, bin_dir: Path = BIN) -> tuple[float, int]:
    """Seconds and peak RSS (MB, the kernel's ``ru_maxrss``) of one command."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [str(bin_dir / "dossiersync"), "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=installed_env(config.parent),
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            sys.exit(f"dossiersync {' '.join(args)} failed:\n{errors.read().decode()}")
    return seconds, usage.ru_maxrss // 1024


def installed_env(folder: Path) -> dict[str, str]:
    """The environment of a measured command: the keys, and compiled modules kept (in
    ``folder``, not the clone) as an installed connector has them, so that a short sync
    is not timed compiling the connector's sources again."""
    env = {**os.environ, **KEYS, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument(
        "--clients",
        type=int,
        default=200,
        help="with --products 0, the dossier of clients alone (entity clients)",
    )
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument(
        "--dev-venv",
        action="store_true",
        help="measure the project's .venv (with the test tools), not a user's install",
    )
    args = parser.parse_args()
    # the rows changed by the third sync: articles, or clients in a dossier of clients
    table, key, column = (
        ("F_ARTICLE", "AR_Ref", "AR_Design")
        if args.products
        else ("F_COMPTET", "CT_Num", "CT_Intitule")
    )
    what = "articles" if args.products else "clients"
    with tempfile.TemporaryDirectory(prefix="dossiersync-bench-changes-") as folder:
        root = Path(folder)
        dossier = root / "nord.db"
        subprocess.run(
            [BIN / "dossiersync", "demo-dossier", dossier, "--clients", str(args.clients)]
            + ["--products", str(args.products), "--contacts", "0", "--orders", "0"],
            check=True,
            capture_output=True,
        )
        bin_dir = BIN if args.dev_venv else user_install(root)
        with strict_simulator(root) as sim:
            entities = ["clients", "products"] if args.products else ["clients"]
            config = write_config(root, sim.url, dossier, entities)
            timed(config, "dossiers", "activate", "nord", bin_dir=bin_dir)
            rows = []
            for label in ("first sync", "nothing changed", f"{args.changed} {what} changed"):
                if label.endswith("changed") and label[0].isdigit():
                    with sqlite3.connect(dossier) as conn:
                        # the table and column names are the benchmark's own, never data
                        conn.execute(
                            f"UPDATE {table} SET {column} = {column} || ' *', "  # noqa: S608
                            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') "
                            f"WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {key} "
                            "LIMIT ?)",
                            (args.changed,),
                        )
                before = sim.stats()["requests"]
                seconds, rss = timed(config, "sync", bin_dir=bin_dir)
                rows.append((label, seconds, sim.stats()["requests"] - before, rss))
    first = rows[0][1]
    installed = "the project's .venv" if args.dev_venv else "installed as a user installs it"
    print(f"{args.products} articles and {args.clients} clients, default settings, {installed}\n")
    print("| sync | seconds | API requests | share of the first | peak RSS |")
    print("|---|---|---|---|---|")
    for label, seconds, requests, rss in rows:
        share = 100 * seconds / first
        print(f"| {label} | {seconds:.1f} | {requests} | {share:.1f} % | {rss} MB |")


if __name__ == "__main__":
    main()
