"""Benchmark: many dossiers on one Sales Management tenant, at default settings — the first
sync's requests per record against one dossier of the same size, its wall time against
the tenant's pacing floor, the idle cost of ``dossiersync run``, and how fast edits
reach the other side.

Run with ``make bench-multi`` (or ``.venv/bin/python tests/benchmarks/bench_multi.py``).
For each N of ``--dossiers`` (default 30 and 100), in one temporary directory removed at
the end:

1. **data**: N dossiers ``d000``… written by ``dossiersync demo-dossier PATH --clients C
   --seed i`` (C = ``--clients``, default 100: about 300 records each over four entities,
   clients, contacts, products with their families, orders with their lines), and the
   **baseline**, one dossier of the same size: ``demo-dossier --clients N×C`` (its
   contacts, products and orders scale with the same defaults). The configurations set
   nothing but the API URL and keys, the state file and the dossiers (no ``branch_id``):
   every other setting is the default;
2. **first sync**, for the baseline and for the N dossiers, each on a fresh simulator
   (``--latency-ms 50 --rate-limit 20``, a remote tenant) and a fresh state file:
   ``dossiers activate`` (every id), then ``dossiersync sync --json`` timed as a process.
   Its records are the Sage records it read (``counts.read`` summed over the
   ``sage_to_ssm`` runs), its requests the simulator's count over the sync. Reported:
   requests per record, the N dossiers' over the baseline's (target ≤ 1.5), and the wall
   time against the **pacing floor**, requests / 20 (the tenant's rate; target ≤ 1.2);
3. **idle**, the N dossiers only, right after their first sync: ``dossiersync run
   --no-web`` as a process; once it has settled (20 s after its start, then until the
   simulator's request count grows by fewer than 10 requests in 10 s, at most 300 s),
   over ``--idle`` seconds with nothing changed: the service's CPU as a share of one
   core (``/proc/PID/stat``, user + system), the SSM requests a minute, and the runs
   journaled (``journal --json`` of every dossier, before and after: none expected);
4. **Sage → SSM**: ``--samples`` times, one client's city is changed in the SQLite file
   of a dossier picked at random (its modification time set, as Sage does), and SSM is
   polled (4 times a second, a ``GET`` by extId ``<dossier>:<client code>``) until the
   account shows it: the time from the write to the first poll that sees it;
5. **SSM → Sage**: ``--samples`` times, a prospect's phone is changed through the API in
   a dossier picked at random, and its file is polled (10 times a second) until the row
   shows it. Edits in both directions are spaced by random gaps of 0.5–7 s; dossiers,
   records and gaps are drawn from one seeded generator (7);
6. the service's peak RSS (``VmHWM``), then SIGTERM: it must exit with status 0.

``--skip-baseline`` leaves step 2's baseline out (its columns read 0): the service's
figures of a row measured again, the baseline kept from an earlier run.

Prints the command line and a Markdown table for docs/benchmarks.md, one row per N.
Exits non-zero if the service fails or a simulator counts a refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from bench_latency import (
    BIN,
    KEYS,
    account,
    cli,
    edit_city,
    percentile,
    polled,
    put,
    strict_simulator,
    wait_for,
    write_config,
)

ENTITIES = ["clients", "contacts", "products", "orders"]
#: the tenant's rate (``--rate-limit 20`` of ``strict_simulator``): requests a second
TENANT_RATE = 20


@dataclass
class FirstSync:
    records: int
    requests: int
    wall: float
    calls: dict[str, int]

    @property
    def per_record(self) -> float:
        return self.requests / self.records if self.records else 0.0

    @property
    def floor(self) -> float:
        """The pacing floor: the fewest seconds these requests take at the tenant's rate."""
        return self.requests / TENANT_RATE


@dataclass
class Idle:
    settled_after: float
    cpu_percent: float
    requests_per_minute: float
    runs: int
    calls: dict[str, int]


@dataclass
class Row:
    dossiers: int
    first: FirstSync
    baseline: FirstSync
    idle: Idle
    sage_to_ssm: list[float]
    ssm_to_sage: list[float]
    peak_rss_mb: float


def demo_dossier(path: Path, clients: int, seed: int) -> None:
    subprocess.run(
        [str(BIN / "dossiersync"), "demo-dossier", str(path), "--clients", str(clients)]
        + ["--seed", str(seed)],
        check=True,
        capture_output=True,
    )


def write_dossiers(folder: Path, count: int, clients: int) -> dict[str, Path]:
    """``count`` demo dossiers ``d000``… of ``clients`` clients each, seeds 0, 1…"""
    folder.mkdir(parents=True)
    dossiers = {f"d{i:03d}": folder / f"d{i:03d}.db" for i in range(count)}
    with ThreadPoolExecutor(4) as pool:
        done = pool.map(
            lambda item: demo_dossier(item[1], clients, item[0]), enumerate(dossiers.values())
        )
        list(done)  # raise the first failure
    return dossiers


