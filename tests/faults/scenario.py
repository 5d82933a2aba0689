"""The fault scenario: two demo dossiers with all four entities synced through the fault
proxy, attempt after attempt, then compared with the same dossiers synced without faults.

Used by the fault-injection tests and by ``report.py``, which prints the figures of
docs/reliability.md.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dossiersync.plugins.sales_management.simulator.process import (
    SimulatorProcess,
    running_simulator,
)

from faults.proxy import FaultProxy
from support.workspace import Workspace

ENTITIES = ("clients", "contacts", "products", "orders")
#: dossier id -> demo generator counts (seeded): small enough for CI, every kind of write
DOSSIERS: dict[str, dict[str, int]] = {
    "nord": {"clients": 40, "contacts": 50, "products": 30, "orders": 12, "seed": 11},
    "sud": {"clients": 30, "contacts": 40, "products": 24, "orders": 10, "seed": 12},
}
#: resources whose records carry the dossier's extIds
RESOURCES = ("accounts", "contacts", "productFamilies", "products", "salesorders")
LINES = "salesOrdersLines"
#: the client under faults: a short timeout (the proxy holds answers past it) and a
#: retry budget that rides out 20 % of failing requests
CLIENT_TIMEOUT = 3.0
MAX_RETRIES = 8
#: orders entered in SSM per dossier once the first sync converged
SSM_ORDERS = 6


class FaultWorkspace(Workspace):
    """A workspace whose connector talks to the API through ``api_url`` (the proxy); the
    test's own reads go to the simulator directly."""

    api_url: str | None = None

    def write_config(self) -> None:
        super().write_config()
        if self.api_url is None:
            return
        text = self.config_path.read_text(encoding="utf-8")
        text = text.replace(f'api_url = "{self.simulator.url}"', f'api_url = "{self.api_url}"')
        text = text.replace(
            "max_retries = 3\n",
            f"max_retries = {MAX_RETRIES}\ntimeout_seconds = {CLIENT_TIMEOUT}\n",
        )
        self.config_path.write_text(text, encoding="utf-8")


@dataclass
class Figures:
    """What one scenario gave."""

    rate: float
    seed: int
    #: exit code of each ``sync`` attempt, until the first that exits 0
    exit_codes: list[int] = field(default_factory=list)
    #: extIds held more than once in SSM (live records)
    duplicates: int = 0
    #: extIds the fault-free sync gives that SSM does not hold
    missing: int = 0
    #: extIds SSM holds that the fault-free sync does not give
    extra: int = 0
    #: records expected (extIds of the fault-free sync)
    expected: int = 0
    #: incidents opened, by kind (all of them, open or resolved)
    incidents: Counter[str] = field(default_factory=Counter)
    #: what the proxy did, by fault (and ``requests``)
    faults: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    #: the simulator's refusals of malformed requests (must be 0)
    refusals: int = 0
    #: exit code of each ``sync`` attempt after orders were entered in SSM
    ssm_exit_codes: list[int] = field(default_factory=list)
    #: orders entered in SSM, and how many of them Sage holds
    ssm_orders: int = 0
    ssm_orders_in_sage: int = 0

    @property
    def attempts(self) -> int:
        return len(self.exit_codes)

    @property
    def converged(self) -> bool:
        done = bool(self.exit_codes) and self.exit_codes[-1] == 0
        return done and (not self.ssm_orders or self.ssm_exit_codes[-1:] == [0])


def make_dossiers(ws: Workspace) -> None:
    for dossier_id, counts in DOSSIERS.items():
        options = dict(counts)
        seed = options.pop("seed")
        clients = options.pop("clients")
        ws.add_dossier(dossier_id, clients=clients, seed=seed, entities=ENTITIES, **options)


def ext_ids(ws: Workspace) -> Counter[str]:
    """Every live record of the dossiers in SSM, by extId (lines included)."""
    held: Counter[str] = Counter()
    for resource in (*RESOURCES, LINES):
        for dossier_id in DOSSIERS:
            for record in ws.records(resource, dossier_id):
                held[f"{resource}/{record['extId']}"] += 1
    return held


def with_keys(simulator: SimulatorProcess) -> None:
    os.environ["SSM_PUBLIC_KEY"] = simulator.public_key
    os.environ["SSM_PRIVATE_KEY"] = simulator.private_key


def reference(root: Path, bulk_answer: str = "status") -> Counter[str]:
    """What SSM holds after the same dossiers are synced without faults."""
    root.mkdir(parents=True, exist_ok=True)
    with running_simulator(str(root / "ssm.sqlite"), bulk_answer=bulk_answer) as sim:
        with_keys(sim)
        ws = Workspace(root, sim)
        make_dossiers(ws)
        ws.activate_all()
        ws.sync()
        return ext_ids(ws)


