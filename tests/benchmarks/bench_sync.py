"""Benchmarks: first syncs of ``dossiersync sync`` against a strict simulator, side by side
with a minimal loader (``baseline.py``) that sends only the bulk creates a first sync needs.

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_sync.py``); every
file goes to one temporary directory, removed at the end. Per scenario:

- the dossiers are written by ``dossiersync demo-dossier`` (the README's commands for
  ``readme``);
- then, alternately, ``--repeat`` times: the baseline, then the connector, each against a
  fresh simulator started with ``--latency-ms 50 --rate-limit 20`` (its own SQLite file)
  and a fresh copy of the dossiers. The connector runs at its default settings: the
  configuration sets no ``max_requests_per_second``, ``max_concurrency``, ``page_size`` or
  ``batch_size``. Its dossiers are found with ``dossiers discover`` and selected with
  ``dossiers activate``, then ``dossiersync -vv sync --json`` is measured;
- wall time and peak RSS are those of the measured process (``os.wait4``: the kernel's
  ``ru_maxrss``, the figure ``/usr/bin/time -v`` prints as "Maximum resident set size");
  API requests and refusals are the difference of the simulator's ``/_simulator/stats``
  around the run; records synced come from ``sync --json`` (created + updated of the
  Sage -> SSM runs) and from the baseline's own count; the requests per entity kind come
  from the connector's request log (``-vv``).

Prints Markdown tables (medians over the repeats) for docs/benchmarks.md. Exits non-zero,
with the connector's error output, when a sync fails or the simulator counts a refusal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from dossiersync.plugins.sales_management.simulator.process import running_simulator

SIMULATOR = {"latency_ms": 50, "rate_limit": 20}
SIMULATOR_FLAGS = "--latency-ms 50 --rate-limit 20"
BASELINE = Path(__file__).with_name("baseline.py")
BIN = Path(sys.executable).parent
KEYS = {"SSM_PUBLIC_KEY": "demo-public", "SSM_PRIVATE_KEY": "demo-private"}
#: requests per synced record the connector aims at, by entity kind
TARGETS = {"accounts": 0.006, "contacts": 0.006, "products": 0.011}
#: SSM resources (lower case) -> the entity kind they are counted for
KINDS = {
    "accounts": "accounts",
    "contacts": "contacts",
    "productfamilies": "products",
    "products": "products",
    "salesorders": "orders",
    "salesorderslines": "orders",
    "salesorderstatuses": "orders",
}
#: entity names of ``sync --json`` -> entity kind
ENTITY_KINDS = {
    "clients": "accounts",
    "contacts": "contacts",
    "product_families": "products",
    "products": "products",
    "orders": "orders",
}
BASELINE_KINDS = {
    "accounts": "accounts",
    "contacts": "contacts",
    "productFamilies": "products",
    "products": "products",
    "salesorders": "orders",
}
REQUEST_LOG = re.compile(
    r"^(\S+ \S+) DEBUG dossiersync\.ssm (\w+) (/\S*) -> (\d+) in (\d+) ms", re.MULTILINE
)
PASS_LOG = re.compile(
    r"^(\S+ \S+) INFO dossiersync\.engine run (start|end) dossier=\S+ entity=(\S+) "
    r"direction=(\S+)",
    re.MULTILINE,
)
PACE = 20.0  # requests per second: the connector's default, and the simulator's limit


@dataclass(frozen=True)
class Scenario:
    title: str
    #: dossier id -> ``dossiersync demo-dossier`` options
    dossiers: dict[str, list[str]]
    entities: tuple[str, ...]
    #: dossier id -> name, as in the README's configuration
    names: dict[str, str] = field(default_factory=dict)


SCENARIOS = {
    "large": Scenario(
        title="one dossier: 5,000 clients, 7,500 contacts, 20,000 products",
        dossiers={
            "bench": "--clients 5000 --contacts 7500 --products 20000 --orders 0 --seed 1".split()
        },
        entities=("clients", "contacts", "products"),
    ),
    "readme": Scenario(
        title="README walkthrough: acme-fr (500 clients, seed 1) + acme-be (300 clients, seed 2)",
        dossiers={
            "acme-fr": "--clients 500 --seed 1".split(),
            "acme-be": "--clients 300 --seed 2".split(),
        },
        entities=("clients", "contacts", "products", "orders"),
        names={"acme-fr": "Acme France", "acme-be": "Acme Belgique"},
    ),
}


@dataclass
class Run:
    program: str  # "baseline" or "connector"
    wall: float
    rss_kb: int
    requests: int
    refusals: int
    throttled: int
    #: records created or updated, by entity kind
    records: Counter[str]
    #: requests by entity kind and call kind ("list", "bulk", "write", "get", ...)
    calls: Counter[tuple[str, str]]
    #: seconds during which at least one request was in flight (connector: from its log)
    in_flight: float | None = None
    #: per pass (entity, direction), summed over dossiers: seconds, requests, seconds with
    #: a request in flight (connector: from its log)
    passes: dict[str, list[float]] = field(default_factory=dict)

    @property
    def synced(self) -> int:
        return sum(self.records.values())

    @property
    def throughput(self) -> float:
        return self.synced / self.wall


class BenchFailure(SystemExit):
    pass


def dossiersync_command() -> list[str]:
    script = BIN / "dossiersync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dossiersync.cli"]


def environment() -> dict[str, str]:
    return dict(os.environ, **KEYS, PYTHONDONTWRITEBYTECODE="1")


def measured(command: list[str], cwd: Path, log: Path) -> tuple[int, float, int, str]:
    """Run ``command``; its exit code, wall time (s), peak RSS (kB) and standard output.

    Standard error goes to ``log``. The peak RSS is the kernel's ``ru_maxrss`` of the
    process (and of any process it waited for), as ``/usr/bin/time -v`` reports it.
    """
    out = log.with_suffix(".out")
    with out.open("wb") as stdout, log.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(), stdout=stdout, stderr=stderr
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage.ru_maxrss, out.read_text(encoding="utf-8")


def stats(url: str) -> dict[str, Any]:
    base = url.removesuffix("/api/v4")
    answer: dict[str, Any] = httpx.get(f"{base}/_simulator/stats", timeout=10).json()
    return answer


def config_text(scenario: Scenario, api_url: str, paths: dict[str, Path]) -> str:
    """The README's configuration, with this run's simulator and dossier paths."""
    lines = [
        "[implementation]",
        'name = "Acme group"',
        f'api_url = "{api_url}"',
        'public_key = "env:SSM_PUBLIC_KEY"',
        'private_key = "env:SSM_PRIVATE_KEY"',
        "",
        "[state]",
        'url = "sqlite:///dossiersync.db"',
    ]
    entities = ", ".join(f'"{e}"' for e in scenario.entities)
    for dossier, path in paths.items():
        lines += [
            "",
            f"[dossiers.{dossier}]",
            f'name = "{scenario.names.get(dossier, dossier)}"',
            f'connection = "DRIVER={{SQLite3}};Database={path}"',
            f"entities = [{entities}]",
        ]
    return "\n".join(lines) + "\n"


def copies(sources: dict[str, Path], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    paths = {}
    for dossier, source in sources.items():
        paths[dossier] = folder / source.name
        shutil.copyfile(source, paths[dossier])
    return paths


def checked(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    """Stop the benchmark when the simulator refused anything during the run."""
    if after["refusals"] != before["refusals"]:
        reasons = {
            reason: count - before["reasons"].get(reason, 0)
            for reason, count in after["reasons"].items()
            if count != before["reasons"].get(reason, 0)
        }
        raise BenchFailure(f"{what}: the simulator refused requests: {json.dumps(reasons)}")


def run_connector(scenario: Scenario, sources: dict[str, Path], folder: Path) -> Run:
    paths = copies(sources, folder)
    with running_simulator(str(folder / "ssm.sqlite"), **SIMULATOR, **_keys()) as sim:
        config = folder / "dossiersync.toml"
        config.write_text(config_text(scenario, sim.url, paths), encoding="utf-8")
        command = dossiersync_command()
        for step in (["dossiers", "discover"], ["dossiers", "activate", *paths]):
            subprocess.run(
                [*command, "--config", str(config), *step],
                cwd=folder,
                env=environment(),
                check=True,
                capture_output=True,
            )
        before = stats(sim.url)
        sync = [*command, "-vv", "--config", str(config), "sync", "--json"]
        code, wall, rss, output = measured(sync, folder, folder / "sync.log")
        after = stats(sim.url)
    log = (folder / "sync.log").read_text(encoding="utf-8", errors="replace")
    if code != 0:
        tail = "\n".join(
            line for line in log.splitlines() if " DEBUG " not in line and line.strip()
        )[-4000:]
        raise BenchFailure(
            f"connector: dossiersync sync exited with {code}\n--- stdout ---\n{output[-4000:]}"
            f"\n--- stderr (without DEBUG lines) ---\n{tail}"
        )
    records: Counter[str] = Counter()
    for dossier in json.loads(output):
        for r in dossier["runs"]:
            if r["direction"] == "sage_to_ssm":
                kind = ENTITY_KINDS.get(r["entity"], r["entity"])
                records[kind] += r["counts"]["created"] + r["counts"]["updated"]
    calls: Counter[tuple[str, str]] = Counter()
    throttled = 0
    spans = []
    for stamp, method, path, status, ms in REQUEST_LOG.findall(log):
        calls[call_kind(method, path)] += 1
        throttled += status == "429"
        spans.append((moment(stamp) - int(ms) / 1000, moment(stamp)))
    passes: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    for stamp, event, entity, direction in PASS_LOG.findall(log):
        name = f"{entity} {direction.replace('_to_', ' → ').replace('ssm', 'SSM')}"
        name = name.replace("sage", "Sage")
        if event == "start":
            started[name] = moment(stamp)
            continue
        a, b = started.pop(name), moment(stamp)
        inside = [(max(s, a), min(e, b)) for s, e in spans if s < b and e > a]
        totals = passes.setdefault(name, [0.0, 0.0, 0.0])
        totals[0] += b - a
        totals[1] += sum(1 for s, e in spans if a <= (s + e) / 2 <= b)
        totals[2] += covered(inside)
    run = Run(
        "connector",
        wall,
        rss,
        after["requests"] - before["requests"],
        after["refusals"] - before["refusals"],
        throttled,
        records,
        calls,
        covered(spans),
        passes,
    )
    checked(before, after, "connector")
    return run


def moment(stamp: str) -> float:
    """Seconds of a log line's time stamp (``2026-12-01 04:55:46,306``)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the ``(start, end)`` spans."""
    total, start, end = 0.0, None, 0.0
    for a, b in sorted(spans):
        if start is None or a > end:
            total += end - start if start is not None else 0.0
            start, end = a, b
        else:
            end = max(end, b)
    return total + (end - start if start is not None else 0.0)


