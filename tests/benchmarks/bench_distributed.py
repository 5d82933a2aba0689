"""Benchmark: a full cycle of 12 dossiers (three implementations × four) on Celery
workers, with 1, 2 and 4 worker processes.

Run with ``make bench-distributed`` (or
``.venv/bin/python tests/benchmarks/bench_distributed.py``). For each number of workers,
everything new, in one temporary directory removed at the end:

1. a throw-away PostgreSQL (one state database per implementation), ``redis-server``,
   and one strict simulator per implementation — each implementation is a tenant of its
   own, with ``--latency-ms 50 --rate-limit 20`` (its own API bound);
2. four demo dossiers per implementation (``--clients`` clients each, with their
   contacts), activated; ``max_requests_per_second = 20`` in each configuration;
3. N ``dossiersync worker`` processes (``--concurrency 1``: one dossier at a time each, so
   processes are what is counted) and one ``dossiersync scheduler``; the wall time from
   the scheduler's start to the end of every dossier's first full sync (both
   directions, both entities);
4. the broker's load over that cycle (Redis ``total_commands_processed``), the state
   store's (PostgreSQL transactions committed, rows written, summed over the three
   databases), and the requests the simulators answered (and the 429s they sent).

Prints a Markdown table for docs/benchmarks.md. Exits non-zero if a dossier fails or a
simulator counts a refusal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dossiersync.plugins.sales_management.simulator.process import (  # noqa: E402
    running_simulator,
)

from support.cluster import Cluster, RedisServer  # noqa: E402
from support.postgres import PgServer, throwaway_postgres  # noqa: E402

KEYS = {"public_key": "bench-public", "private_key": "bench-private"}
IMPLEMENTATIONS = ("alpha", "beta", "gamma")


def redis_command_stats(broker: RedisServer) -> dict[str, int]:
    """Calls per Redis command since the server started (``INFO commandstats``)."""
    import redis

    client = redis.Redis.from_url(broker.url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def redis_commands(broker: RedisServer) -> int:
    import redis

    client = redis.Redis.from_url(broker.url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_load(pg: PgServer, databases: list[str]) -> dict[str, int]:
    with psycopg.connect(
        host=str(pg.socket_dir), port=pg.port, user="postgres", dbname="postgres"
    ) as conn:
        rows = conn.execute(
            "SELECT sum(xact_commit), sum(tup_inserted + tup_updated + tup_deleted),"
            " sum(tup_returned + tup_fetched) FROM pg_stat_database WHERE datname = ANY(%s)",
            (databases,),
        ).fetchone()
    assert rows is not None
    return {"commits": int(rows[0] or 0), "written": int(rows[1] or 0), "read": int(rows[2] or 0)}


def cycle(pg: PgServer, workers: int, clients: int, root: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        sims = [
            stack.enter_context(
                running_simulator(
                    str(root / f"ssm-{name}.sqlite"), latency_ms=50, rate_limit=20, **KEYS
                )
            )
            for name in IMPLEMENTATIONS
        ]
        broker = RedisServer(root / "redis")
        broker.start()
        stack.callback(broker.stop)
        parts = Cluster(root, pg, sims[0], broker)
        stack.callback(parts.stop)
        parts.visibility_timeout = 1800
        os.environ["SSM_PUBLIC_KEY"] = KEYS["public_key"]
        os.environ["SSM_PRIVATE_KEY"] = KEYS["private_key"]
        databases = []
        for name, sim in zip(IMPLEMENTATIONS, sims, strict=True):
            ws = parts.implementation(
                name,
                {f"{name[0]}{i}": clients for i in range(1, 5)},
                simulator=sim,
                entities=("clients", "contacts"),
                implementation="max_requests_per_second = 20",
                sync={"batch_size": 200},
            )
            ws.config_path.write_text(
                ws.config_path.read_text().replace("max_requests_per_second = 0\n", ""),
                encoding="utf-8",
            )
            ws.activate_all()
            databases.append(ws.state_url.rsplit("/", 1)[1])
        spawned = [parts.worker(index + 1, concurrency=1) for index in range(workers)]
        time.sleep(3)  # the workers connected: the cycle is the work, not their start
        commands, load = redis_commands(broker), pg_load(pg, databases)
        cpu = sum(cpu_seconds(p.pid) for p in spawned)
        sim_cpu = sum(cpu_seconds(s.process.pid) for s in sims)
        requests = sum(s.stats()["requests"] for s in sims)
        started = time.monotonic()
        parts.scheduler()

        def done() -> bool:
            return all(
                not d["needs_full_sync"]
                and all(r["outcome"] != "running" for e in d["entities"] for r in e["last_runs"])
                for name in IMPLEMENTATIONS
                for d in parts.status(name)
            )

        parts.wait("every dossier's full sync", done, timeout=1800)
        wall = time.monotonic() - started
        by_command = sorted(redis_command_stats(broker).items(), key=lambda kv: -kv[1])
        print(f"{workers} worker(s), Redis calls: {by_command[:8]}", file=sys.stderr)
        cpu = sum(cpu_seconds(p.pid) for p in spawned) - cpu
        sim_cpu = sum(cpu_seconds(s.process.pid) for s in sims) - sim_cpu
        machine = os.getloadavg()[0]
        after = pg_load(pg, databases)
        stats = [s.stats() for s in sims]
        failed = [
            (name, d["id"], r["outcome"])
            for name in IMPLEMENTATIONS
            for d in parts.status(name)
            for e in d["entities"]
            for r in e["last_runs"]
            if r["outcome"] not in ("succeeded", "running")  # a change pass may have begun
        ]
        if failed or any(s["refusals"] for s in stats):
            sys.exit(f"failed runs {failed} or refusals {[s['reasons'] for s in stats]}")
        holders = {
            r["holder"].split("/")[0]
            for name in IMPLEMENTATIONS
            for d in parts.status(name)
            for e in d["entities"]
            for r in e["last_runs"]
        }
        return {
            "workers": workers,
            "wall": wall,
            "processes_used": len(holders),
            "cpu": cpu,
            "sim_cpu": sim_cpu,
            "load": machine,
            "requests": sum(s["requests"] for s in stats) - requests,
            "redis": redis_commands(broker) - commands,
            "commits": after["commits"] - load["commits"],
            "written": after["written"] - load["written"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=150, help="clients per dossier")
    parser.add_argument("--keep", action="store_true", help="keep the folders (logs)")
    args = parser.parse_args()
    rows = []
    with throwaway_postgres() as pg:
        for n in args.workers:
            root = Path(tempfile.mkdtemp(prefix="dossiersync-bench-distributed-"))
            try:
                row = cycle(pg, n, args.clients, root)
            finally:
                if not args.keep:
                    shutil.rmtree(root, ignore_errors=True)
                else:
                    print(f"kept {root}", file=sys.stderr)
            rows.append(row)
            print(
                f"{n} worker(s): {row['wall']:.1f} s, {row['processes_used']} took part",
                file=sys.stderr,
                flush=True,
            )
    base = rows[0]["wall"]
    print(f"({os.cpu_count()} CPU cores)")
    print(
        "| worker processes | full cycle (s) | speed-up | workers' CPU (s) "
        "| simulators' CPU (s) | load average | SSM requests | broker commands "
        "| state commits | state rows written |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['wall']:.1f} | ×{base / r['wall']:.2f} | {r['cpu']:.1f} "
            f"| {r['sim_cpu']:.1f} | {r['load']:.1f} | {r['requests']} | {r['redis']} "
            f"| {r['commits']} | {r['written']} |"
        )


if __name__ == "__main__":
    main()
