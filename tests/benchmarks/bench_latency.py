"""Benchmark: how fast a change reaches the other side under ``dossiersync run``, and what
an idle dossier costs — measured from outside the process, at default settings.

Run with ``make bench-latency`` (or ``.venv/bin/python tests/benchmarks/bench_latency.py``).
In one temporary directory, removed at the end:

1. a simulator with ``--latency-ms 50 --rate-limit 20``; one dossier written by
   ``dossiersync demo-dossier`` (clients, contacts, products, orders: four entities);
   a configuration that sets nothing but the API keys, the state file and the dossier;
2. ``dossiers activate``, then ``dossiersync run --no-web`` as a process; the benchmark
   waits for the first complete pass to end;
3. **idle cost**: the simulator's request count and the service's Sage probe count
   (``status --json``, written by the service every 10 s) over ``--idle`` seconds with
   nothing changing, per minute, and the Sage queries they make (one per probe: every
   watched table's mark and count in one statement);
4. **Sage → SSM**: ``--samples`` times, one client's city is changed in the dossier file
   (its modification time set, as Sage does), and SSM is polled (4 times a second, a
   ``GET`` by extId) until the account shows it: the time from the write to the first
   poll that sees it; the edits are spaced by random gaps of 0.5–7 s (seeded), as edits
   come at any time, not in step with the probes;
5. **SSM → Sage**: ``--samples`` times, a prospect's phone is changed through the API and
   the dossier file is polled (10 times a second) until the row shows it;
6. with ``--during-complete N``: ``dossiers deactivate`` then ``activate``, so that the
   service runs the dossier's complete pass (a realignment: every record sent again),
   and while it runs, N clients already in SSM are edited in Sage, 1–3 s apart, each
   timed as in 4 (how many were made while the pass still ran is said).

``--entities`` (default the four) sets the dossier's entities: ``--clients 100000
--entities clients`` is the large dossier of one entity.

Prints a Markdown table for docs/benchmarks.md (p50 and p95 of each direction, idle
requests and Sage queries per minute). Exits non-zero if the service fails or the
simulator counts a refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from dossiersync.plugins.sales_management.simulator.process import running_simulator

BIN = Path(sys.executable).parent
KEYS = {"SSM_PUBLIC_KEY": "bench-public", "SSM_PRIVATE_KEY": "bench-private"}
#: Sage queries of one probe of the four entities: the MAX and COUNT of F_COMPTET
#: (clients), F_CONTACTT (contacts), F_FAMILLE (families), F_ARTICLE and F_ARTSTOCK
#: (products), F_DOCENTETE and F_DOCLIGNE (orders), all in one statement (``marks``)
QUERIES_PER_PROBE = 1


def cli(config: Path, *args: str) -> Any:
    done = subprocess.run(
        [str(BIN / "dossiersync"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **KEYS},
        timeout=1800,
    )
    if done.returncode != 0:
        sys.exit(f"dossiersync {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout) if "--json" in args else done.stdout


def strict_simulator(root: Path) -> Any:
    """The simulator as the benchmarks use it: 50 ms a request, 20 requests a second,
    its database in ``root`` (a context manager)."""
    return running_simulator(
        str(root / "ssm.sqlite"),
        latency_ms=50,
        rate_limit=20,
        public_key=KEYS["SSM_PUBLIC_KEY"],
        private_key=KEYS["SSM_PRIVATE_KEY"],
    )


def write_config(
    root: Path,
    api_url: str,
    dossier: Path | Mapping[str, Path],
    entities: list[str],
    branch_id: int | None = None,
) -> Path:
    """A configuration that sets nothing but the API, its keys (from the environment), the
    state file and the dossiers — one file (dossier ``nord``), or several by id — each
    with ``entities``: every other setting is the default."""
    dossiers = {"nord": dossier} if isinstance(dossier, Path) else dossier
    lines = [
        "[implementation]",
        'name = "Bench"',
        f'api_url = "{api_url}"',
        'public_key = "env:SSM_PUBLIC_KEY"',
        'private_key = "env:SSM_PRIVATE_KEY"',
        "[state]",
        f'url = "sqlite:///{root / "state.db"}"',
    ]
    for dossier_id, path in dossiers.items():
        lines += [
            f"[dossiers.{dossier_id}]",
            f'name = "Dossier {dossier_id}"',
            f'connection = "DRIVER={{SQLite3}};Database={path}"',
            "entities = [" + ", ".join(f'"{e}"' for e in entities) + "]",
        ]
        if branch_id is not None:
            lines.append(f"branch_id = {branch_id}")
    config = root / "dossiersync.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def account(http: httpx.Client, ext_id: str) -> dict[str, Any]:
    """The SSM account of this extId; empty if none, or if the tenant answered 429 (the
    polls share its rate with the service)."""
    answer = http.get("/accounts", params={"where": f"extId = '{ext_id}'"})
    if answer.status_code == 429:
        return {}
    answer.raise_for_status()
    found = answer.json()
    return dict(found[0]) if found else {}


def put(http: httpx.Client, path: str, body: dict[str, Any]) -> None:
    """A ``PUT``, sent again after a 429 (the tenant's rate is shared with the service)."""
    for _ in range(30):
        answer = http.put(path, json=body)
        if answer.status_code != 429:
            answer.raise_for_status()
            return
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    sys.exit(f"PUT {path}: still 429 after 30 tries")


def edit_city(conn: sqlite3.Connection, code: str, city: str) -> None:
    """A client's city changed in the dossier file, its modification time set, as Sage
    does."""
    with conn:
        conn.execute(
            "UPDATE F_COMPTET SET CT_Ville = ?, "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
            (city, code),
        )


def polled(value: Any, timeout: float = 60, step: float = 0.25) -> Any:
    """The first value ``value()`` gives that is not empty (polled every ``step``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = value()
        if found:
            return found
        time.sleep(step)
    raise SystemExit(f"timed out after {timeout} s")


def wait_for(condition: Any, timeout: float, step: float) -> float:
    """Seconds until ``condition()`` is true (polled every ``step``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    raise SystemExit(f"timed out after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle measurement")
    parser.add_argument(
        "--entities", nargs="+", default=["clients", "contacts", "products", "orders"]
    )
    parser.add_argument(
        "--during-complete",
        type=int,
        default=0,
        metavar="N",
        help="then N Sage edits while the dossier's complete pass after a reactivation runs",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dossiersync-bench-latency-") as folder:
        root = Path(folder)
        dossier = root / "nord.db"
        subprocess.run(
            [
                str(BIN / "dossiersync"),
                "demo-dossier",
                str(dossier),
                "--clients",
                str(args.clients),
            ],
            check=True,
            capture_output=True,
        )
        with strict_simulator(root) as sim:
            config = write_config(root, sim.url, dossier, args.entities, branch_id=1)
            cli(config, "dossiers", "activate", "nord")
            service = subprocess.Popen(
                [str(BIN / "dossiersync"), "--config", str(config), "run", "--no-web"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **KEYS},
            )
            http = httpx.Client(base_url=sim.url, timeout=30)
            token = http.post(
                "/login",
                json={"username": KEYS["SSM_PUBLIC_KEY"], "password": KEYS["SSM_PRIVATE_KEY"]},
            ).json()["token"]
            http.headers["X-Session-Key"] = token
            try:
                figures = measure(config, dossier, sim, http, args)
            finally:
                service.send_signal(signal.SIGTERM)
                # it stops between two passes: a pass of 100,000 records takes minutes
                _out, err = service.communicate(timeout=900)
            if service.returncode != 0:
                sys.exit(f"the service failed:\n{err}")
            stats = sim.stats()
            if stats["refusals"]:
                sys.exit(f"the simulator refused requests: {stats['reasons']}")
    report(figures, args)


def measure(
    config: Path, dossier: Path, sim: Any, http: httpx.Client, args: argparse.Namespace
) -> dict[str, Any]:
    def first_pass_done() -> bool:
        runs = cli(config, "journal", "--dossier", "nord", "--json", "--limit", "50")
        done = {(r["entity"], r["direction"]) for r in runs if r["outcome"] != "running"}
        # each entity both ways; products: families and products one way each
        return len(done) >= 2 * len(args.entities) - ("products" in args.entities)

    started = time.monotonic()
    wait_for(first_pass_done, 1800, 1.0)
    first_pass = time.monotonic() - started
    time.sleep(5)  # the echo of the first pass settles

    def sage_probes() -> int:
        status = cli(config, "status", "--dossier", "nord", "--json")[0]
        return int(status["changes"]["sage"]["probes"])

    requests_before = sim.stats()["requests"]
    probes_before = sage_probes()
    time.sleep(args.idle)
    requests_after = sim.stats()["requests"]
    probes_after = sage_probes()  # written by the service every minute
    minutes = args.idle / 60
    probes_per_minute = (probes_after - probes_before) / minutes
    idle = {
        "ssm_requests_per_minute": round((requests_after - requests_before) / minutes, 1),
        "sage_probes_per_minute": round(probes_per_minute, 1),
        "sage_queries_per_minute": round(probes_per_minute * QUERIES_PER_PROBE),
    }

    pause = random.Random(42)  # the same gaps on every run
    conn = sqlite3.connect(dossier, timeout=30)
    codes = [r[0] for r in conn.execute("SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0")]
    prospects = [c for (c,) in conn.execute(
        "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Prospect = 1"
    )]  # fmt: skip

    def nord(code: str) -> dict[str, Any]:
        return account(http, f"nord:{code}")

    to_ssm = []
    for n in range(args.samples):
        code = codes[(n * 7) % len(codes)]
        city = f"Ville {n} {time.time():.0f}"
        edit_city(conn, code, city)

        def in_ssm(code: str = code, city: str = city) -> bool:
            return nord(code).get("city") == city

        to_ssm.append(wait_for(in_ssm, 120, 0.25))
        time.sleep(pause.uniform(0.5, 7))  # edits come at any time, not in step with probes

    to_sage = []
    for n in range(args.samples):
        code = prospects[n % len(prospects)]
        record_id = polled(lambda code=code: nord(code).get("id"))
        phone = f"05 65 {n:02d} {int(time.time()) % 100:02d} 00"
        put(http, f"/accounts/{record_id}", {"phone": phone})

        def in_sage(code: str = code, phone: str = phone) -> bool:
            row = conn.execute(
                "SELECT CT_Telephone FROM F_COMPTET WHERE CT_Num = ?", (code,)
            ).fetchone()
            return bool(row) and row[0] == phone

        to_sage.append(wait_for(in_sage, 120, 0.1))
        time.sleep(pause.uniform(0.5, 7))
    during = edits_during_complete(config, conn, codes, nord, args.during_complete, pause)
    conn.close()
    return {"first_pass_seconds": round(first_pass, 1), "idle": idle, "sage_to_ssm": to_ssm,
            "ssm_to_sage": to_sage, "during_complete": during}  # fmt: skip


def edits_during_complete(
    config: Path,
    conn: sqlite3.Connection,
    codes: list[str],
    nord: Any,
    samples: int,
    pause: random.Random,
) -> dict[str, Any]:
    """``dossiers deactivate`` then ``activate``: the service runs the dossier's complete
    pass (a realignment, every record sent again). While it runs, ``samples`` clients
    already in SSM are edited in Sage, 1–3 s apart, each timed until SSM shows it."""
    if not samples:
        return {}

    def running() -> bool:
        runs = cli(config, "journal", "--dossier", "nord", "--json", "--limit", "5")
        return any(r["outcome"] == "running" and r["trigger"] == "reactivation" for r in runs)

    cli(config, "dossiers", "deactivate", "nord")
    cli(config, "dossiers", "activate", "nord")
    wait_for(running, 120, 0.2)
    seconds, during = [], 0
    for n in range(samples):
        code = codes[(n * 7919) % len(codes)]
        city = f"Pendant {n} {time.time():.0f}"
        still = running()
        edit_city(conn, code, city)
        during += still

        def in_ssm(code: str = code, city: str = city) -> bool:
            return nord(code).get("city") == city

        seconds.append(wait_for(in_ssm, 300, 0.25))
        time.sleep(pause.uniform(1, 3))
    wait_for(lambda: not running(), 1800, 1.0)
    runs = cli(config, "journal", "--dossier", "nord", "--json", "--limit", "20")
    realigned = [r for r in runs if r["trigger"] == "reactivation"]
    first = min(datetime.fromisoformat(r["started_at"]) for r in realigned)
    last = max(datetime.fromisoformat(r["finished_at"]) for r in realigned)
    return {"seconds": seconds, "made_during_the_pass": during,
            "pass_seconds": round((last - first).total_seconds(), 1)}  # fmt: skip


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"clients {args.clients}, {args.samples} samples a direction, idle {args.idle:.0f} s")
    print(f"first complete pass: {figures['first_pass_seconds']} s\n")
    print("| direction | p50 | p95 | max |")
    print("|---|---|---|---|")
    for name, label in (("sage_to_ssm", "Sage edit → SSM"), ("ssm_to_sage", "SSM edit → Sage")):
        values = figures[name]
        print(
            f"| {label} | {statistics.median(values):.1f} s | {percentile(values, 0.95):.1f} s "
            f"| {max(values):.1f} s |"
        )
    during = figures["during_complete"]
    if during:
        values = during["seconds"]
        print(
            f"| Sage edit → SSM during a complete pass ({during['made_during_the_pass']} of "
            f"{len(values)} made while it ran; it took {during['pass_seconds']} s) "
            f"| {statistics.median(values):.1f} s | {percentile(values, 0.95):.1f} s "
            f"| {max(values):.1f} s |"
        )
    idle = figures["idle"]
    print(
        f"\nidle: {idle['ssm_requests_per_minute']} SSM requests/min, "
        f"{idle['sage_probes_per_minute']} Sage probes/min "
        f"(at most {idle['sage_queries_per_minute']} queries/min: a file unchanged needs none)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