def first_sync(config: Path, sim: Any, ids: list[str]) -> FirstSync:
    """``dossiers activate`` of every id, then one ``dossiersync sync`` timed as a process."""
    cli(config, "dossiers", "activate", *ids)
    before = sim.stats()
    start = time.monotonic()
    results = cli(config, "sync", "--json")
    wall = time.monotonic() - start
    after = sim.stats()
    records = sum(
        run["counts"]["read"]
        for dossier in results
        for run in dossier["runs"]
        if run["direction"] == "sage_to_ssm"
    )
    calls = calls_between(before, after)
    return FirstSync(records, after["requests"] - before["requests"], wall, calls)


def calls_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """The simulator's requests by call between two of its ``stats()``."""
    return {
        call: count - before["calls"].get(call, 0)
        for call, count in after["calls"].items()
        if count != before["calls"].get(call, 0)
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM for process {pid}")


def journaled_runs(config: Path, ids: list[str]) -> int:
    """The runs in the journals of these dossiers."""
    with ThreadPoolExecutor(4) as pool:
        counts = pool.map(
            lambda dossier_id: len(
                cli(config, "journal", "--dossier", dossier_id, "--json", "--limit", "100000")
            ),
            ids,
        )
        return sum(counts)


class Service:
    """``dossiersync run --no-web`` as a process, its stderr in a file."""

    def __init__(self, config: Path) -> None:
        self.log = config.parent / "service.log"
        self._log_file = self.log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [str(BIN / "dossiersync"), "--config", str(config), "run", "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
            env={**os.environ, **KEYS},
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            sys.exit(f"the service ended ({self.process.returncode}):\n{self.tail()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8").splitlines()[-lines:])


def settle(service: Service, sim: Any) -> float:
    """Wait until the service is quiet: 20 s after its start, then until the simulator's
    request count grows by fewer than 10 in 10 s (at most 300 s after the start)."""
    time.sleep(max(0.0, service.started + 20 - time.monotonic()))
    while time.monotonic() - service.started < 300:
        service.check_alive()
        before = sim.stats()["requests"]
        time.sleep(10)
        if sim.stats()["requests"] - before < 10:
            break
    else:
        print("the service was still busy after 300 s; measuring anyway", file=sys.stderr)
    return time.monotonic() - service.started


def idle_cost(config: Path, ids: list[str], sim: Any, service: Service, seconds: float) -> Idle:
    settled_after = settle(service, sim)
    runs_before = journaled_runs(config, ids)
    cpu_before, stats_before = cpu_seconds(service.pid), sim.stats()
    start = time.monotonic()
    time.sleep(seconds)
    cpu_after, stats_after = cpu_seconds(service.pid), sim.stats()
    elapsed = time.monotonic() - start
    runs_after = journaled_runs(config, ids)
    service.check_alive()
    return Idle(
        settled_after=round(settled_after, 1),
        cpu_percent=100 * (cpu_after - cpu_before) / elapsed,
        requests_per_minute=(stats_after["requests"] - stats_before["requests"]) * 60 / elapsed,
        runs=runs_after - runs_before,
        calls=calls_between(stats_before, stats_after),
    )


def ssm_session(url: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=30)
    token = http.post(
        "/login", json={"username": KEYS["SSM_PUBLIC_KEY"], "password": KEYS["SSM_PRIVATE_KEY"]}
    ).json()["token"]
    http.headers["X-Session-Key"] = token
    return http


def edits(
    dossiers: dict[str, Path], http: httpx.Client, service: Service, samples: int
) -> tuple[list[float], list[float]]:
    """Seconds for an edit to reach the other side: ``samples`` each way, Sage → SSM then
    SSM → Sage, in dossiers picked at random."""
    pick = random.Random(7)
    ids = sorted(dossiers)
    connections = {i: sqlite3.connect(dossiers[i], timeout=30) for i in ids}
    try:
        to_ssm = []
        for n in range(samples):
            dossier_id = pick.choice(ids)
            conn = connections[dossier_id]
            codes = [c for (c,) in conn.execute("SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0")]
            code = pick.choice(codes)
            city = f"Ville {n} {time.time():.0f}"
            edit_city(conn, code, city)

            def in_ssm(ext_id: str = f"{dossier_id}:{code}", city: str = city) -> bool:
                return account(http, ext_id).get("city") == city

            to_ssm.append(wait_for(in_ssm, 120, 0.25))
            service.check_alive()
            time.sleep(pick.uniform(0.5, 7))  # edits come at any time, not in step with probes

        to_sage = []
        for n in range(samples):
            dossier_id = pick.choice(ids)
            conn = connections[dossier_id]
            prospects = [c for (c,) in conn.execute(
                "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Prospect = 1"
            )]  # fmt: skip
            code = pick.choice(prospects)
            ext_id = f"{dossier_id}:{code}"
            record_id = polled(lambda ext_id=ext_id: account(http, ext_id).get("id"), 30)
            phone = f"05 65 {n:02d} {int(time.time()) % 100:02d} 00"
            put(http, f"/accounts/{record_id}", {"phone": phone})

            def in_sage(
                conn: sqlite3.Connection = conn, code: str = code, phone: str = phone
            ) -> bool:
                row = conn.execute(
                    "SELECT CT_Telephone FROM F_COMPTET WHERE CT_Num = ?", (code,)
                ).fetchone()
                return bool(row) and row[0] == phone

            to_sage.append(wait_for(in_sage, 120, 0.1))
            service.check_alive()
            time.sleep(pick.uniform(0.5, 7))
    finally:
        for conn in connections.values():
            conn.close()
    return to_ssm, to_sage


def bench(n: int, args: argparse.Namespace, folder: Path) -> Row:
    """Every figure of one row: N dossiers of ``--clients`` clients, and their baseline."""
    dossiers = write_dossiers(folder / "dossiers", n, args.clients)
    baseline = FirstSync(0, 0, 0.0, {})
    if not args.skip_baseline:
        base = folder / "baseline"
        base.mkdir()
        demo_dossier(base / "base.db", n * args.clients, 0)
        with strict_simulator(base) as sim:
            baseline = first_sync(
                write_config(base, sim.url, {"base": base / "base.db"}, ENTITIES), sim, ["base"]
            )
            if sim.stats()["refusals"]:
                sys.exit(f"the simulator refused requests (baseline): {sim.stats()['reasons']}")
        print(f"{n} dossiers, baseline: {baseline}", file=sys.stderr)

    multi = folder / "multi"
    multi.mkdir()
    ids = sorted(dossiers)
    with strict_simulator(multi) as sim:
        config = write_config(multi, sim.url, dossiers, ENTITIES)
        first = first_sync(config, sim, ids)
        print(f"{n} dossiers, first sync: {first}", file=sys.stderr)
        service = Service(config)
        try:
            idle = idle_cost(config, ids, sim, service, args.idle)
            print(f"{n} dossiers, idle: {idle}", file=sys.stderr)
            http = ssm_session(sim.url)
            try:
                to_ssm, to_sage = edits(dossiers, http, service, args.samples)
            finally:
                http.close()
            rss = peak_rss_mb(service.pid)
        finally:
            status = service.stop()
        if status != 0:
            sys.exit(f"the service exited with status {status}:\n{service.tail()}")
        if sim.stats()["refusals"]:
            sys.exit(f"the simulator refused requests: {sim.stats()['reasons']}")
    return Row(n, first, baseline, idle, to_ssm, to_sage, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--clients", type=int, default=100, help="clients per dossier")
    parser.add_argument("--samples", type=int, default=10, help="edits each way")
    parser.add_argument("--idle", type=float, default=300, help="seconds of idle measurement")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="no baseline (its columns read 0): the service's figures of a row again",
    )
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="dossiersync-bench-multi-") as tmp:
        for n in args.dossiers:
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            rows.append(bench(n, args, folder))
            shutil.rmtree(folder)
    report(rows, args)


