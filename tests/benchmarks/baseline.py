"""The baseline of the benchmarks: the least a loader has to send for a first sync.

A minimal, throw-away loader, independent of dossiersync's code: it reads Sage 50FR
dossiers through pyodbc (``DRIVER={SQLite3};Database=...``), logs in to the Sales
Management API with plain httpx and sends only the creates a first sync needs, in bulk
wherever the API has a bulk call (see shared/design/SSM_API.md):

- ``accounts`` in 200s (``branchId``, ``name``, ``salesRepId1``, ``extId``);
- ``productFamilies`` in 200s (``descriptionEN``, ``extId``);
- ``contacts`` in 200s (``accountId``, ``firstName``, ``lastName``, ``salesRepId``,
  ``extId``) once their accounts have ids;
- ``products`` in 100s (``model``, ``familyId``, ``extId``) once the families have ids;
- with ``--orders``: sales orders in 200s (``branchId``, ``reference``, ``salesRepId``,
  ``accountId``, ``extId``), then their lines one ``POST /salesOrdersLines``
  each (the API has no bulk call for lines; an integer ``quantity``, a fractional Sage
  quantity sent as 1 at the line's amount).

No reading back, no state, no retries other than a 429 (after ``Retry-After``). Requests
are paced as dossiersync's client paces them at its defaults: at most ``--rate``
requests started per second (20) and ``--concurrency`` in flight (4). Dossiers are loaded
one after the other, as ``dossiersync sync`` does.

    SSM_PUBLIC_KEY=... SSM_PRIVATE_KEY=... python tests/benchmarks/baseline.py \\
        --api-url http://127.0.0.1:8765/api/v4 [--orders] acme-fr=/tmp/acme-fr.db ...

Prints one JSON object: records created per resource, requests per resource and kind,
429 answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import httpx
import pyodbc

T = TypeVar("T")
BRANCH_ID = 1  # the defaults of dossiersync's [implementation]
SALES_REP_ID = 1
BULK = {
    "accounts": 200,
    "contacts": 200,
    "productFamilies": 200,
    "products": 100,
    "salesorders": 200,
}


class Pacer:
    """Starts requests at least ``1 / rate`` s apart, across threads."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