def call_kind(method: str, path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    resource = parts[0].lower()
    kind = KINDS.get(resource, resource)
    if len(parts) > 1 and parts[1] == "bulk":
        return kind, "bulk"
    if method == "GET":
        return kind, "list" if len(parts) == 1 else "get"
    return kind, "write"


def run_baseline(scenario: Scenario, sources: dict[str, Path], folder: Path) -> Run:
    paths = copies(sources, folder)
    with running_simulator(str(folder / "ssm.sqlite"), **SIMULATOR, **_keys()) as sim:
        command = [sys.executable, str(BASELINE), "--api-url", sim.url]
        if "orders" in scenario.entities:
            command.append("--orders")
        command += [f"{dossier}={path}" for dossier, path in paths.items()]
        before = stats(sim.url)
        code, wall, rss, output = measured(command, folder, folder / "baseline.log")
        after = stats(sim.url)
    if code != 0:
        error = (folder / "baseline.log").read_text(encoding="utf-8", errors="replace")
        raise BenchFailure(f"baseline exited with {code}:\n{error[-4000:]}")
    answer = json.loads(output)
    records: Counter[str] = Counter()
    for resource, count in answer["created"].items():
        if resource in BASELINE_KINDS:
            records[BASELINE_KINDS[resource]] += count
    calls: Counter[tuple[str, str]] = Counter()
    for name, count in answer["requests"].items():
        resource, kind = name.split()
        calls[(KINDS.get(resource.lower(), resource.lower()), kind)] += count
    run = Run(
        "baseline",
        wall,
        rss,
        after["requests"] - before["requests"],
        after["refusals"] - before["refusals"],
        answer["throttled"],
        records,
        calls,
    )
    checked(before, after, "baseline")
    return run


def _keys() -> dict[str, str]:
    return {"public_key": KEYS["SSM_PUBLIC_KEY"], "private_key": KEYS["SSM_PRIVATE_KEY"]}


def write_dossiers(scenario: Scenario, folder: Path) -> tuple[dict[str, Path], list[str]]:
    folder.mkdir(parents=True)
    paths, summaries = {}, []
    for dossier, options in scenario.dossiers.items():
        paths[dossier] = folder / f"{dossier}.db"
        done = subprocess.run(
            [*dossiersync_command(), "demo-dossier", str(paths[dossier]), *options],
            env=environment(),
            check=True,
            capture_output=True,
            text=True,
        )
        summary = done.stdout.strip().split(": ", 1)[-1]
        summaries.append(f"`dossiersync demo-dossier {dossier}.db {' '.join(options)}`: {summary}")
    return paths, summaries


def code_version() -> str:
    """The commit measured, and a digest of uncommitted changes to the connector's code."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, check=True
        )
        return done.stdout.decode(errors="replace").strip()

    try:
        version = git("rev-parse", "--short=10", "HEAD")
        diff = git("diff", "HEAD", "--", ":/core", ":/plugins", ":/entities", ":/schemas")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if diff:
        digest = hashlib.sha1(diff.encode(), usedforsecurity=False).hexdigest()[:10]
        version += f" + uncommitted changes to the connector (diff {digest})"
    return version


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], unit: str = "s") -> str:
    return f"{median(values):.1f} {unit} ({min(values):.1f}–{max(values):.1f})"


def report(name: str, scenario: Scenario, summaries: list[str], runs: list[Run]) -> list[str]:
    connector = [r for r in runs if r.program == "connector"]
    baseline = [r for r in runs if r.program == "baseline"]
    lines = [f"### {name}: {scenario.title}", ""]
    lines += [f"- {s}" for s in summaries]
    lines += [
        f"- entities: {', '.join(scenario.entities)}; {len(connector)} run(s) of each program, "
        "alternating baseline, connector; medians, (min–max) of the wall time",
        "",
        "| program | records synced | wall time | records/s | peak RSS | API requests "
        f"| pacing floor (requests / {PACE:.0f} per s) | refusals | 429 answers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, group in (("`dossiersync sync`", connector), ("`baseline.py`", baseline)):
        requests = median([r.requests for r in group])
        lines.append(
            f"| {label} | {group[0].synced:,} | {spread([r.wall for r in group])} "
            f"| {median([r.throughput for r in group]):,.0f} "
            f"| {median([r.rss_kb / 1024 for r in group]):.1f} MB "
            f"| {requests:,.0f} | {requests / PACE:.1f} s "
            f"| {sum(r.refusals for r in group)} "
            f"| {' / '.join(str(r.throttled) for r in group)} |"
        )
    ratio = median([r.throughput for r in connector]) / median([r.throughput for r in baseline])
    pairs = [c.throughput / b.throughput for b, c in zip(baseline, connector, strict=True)]
    busy = median([r.in_flight or 0.0 for r in connector])
    lines += [
        "",
        f"Connector throughput / baseline throughput: **{ratio:.0%}** (median over median; "
        f"run pairs: {', '.join(f'{p:.0%}' for p in pairs)}; target ≥ 90 %). "
        f"`dossiersync sync` had at least one request in flight during {busy:.1f} s of its "
        f"{median([r.wall for r in connector]):.1f} s (medians).",
        "",
        "| entity kind | records synced | connector requests (list + get + bulk + write) "
        "| connector requests / record | target | baseline requests (incl. 429 retries) "
        "| baseline requests / record |",
        "|---|---|---|---|---|---|---|",
    ]
    sample, base = connector[len(connector) // 2], baseline[len(baseline) // 2]
    kinds = [k for k in ("accounts", "contacts", "products", "orders") if sample.records[k]]
    for kind in kinds:
        split = {c: sample.calls[(kind, c)] for c in ("list", "get", "bulk", "write")}
        total = sum(split.values())
        base_total = sum(n for (k, _), n in base.calls.items() if k == kind)
        target = TARGETS.get(kind)
        lines.append(
            f"| {kind} | {sample.records[kind]:,} "
            f"| {total:,} ({' + '.join(str(n) for n in split.values())}) "
            f"| {total / sample.records[kind]:.4f} "
            f"| {f'≤ {target}' if target else '–'} "
            f"| {base_total:,} | {base_total / base.records[kind]:.4f} |"
        )
    others = {f"{k} {c}": n for (k, c), n in sample.calls.items() if k not in kinds}
    if others:
        lines += ["", "Other requests: " + ", ".join(f"{k} {n}" for k, n in others.items())]
    lines += [
        "",
        f"Where the time of `dossiersync sync` went in run {len(connector) // 2 + 1} of "
        f"{len(connector)} ({sample.wall:.1f} s; passes summed over dossiers):",
        "",
        "| pass | time | requests | a request in flight | none in flight |",
        "|---|---|---|---|---|",
    ]
    for name, (seconds, requests, busy_s) in sample.passes.items():
        lines.append(
            f"| {name} | {seconds:.1f} s | {requests:.0f} | {busy_s:.1f} s "
            f"| {seconds - busy_s:.1f} s |"
        )
    outside = sample.wall - sum(p[0] for p in sample.passes.values())
    lines.append(f"| outside the passes (start-up, login, exit) | {outside:.1f} s | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", default=list(SCENARIOS), help=f"of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each program, alternating (default 3)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    version = code_version()
    out = [
        f"## {date.today().isoformat()}",
        "",
        f"Simulator: `{SIMULATOR_FLAGS}` (a fresh one per run); connector at its default "
        "settings; `.venv/bin/python tests/benchmarks/bench_sync.py "
        f"{' '.join(args.scenarios)} --repeat {args.repeat}`; code: `{version}`.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="dossiersync-bench-") as tmp:
        # nothing outside the temporary directory: not even the entry-point cache
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            root = Path(tmp) / name
            sources, summaries = write_dossiers(scenario, root / "dossiers")
            runs: list[Run] = []
            for n in range(args.repeat):
                for program, runner in (("baseline", run_baseline), ("connector", run_connector)):
                    run = runner(scenario, sources, root / f"{program}-{n + 1}")
                    runs.append(run)
                    print(
                        f"{name} {program} {n + 1}/{args.repeat}: {run.wall:.1f} s, "
                        f"{run.synced:,} records, {run.requests} requests, "
                        f"{run.throttled} answered 429, {run.rss_kb / 1024:.1f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
            out += report(name, scenario, summaries, runs) + [""]
    if code_version() != version:
        out += [f"**The code changed during the benchmark** (now `{code_version()}`).", ""]
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    main()