def report(rows: list[Row], args: argparse.Namespace) -> None:
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    print(f"command: {shlex.join([python, *sys.argv])}")
    print(
        f"N dossiers `dossiersync demo-dossier dNNN.db --clients {args.clients} --seed i` "
        f"(i = 0…N-1); baseline `dossiersync demo-dossier base.db --clients N×{args.clients}`; "
        f"default settings, simulator `--latency-ms 50 --rate-limit {TENANT_RATE}`; "
        f"idle {args.idle:.0f} s, {args.samples} edits each way\n"
    )
    print(
        "| dossiers | records | first sync requests | requests/record | baseline requests/record "
        "| ratio (≤ 1.5) | wall | pacing floor | wall/floor (≤ 1.2) | idle CPU | idle SSM req/min "
        "| idle runs journaled | Sage → SSM p50 / p95 | SSM → Sage p50 / p95 | peak RSS |"
    )
    print("|" + "---|" * 15)
    for row in rows:
        first, base = row.first, row.baseline
        print(
            f"| {row.dossiers} | {first.records:,} | {first.requests:,} | {first.per_record:.3f} "
            f"| {base.per_record:.3f} "
            f"| {first.per_record / base.per_record if base.records else 0:.2f} "
            f"| {first.wall:.1f} s | {first.floor:.1f} s | {first.wall / first.floor:.2f} "
            f"| {row.idle.cpu_percent:.1f} % | {row.idle.requests_per_minute:.1f} "
            f"| {row.idle.runs} | {spread(row.sage_to_ssm)} | {spread(row.ssm_to_sage)} "
            f"| {row.peak_rss_mb:.0f} MB |"
        )
    print("\n| baseline of | records | first sync requests | wall | pacing floor | wall/floor |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        base = row.baseline
        print(
            f"| {row.dossiers} dossiers | {base.records:,} | {base.requests:,} | {base.wall:.1f} s "
            f"| {base.floor:.1f} s | {base.wall / base.floor if base.requests else 0:.2f} |"
        )
    print(json.dumps([asdict(row) for row in rows]))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s / {percentile(values, 0.95):.1f} s"


if __name__ == "__main__":
    main()