def enter_ssm_orders(ws: Workspace, count: int) -> dict[str, list[str]]:
    """``count`` orders entered in SSM (not through the proxy) for each dossier's clients,
    two lines each; their references by dossier."""
    entered: dict[str, list[str]] = {}
    for dossier_id in DOSSIERS:
        accounts = sorted(
            (a for a in ws.records("accounts", dossier_id) if a.get("readOnly")),
            key=lambda a: int(a["id"]),
        )
        products = sorted(
            (p for p in ws.records("products", dossier_id) if p.get("price")),
            key=lambda p: int(p["id"]),
        )
        for n in range(count):
            reference = f"WEB-{dossier_id}-{n:03d}"
            order = ws.ssm_post(
                "salesorders",
                {
                    "branchId": 1,
                    "salesRepId": 1,
                    "reference": reference,
                    "accountId": accounts[n % len(accounts)]["id"],
                    "date": "2026-03-14",
                },
            )
            for k in range(2):
                product = products[(n * 2 + k) % len(products)]
                line = {"salesOrderId": order, "productId": product["id"], "quantity": k + 1}
                ws.ssm_post("salesOrdersLines", {**line, "price": product["price"]})
            entered.setdefault(dossier_id, []).append(reference)
    return entered


def run(
    root: Path,
    *,
    rate: float,
    seed: int,
    attempts: int,
    ssm_orders: int = SSM_ORDERS,
    bulk_answer: str = "status",
) -> Figures:
    """Sync the dossiers through the fault proxy until one attempt exits 0 (at most
    ``attempts``); then enter ``ssm_orders`` orders per dossier in SSM and sync again
    the same way; then count duplicates and what is missing against the reference (and,
    for the orders entered in SSM, in Sage). ``bulk_answer`` is the simulator's shape of
    bulk item answers."""
    figures = Figures(rate=rate, seed=seed)
    expected = reference(root / "reference", bulk_answer)
    figures.expected = sum(expected.values())
    faulty = root / "faults"
    faulty.mkdir(parents=True, exist_ok=True)
    with running_simulator(str(faulty / "ssm.sqlite"), bulk_answer=bulk_answer) as sim:
        with_keys(sim)
        with FaultProxy(sim.url, rate=rate, seed=seed, hold_seconds=CLIENT_TIMEOUT + 0.5) as proxy:
            ws = FaultWorkspace(faulty, sim)
            ws.api_url = proxy.url
            make_dossiers(ws)
            ws.activate_all()
            started = time.monotonic()
            for _ in range(attempts):
                result = ws.cli("sync", "--json", expect=None)
                figures.exit_codes.append(result.exit_code)
                if result.exit_code == 0:
                    break
            # orders entered in SSM meanwhile go to Sage through the faults too
            entered = enter_ssm_orders(ws, ssm_orders) if ssm_orders else {}
            for _ in range(attempts if entered else 0):
                result = ws.cli("sync", "--json", expect=None)
                figures.ssm_exit_codes.append(result.exit_code)
                if result.exit_code == 0:
                    break
            figures.seconds = time.monotonic() - started
            figures.faults = Counter(proxy.counts)
        for dossier_id, references in entered.items():
            sql = "SELECT DO_Ref FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1"
            documents = Counter(str(row[0]) for row in ws.sage_rows(dossier_id, sql))
            figures.ssm_orders += len(references)
            figures.ssm_orders_in_sage += sum(1 for r in references if documents[r] >= 1)
            figures.duplicates += sum(documents[r] - 1 for r in references if documents[r] > 1)
        held = ext_ids(ws)
        # the orders entered in SSM got extIds (theirs and their lines'): not unexpected
        references = {r for refs in entered.values() for r in refs}
        born = tuple(
            f"/{order['extId']}"
            for order in ws.records("salesorders")
            if order.get("reference") in references and order.get("extId")
        )
        figures.duplicates += sum(n - 1 for n in held.values() if n > 1)
        figures.missing = sum(1 for e in expected if e not in held)
        figures.extra = sum(
            1
            for e in held
            if e not in expected and not any(e.endswith(b) or b + ":" in e for b in born)
        )
        incidents: list[dict[str, Any]] = ws.cli_json("incidents")
        figures.incidents = Counter(str(i["kind"]) for i in incidents)
        figures.refusals = int(sim.stats()["refusals"])
    return figures
