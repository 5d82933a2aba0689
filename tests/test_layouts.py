"""The same end-to-end behaviour on every built-in Sage layout: the reference schema and
Ciel's own tables (``Cli``, ``Article``, ``PieceHCli``… with French field names, a
day-granular "Dernière modification", no prospect flag, document types as words and
lines pointing to their header through its integer id).

Real parts only: demo dossiers written in each layout, read and written through the
SQLite3 ODBC driver, the SSM simulator as a real HTTP server, the CLI as a user runs it.
The Sage side is looked at through the endpoint and the layout's mapping, so every
assertion speaks logical names and holds on both layouts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from dossiersync.plugins.sage50fr_odbc.endpoint import Sage50OdbcEndpoint
from dossiersync.plugins.sage50fr_odbc.mapping import SageMapping

from support.workspace import Workspace

ENTITIES = ("clients", "contacts", "products", "orders")
ORDERS = {"DO_Domaine": 0, "DO_Type": 1}


@pytest.fixture(params=["reference", "ciel"])
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ws(workspace: Workspace, layout: str) -> Iterator[Workspace]:
    """One dossier of 40 clients with contacts, products (families, stock) and orders in
    ``layout``, activated and synced once."""
    workspace.add_dossier(
        "nord", clients=40, seed=3, entities=ENTITIES, layout=layout, products=30, orders=6
    )
    workspace.activate_all()
    workspace.sync()
    yield workspace


def sage(ws: Workspace) -> Sage50OdbcEndpoint:
    dossier = ws.dossiers["nord"]
    return Sage50OdbcEndpoint(
        f"DRIVER={{SQLite3}};Database={dossier['path']}", SageMapping.load(dossier["layout"])
    )


def sage_rows(
    ws: Workspace, table: str, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    with sage(ws) as endpoint:
        return list(endpoint.read(table, where=where))


def live(ws: Workspace, resource: str) -> list[dict[str, Any]]:
    return [r for r in ws.ssm_list(resource, "extId LIKE 'nord:%'") if not r.get("deleted")]


def by_ext_id(ws: Workspace, resource: str) -> dict[str, dict[str, Any]]:
    return {r["extId"]: r for r in live(ws, resource)}


def test_a_full_sync_of_all_four_entities_matches_the_dossier(ws: Workspace, layout: str) -> None:
    clients = sage_rows(ws, "F_COMPTET", {"CT_Type": 0})
    contacts = sage_rows(ws, "F_CONTACTT")
    families = sage_rows(ws, "F_FAMILLE")
    products = sage_rows(ws, "F_ARTICLE")
    stock = sage_rows(ws, "F_ARTSTOCK")
    orders = sage_rows(ws, "F_DOCENTETE", ORDERS)
    lines = sage_rows(ws, "F_DOCLIGNE", ORDERS)

    accounts = by_ext_id(ws, "accounts")
    assert len(clients) == 40 and len(accounts) == 40
    assert {f"nord:{c['CT_Num']}": c["CT_Intitule"] for c in clients} == {
        e: a["name"] for e, a in accounts.items()
    }
    assert len(live(ws, "contacts")) == len(contacts) > 0
    assert len(live(ws, "productFamilies")) == len(families) > 0
    ssm_products = by_ext_id(ws, "products")
    assert len(ssm_products) == len(products) == 30
    totals: dict[str, Decimal] = {}
    for row in stock:
        totals[row["AR_Ref"]] = totals.get(row["AR_Ref"], Decimal(0)) + row["AS_QteSto"]
    for product in products:
        sent = ssm_products[f"nord:{product['AR_Ref']}"]
        assert Decimal(str(sent["price"])) == product["AR_PrixVen"]
        assert Decimal(str(sent["stock"])) == totals.get(product["AR_Ref"], Decimal(0))
    ssm_orders = by_ext_id(ws, "salesorders")
    assert len(ssm_orders) == len(orders) == 6
    assert {f"nord:0:1:{o['DO_Piece']}" for o in orders} == set(ssm_orders)
    ssm_lines = [
        line
        for o in ssm_orders.values()
        for line in ws.ssm_list("salesordersLines", f"salesorderId = {o['id']}")
        if not line["deleted"]
    ]
    assert len(ssm_lines) == len(lines) > 0
    if layout == "ciel":
        # no prospect flag: every account is a client, read-only in SSM
        assert all(a["readOnly"] for a in accounts.values())
        assert max(len(c["CT_Intitule"]) for c in clients) > 35

    again = ws.sync()
    created = sum(
        run["counts"]["created"] + run["counts"]["updated"]
        for dossier in again
        for run in dossier["runs"]
    )
    assert created == 0


def test_edits_made_in_sage_the_same_day_reach_ssm(ws: Workspace, layout: str) -> None:
    """On Ciel, "Dernière modification" only tells the day: a second edit on the day of
    the last sync leaves it as it was, and must still be found."""
    client = min(r["CT_Num"] for r in sage_rows(ws, "F_COMPTET", {"CT_Type": 0}))
    product = min(r["AR_Ref"] for r in sage_rows(ws, "F_ARTICLE"))
    long_name = "Boulangerie Pâtisserie des Quatre Saisons — Lille"[:50]
    with sage(ws) as endpoint, endpoint.transaction():
        endpoint.update("F_COMPTET", [client], {"CT_Intitule": "Épicerie du Beffroi"})
        endpoint.update("F_ARTICLE", [product], {"AR_PrixVen": "12.34"})
    ws.sync()
    with sage(ws) as endpoint, endpoint.transaction():
        name = long_name if layout == "ciel" else long_name[:35]
        endpoint.update("F_COMPTET", [client], {"CT_Intitule": name})
        depot = next(iter(endpoint.read("F_ARTSTOCK", keys=[(product,)])), None)
        if depot is None:
            endpoint.insert("F_ARTSTOCK", {"AR_Ref": product, "DE_No": 1, "AS_QteSto": "7"})
        else:
            endpoint.update("F_ARTSTOCK", [product, depot["DE_No"]], {"AS_QteSto": "77"})
    ws.sync()

    assert by_ext_id(ws, "accounts")[f"nord:{client}"]["name"] == name
    sent = by_ext_id(ws, "products")[f"nord:{product}"]
    assert Decimal(str(sent["price"])) == Decimal("12.34")
    stock = sum(r["AS_QteSto"] for r in sage_rows(ws, "F_ARTSTOCK") if r["AR_Ref"] == product)
    assert Decimal(str(sent["stock"])) == stock


def test_an_order_entered_in_ssm_is_written_with_its_lines_and_sage_prices_come_back(
    ws: Workspace, layout: str
) -> None:
    client = min(r["CT_Num"] for r in sage_rows(ws, "F_COMPTET", {"CT_Type": 0}))
    products = sorted(sage_rows(ws, "F_ARTICLE"), key=lambda r: r["AR_Ref"])
    sold = [p for p in products if not p["AR_Sommeil"]][:2]
    account = by_ext_id(ws, "accounts")[f"nord:{client}"]
    ssm_products = by_ext_id(ws, "products")
    before = {o["DO_Piece"] for o in sage_rows(ws, "F_DOCENTETE", ORDERS)}
    order_id = ws.ssm_post(
        "salesorders",
        {
            "branchId": 1,
            "salesRepId": 1,
            "reference": "CMD-WEB-0042",
            "accountId": account["id"],
            "date": "2026-03-14",
        },
    )
    for quantity, product in enumerate(sold, start=2):
        ws.ssm_post(
            "salesOrdersLines",
            {
                "salesOrderId": order_id,
                "productId": ssm_products[f"nord:{product['AR_Ref']}"]["id"],
                "quantity": quantity,
                "price": 1,
                "discount1": 0,
            },
        )

    ws.sync()

    new = [o for o in sage_rows(ws, "F_DOCENTETE", ORDERS) if o["DO_Piece"] not in before]
    assert len(new) == 1
    header = new[0]
    assert (header["DO_Tiers"], header["DO_Ref"]) == (client, "CMD-WEB-0042")
    lines = sage_rows(ws, "F_DOCLIGNE", {**ORDERS, "DO_Piece": header["DO_Piece"]})
    assert [(line["AR_Ref"], line["DL_Qte"]) for line in lines] == [
        (p["AR_Ref"], Decimal(q)) for q, p in enumerate(sold, start=2)
    ]
    assert [line["DL_PrixUnitaire"] for line in lines] == [p["AR_PrixVen"] for p in sold]
    ssm_lines = sorted(
        (
            x
            for x in ws.ssm_list("salesordersLines", f"salesorderId = {order_id}")
            if not x["deleted"]
        ),
        key=lambda x: x["id"],
    )
    assert [Decimal(str(x["price"])) for x in ssm_lines] == [p["AR_PrixVen"] for p in sold]
    if layout == "ciel":
        path = ws.dossiers["nord"]["path"]
        with sqlite3.connect(path) as conn:
            stored = conn.execute(
                'SELECT h."Type", COUNT(*) FROM "PieceLCli" l '
                'JOIN "PieceHCli" h ON h."Id" = l."Id pièce" WHERE h."N° pièce" = ? GROUP BY 1',
                (header["DO_Piece"],),
            ).fetchall()
        assert stored == [("Commande", 2)]