class Api:
    """Plain httpx, a session key, the pace, and a count of what was sent."""

    def __init__(self, url: str, rate: float, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=60.0, limits=limits)
        self.pacer = Pacer(rate)
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self._lock = threading.Lock()

    def login(self, public_key: str, private_key: str) -> None:
        answer = self.send("POST", "/login", {"username": public_key, "password": private_key})
        self.http.headers["X-Session-Key"] = answer["token"]

    def send(self, method: str, path: str, body: Any) -> Any:
        kind = "bulk" if path.endswith("/bulk") else "write"
        resource = path.strip("/").split("/")[0]
        while True:
            self.pacer.wait()
            response = self.http.request(method, path, json=body)
            with self._lock:
                self.requests[f"{resource} {kind}"] += 1
            if response.status_code != 429:
                break
            with self._lock:
                self.throttled += 1
            time.sleep(float(response.headers.get("Retry-After") or 1))
        if response.status_code != 200:
            raise SystemExit(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    def bulk_create(self, resource: str, records: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """One ``POST /{resource}/bulk``; the new ids, in the order of ``records``."""
        items = [{"guid": uuid.uuid4().hex, "data": dict(data, extId=ext)} for ext, data in records]
        answers = {a["guid"]: a for a in self.send("POST", f"/{resource}/bulk", items)}
        ids = []
        for item in items:
            answer = answers.get(item["guid"]) or {}
            if answer.get("statusCode") != 200:
                raise SystemExit(f"{resource} {item['data']['extId']} refused: {answer}")
            ids.append(int(answer["id"]))
        return ids


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[n : n + size] for n in range(0, len(items), size)]


def create_all(
    api: Api,
    pool: ThreadPoolExecutor,
    work: dict[str, list[tuple[str, dict[str, Any]]]],
) -> dict[str, dict[str, int]]:
    """Bulk-create every resource's records, all calls in parallel: ids by extId."""
    calls: list[tuple[str, Sequence[tuple[str, dict[str, Any]]]]] = [
        (resource, chunk)
        for resource, records in work.items()
        for chunk in chunks(records, BULK[resource])
    ]
    results = pool.map(lambda call: api.bulk_create(call[0], list(call[1])), calls)
    ids: dict[str, dict[str, int]] = {resource: {} for resource in work}
    for (resource, chunk), new_ids in zip(calls, results, strict=True):
        ids[resource].update(zip((ext for ext, _ in chunk), new_ids, strict=True))
    return ids


def rows(db: Any, sql: str) -> Iterable[Any]:
    cursor = db.cursor()
    cursor.execute(sql)
    while batch := cursor.fetchmany(1000):
        yield from batch


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def load_dossier(
    api: Api, pool: ThreadPoolExecutor, dossier: str, path: str, orders: bool
) -> Counter[str]:
    created: Counter[str] = Counter()
    db = pyodbc.connect(f"DRIVER={{SQLite3}};Database={path}")
    try:
        accounts = [
            (
                f"{dossier}:{text(code)}",
                {"branchId": BRANCH_ID, "name": text(name), "salesRepId1": SALES_REP_ID},
            )
            for code, name in rows(
                db, "SELECT CT_Num, CT_Intitule FROM F_COMPTET WHERE CT_Type = 0"
            )
        ]
        families = [
            (f"{dossier}:{text(code)}", {"descriptionEN": text(label)})
            for code, label in rows(db, "SELECT FA_CodeFamille, FA_Intitule FROM F_FAMILLE")
        ]
        ids = create_all(api, pool, {"accounts": accounts, "productFamilies": families})
        account_ids, family_ids = ids["accounts"], ids["productFamilies"]

        contacts = [
            (
                f"{dossier}:{text(account)}:{int(number)}",
                {
                    "accountId": account_ids[f"{dossier}:{text(account)}"],
                    "firstName": text(first),
                    "lastName": text(last),
                    "salesRepId": SALES_REP_ID,
                },
            )
            for account, number, last, first in rows(
                db, "SELECT CT_Num, CT_No, CT_Nom, CT_Prenom FROM F_CONTACTT"
            )
        ]
        products = []
        for ref, design, family in rows(
            db, "SELECT AR_Ref, AR_Design, FA_CodeFamille FROM F_ARTICLE"
        ):
            data: dict[str, Any] = {"model": text(design)}
            if text(family):
                data["familyId"] = family_ids[f"{dossier}:{text(family)}"]
            products.append((f"{dossier}:{text(ref)}", data))
        ids.update(create_all(api, pool, {"contacts": contacts, "products": products}))
        created.update({resource: len(found) for resource, found in ids.items()})
        if orders:
            created.update(load_orders(api, pool, db, dossier, ids))
    finally:
        db.close()
    return created


def load_orders(
    api: Api, pool: ThreadPoolExecutor, db: Any, dossier: str, ids: dict[str, dict[str, int]]
) -> Counter[str]:
    headers = []
    for piece, reference, account in rows(
        db,
        "SELECT DO_Piece, DO_Ref, DO_Tiers FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1",
    ):
        data = {
            "branchId": BRANCH_ID,
            "reference": text(reference) or text(piece),
            "salesRepId": SALES_REP_ID,
            "accountId": ids["accounts"][f"{dossier}:{text(account)}"],
        }
        headers.append((f"{dossier}:0:1:{text(piece)}", data))
    order_ids = create_all(api, pool, {"salesorders": headers})["salesorders"]

    lines = []
    for piece, number, ref, quantity, price in rows(
        db,
        "SELECT DO_Piece, DL_Ligne, AR_Ref, DL_Qte, DL_PrixUnitaire FROM F_DOCLIGNE "
        "WHERE DO_Domaine = 0 AND DO_Type = 1",
    ):
        ext = f"{dossier}:0:1:{text(piece)}"
        qty, unit = Decimal(text(quantity) or 0), Decimal(text(price) or 0)
        if qty != qty.to_integral_value():  # SSM line quantities are integers
            qty, unit = Decimal(1), (qty * unit).quantize(Decimal("0.01"), ROUND_HALF_UP)
        body = {
            "salesOrderId": order_ids[ext],
            "productId": ids["products"][f"{dossier}:{text(ref)}"],
            "quantity": int(qty),
            "price": float(unit),
            "extId": f"{ext}:{int(number)}",
        }
        lines.append(body)
    list(pool.map(lambda body: api.send("POST", "/salesOrdersLines", body), lines))
    return Counter({"salesorders": len(order_ids), "salesOrdersLines": len(lines)})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (20)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    parser.add_argument("--orders", action="store_true", help="sales orders and their lines too")
    parser.add_argument("dossiers", nargs="+", metavar="ID=PATH")
    args = parser.parse_args(argv)
    api = Api(args.api_url, args.rate, args.concurrency)
    api.login(os.environ["SSM_PUBLIC_KEY"], os.environ["SSM_PRIVATE_KEY"])
    created: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for spec in args.dossiers:
            dossier, _, path = spec.partition("=")
            created.update(load_dossier(api, pool, dossier, path, args.orders))
    api.http.close()
    json.dump(
        {"created": dict(created), "requests": dict(api.requests), "throttled": api.throttled},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
