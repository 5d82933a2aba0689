"""Print the fault-injection figures of docs/reliability.md.

    .venv/bin/python tests/faults/report.py            # 5 % and 20 %, seeds 1 to 3
    .venv/bin/python tests/faults/report.py --rates 0.2 --seeds 1 2 --attempts 5

(``make faults`` runs the first.) For each fault rate and seed, the scenario of the
fault-injection tests (``tests/faults/scenario.py``: two demo dossiers, all four
entities, through the seeded fault proxy) is run until a ``sync`` exits 0, at most
``--attempts`` times; then orders are entered in SSM and synced the same way. The
dossiers synced without faults give the records expected.
Prints a Markdown table; exits 1 when a run did not converge or lost or doubled a record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: faults, support

from faults.scenario import DOSSIERS, Figures, run  # noqa: E402


def row(f: Figures) -> str:
    injected = sum(v for k, v in f.faults.items() if k != "requests")
    incidents = ", ".join(f"{k} {n}" for k, n in sorted(f.incidents.items())) or "none"
    codes = " ".join(str(c) for c in f.exit_codes)
    then = " ".join(str(c) for c in f.ssm_exit_codes) or "-"
    return (
        f"| {f.rate:.0%} | {f.seed} | {f.faults['requests']} | {injected} | {codes} | {then} | "
        f"{'yes' if f.converged else 'no'} | {f.duplicates} | {f.missing} | {f.extra} | "
        f"{f.ssm_orders_in_sage}/{f.ssm_orders} | {incidents} | {f.seconds:.0f} s |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--attempts", type=int, default=5)
    args = parser.parse_args()
    sizes = "; ".join(
        f"{d}: " + ", ".join(f"{k} {v}" for k, v in c.items() if k != "seed")
        for d, c in DOSSIERS.items()
    )
    print(f"Dossiers (demo generator): {sizes}\n")
    print(
        "| faults | seed | API requests | faults injected | exit codes, first sync | "
        "exit codes, SSM orders | converged | duplicates | missing | unexpected | "
        "SSM orders in Sage | incidents | time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    bad = False
    for rate in args.rates:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="dossiersync-faults-") as folder:
                figures = run(Path(folder), rate=rate, seed=seed, attempts=args.attempts)
            print(row(figures), flush=True)
            bad |= not figures.converged or bool(figures.duplicates or figures.missing)
    print(f"\nexpected records per run: {figures.expected} (extIds in SSM, order lines included)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
