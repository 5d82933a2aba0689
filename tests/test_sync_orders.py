"""Sales orders, end to end: entered in SSM, written to the dossier of their account;
entered in Sage, sent to SSM as read-only orders that follow Sage.

Real parts only: reference dossiers read and written through the SQLite3 ODBC driver,
the SSM simulator as a real HTTP server, the CLI as a user runs it.  Each dossier gets
a small catalogue of its own (same references, other prices) so that a price can only
have come from the right dossier.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from dossiersync.errors import SsmUnavailable
from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sage50fr_odbc.endpoint import Sage50OdbcEndpoint
from dossiersync.plugins.sales_management.client import SalesManagementClient

from support.workspace import Workspace
from support.workspace import totals as run_totals

ENTITIES = ("clients", "products", "orders")
# reference, designation, sale price: the same references, other prices per dossier
CATALOGUE = {
    "alpha": [
        ("TST-001", "Farine T55 sac 25 kg", "10"),
        ("TST-002", "Levure fraîche 500 g", "3.35"),
        ("TST-A01", "Sel de Guérande 1 kg", "4.2"),
    ],
    "beta": [
        ("TST-001", "Farine T55 sac 25 kg", "12.5"),
        ("TST-002", "Levure fraîche 500 g", "3.99"),
        ("TST-003", "Beurre AOP plaque 10 kg", "89.9"),
    ],
}
# Lines of an order entered in Sage: quantity, discount %: 3 x 12.50 = 37.50;
# 2.5 x 3.99 x 0.90 = 8.9775 -> 8.98; 1 x 89.90 x 0.95 = 85.405 -> 85.41; total 131.89,
# with VAT 158.268 -> 158.27
LINES = [("TST-001", 3, 0), ("TST-002", 2.5, 10), ("TST-003", 1, 5)]
EXPECTED_TOTALS = [Decimal("37.5"), Decimal("8.98"), Decimal("85.41")]
# Lines of an order entered in SSM, whose quantities are integers: 3 x 12.50 = 37.50;
# 2 x 3.99 x 0.90 = 7.182 -> 7.18; 1 x 89.90 x 0.95 = 85.405 -> 85.41; total 130.09,
# with VAT 156.108 -> 156.11
SSM_LINES = [("TST-001", 3, 0), ("TST-002", 2, 10), ("TST-003", 1, 5)]
SSM_TOTALS = [Decimal("37.5"), Decimal("7.18"), Decimal("85.41")]


# -- set-up ------------------------------------------------------------------------------


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """The shared ``workspace`` fixture, under a shorter name."""
    return workspace


def add_dossier(ws: Workspace, dossier_id: str, seed: int, branch_id: int | None = None) -> None:
    """A small dossier: a few clients, no generated documents, this test's catalogue."""
    path = ws.root / f"{dossier_id}.db"
    write_demo_dossier(path, clients=6, seed=seed, contacts=0, products=0, orders=0)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO F_FAMILLE (FA_CodeFamille, FA_Intitule, cbModification) "
            "VALUES ('TST', 'Articles de test', strftime('%Y-%m-%d %H:%M:%f', 'now'))"
        )
        conn.executemany(
            "INSERT INTO F_ARTICLE (AR_Ref, AR_Design, FA_CodeFamille, AR_PrixVen, AR_PrixAch, "
            "AR_Sommeil, cbModification) "
            "VALUES (?, ?, 'TST', ?, '1', 0, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            CATALOGUE[dossier_id],
        )
    conn.close()
    ws.dossiers[dossier_id] = {"path": path, "branch_id": branch_id, "entities": ENTITIES}
    ws.write_config()


def two_synced_dossiers(ws: Workspace, beta_branch: int | None = None) -> None:
    add_dossier(ws, "alpha", seed=1)
    add_dossier(ws, "beta", seed=2, branch_id=beta_branch)
    ws.activate_all()
    ws.sync()


def first_client(ws: Workspace, dossier_id: str) -> str:
    return min(ws.sage_clients(dossier_id))


def one(ws: Workspace, resource: str, ext_id: str) -> dict[str, Any]:
    found = ws.ssm_list(resource, f"extId = '{ext_id}'")
    assert len(found) == 1, found
    return found[0]


def new_order(
    ws: Workspace,
    dossier_id: str,
    lines: list[tuple[str, int, float]] | list[tuple[int, int, float]],
    account: int | None = None,
    **fields: Any,
) -> int:
    """An order entered in SSM for a client of ``dossier_id``; products by reference
    (that dossier's) or by SSM id."""
    if account is None:
        account = one(ws, "accounts", f"{dossier_id}:{first_client(ws, dossier_id)}")["id"]
    body = {
        "branchId": 1,
        "salesRepId": 1,
        "reference": "CMD-WEB-0042",
        "accountId": account,
        "date": "2026-03-14",
        "comment": "Livrer avant midi",
    }
    order_id = ws.ssm_post("salesorders", dict(body, **fields))
    for product, quantity, discount in lines:
        if isinstance(product, str):
            product = one(ws, "products", f"{dossier_id}:{product}")["id"]
        price = ws.http.get(f"/products/{product}").json().get("price") or 0
        ws.ssm_post(
            "salesOrdersLines",
            {
                "salesOrderId": order_id,
                "productId": product,
                "quantity": quantity,
                "price": price,
                "discount1": discount,
            },
        )
    return order_id


# -- looking at both sides ---------------------------------------------------------------


def documents(ws: Workspace, dossier_id: str) -> dict[str, dict[str, Any]]:
    """Sales orders of a dossier: header columns and lines, by piece number."""
    with ws.sage(dossier_id) as conn:
        headers = conn.execute(
            "SELECT * FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1"
        ).fetchall()
        lines = conn.execute(
            "SELECT * FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type = 1 "
            "ORDER BY DO_Piece, DL_Ligne"
        ).fetchall()
    out = {h["DO_Piece"]: dict(h, lines=[]) for h in headers}
    for line in lines:
        out.setdefault(line["DO_Piece"], {"lines": []})["lines"].append(dict(line))
    return out


def new_documents(ws: Workspace, dossier_id: str, before: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for piece, d in documents(ws, dossier_id).items() if piece not in before]


def order(ws: Workspace, order_id: int) -> dict[str, Any]:
    response = ws.http.get(f"/salesorders/{order_id}")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def order_lines(ws: Workspace, order_id: int, deleted: bool = False) -> list[dict[str, Any]]:
    """The live (or the deleted) lines of an SSM order."""
    found = ws.ssm_list("salesordersLines", f"salesorderId = {order_id}")
    return sorted((x for x in found if x["deleted"] == deleted), key=lambda x: x["id"])


def status_ids(ws: Workspace) -> list[int]:
    return sorted(s["id"] for s in ws.ssm_list("salesorderStatuses"))


def totals(runs: list[dict[str, Any]], direction: str, entity: str = "orders") -> Counter[str]:
    return run_totals(runs, direction, entity)


def writes(runs: list[dict[str, Any]]) -> int:
    count = 0
    for dossier in runs:
        for run in dossier["runs"]:
            count += sum(run["counts"][k] for k in ("created", "updated", "deleted"))
    return count


def open_incidents(ws: Workspace, dossier_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ws.cli_json(
        "incidents", "--dossier", dossier_id, "--entity", "orders", "--open"
    )
    return found


def synced_order(ws: Workspace) -> tuple[int, str]:
    """Two dossiers synced and one order of beta's written to Sage: (SSM id, piece)."""
    two_synced_dossiers(ws)
    before = documents(ws, "beta")
    order_id = new_order(ws, "beta", SSM_LINES)
    ws.sync()
    (created,) = new_documents(ws, "beta", before)
    return order_id, created["DO_Piece"]


# -- behaviour ---------------------------------------------------------------------------


def test_order_is_created_in_its_accounts_dossier_with_sage_prices(ws: Workspace) -> None:
    two_synced_dossiers(ws)
    before_alpha, before_beta = documents(ws, "alpha"), documents(ws, "beta")
    code = first_client(ws, "beta")
    order_id = new_order(ws, "beta", SSM_LINES)

    runs = ws.sync()
    assert totals(runs, "ssm_to_sage")["created"] == 1
    assert documents(ws, "alpha") == before_alpha
    (doc,) = new_documents(ws, "beta", before_beta)
    piece = doc["DO_Piece"]
    assert piece.startswith("BC")
    assert (doc["DO_Tiers"], doc["DO_Ref"], doc["DO_Date"]) == (code, "CMD-WEB-0042", "2026-03-14")
    assert doc["DO_Statut"] == 0
    assert Decimal(doc["DO_TotalHT"]) == Decimal("130.09")
    assert Decimal(doc["DO_TotalTTC"]) == Decimal("156.11")
    prices = {ref: Decimal(price) for ref, _, price in CATALOGUE["beta"]}
    assert [
        (
            line["DL_Ligne"],
            line["AR_Ref"],
            Decimal(line["DL_Qte"]),
            Decimal(line["DL_Remise01REM_Valeur"]),
            Decimal(line["DL_PrixUnitaire"]),
            Decimal(line["DL_MontantHT"]),
        )
        for line in doc["lines"]
    ] == [
        (1000 * (n + 1), ref, Decimal(str(qty)), Decimal(str(disc)), prices[ref], total)
        for n, ((ref, qty, disc), total) in enumerate(zip(SSM_LINES, SSM_TOTALS, strict=True))
    ]

    synced = order(ws, order_id)
    assert synced["extId"] == f"beta:0:1:{piece}"
    assert synced["number"] == int(piece.removeprefix("BC"))  # SSM's number is an integer
    assert synced["readOnly"] is True
    assert Decimal(str(synced["total"])) == Decimal("130.09")
    assert synced["statusId"]["id"] == status_ids(ws)[0]
    assert synced["comment"] == "Livrer avant midi"
    lines = order_lines(ws, order_id)
    assert [line["extId"] for line in lines] == [
        f"beta:0:1:{piece}:{n}" for n in (1000, 2000, 3000)
    ]
    assert [Decimal(str(line["price"])) for line in lines] == [
        prices[ref] for ref, _, _ in SSM_LINES
    ]
    assert [Decimal(str(line["total"])) for line in lines] == SSM_TOTALS
    assert open_incidents(ws, "beta") == [] and open_incidents(ws, "alpha") == []


def test_second_sync_writes_nothing(ws: Workspace) -> None:
    order_id, piece = synced_order(ws)
    sage_before = {d: documents(ws, d) for d in ("alpha", "beta")}
    ssm_before = (order(ws, order_id)["dateUpdated"], order_lines(ws, order_id))

    runs = ws.sync()
    assert writes(runs) == 0
    assert totals(runs, "sage_to_ssm")["read"] == 1
    assert {d: documents(ws, d) for d in ("alpha", "beta")} == sage_before
    assert (order(ws, order_id)["dateUpdated"], order_lines(ws, order_id)) == ssm_before


def test_unknown_products_are_refused_and_nothing_is_written(ws: Workspace) -> None:
    two_synced_dossiers(ws)
    before = {d: documents(ws, d) for d in ("alpha", "beta")}
    alpha_only = one(ws, "products", "alpha:TST-A01")["id"]
    never_synced = ws.ssm_post("products", {"model": "Article saisi dans SSM"})
    order_id = new_order(ws, "beta", [("TST-001", 2, 0), (alpha_only, 1, 0), (never_synced, 1, 0)])

    runs = ws.sync(expect=1)
    assert totals(runs, "ssm_to_sage")["refused"] == 1
    assert totals(runs, "ssm_to_sage")["created"] == 0
    assert {d: documents(ws, d) for d in ("alpha", "beta")} == before
    assert order(ws, order_id)["extId"] is None
    assert open_incidents(ws, "alpha") == []
    (incident,) = open_incidents(ws, "beta")
    assert incident["record_key"] == f"ssm:salesorders/{order_id}"
    assert incident["kind"] == "unknown_reference"
    assert incident["field"] == "lines[1].productId"
    assert "Sel de Guérande" in incident["message"] and "alpha" in incident["message"]
    assert "lines[2].productId" in incident["message"]

    # the refused order is retried until it can go: fixed in SSM, it is created
    for line in order_lines(ws, order_id)[1:]:
        ws.ssm_delete("salesordersLines", line["id"])
    runs = ws.sync()
    assert totals(runs, "ssm_to_sage")["created"] == 1
    (doc,) = new_documents(ws, "beta", before["beta"])
    assert [line["AR_Ref"] for line in doc["lines"]] == ["TST-001"]
    assert Decimal(doc["DO_TotalHT"]) == Decimal("25")
    assert open_incidents(ws, "beta") == []


def test_order_failing_the_schema_is_refused_naming_field_and_rule(ws: Workspace) -> None:
    two_synced_dossiers(ws)
    before = documents(ws, "beta")
    too_long = new_order(ws, "beta", SSM_LINES, reference="COMMANDE-WEB-2026-000042")
    no_quantity = new_order(ws, "beta", [("TST-001", 1, 0), ("TST-002", 0, 0)])

    ws.sync(expect=1)
    assert documents(ws, "beta") == before
    found = {i["record_key"]: i for i in open_incidents(ws, "beta")}
    first, second = found[f"ssm:salesorders/{too_long}"], found[f"ssm:salesorders/{no_quantity}"]
    assert (first["kind"], first["field"]) == ("invalid_record", "reference")
    assert first["detail"]["problem"]["rule"] == "max_length"
    assert (
        f"order with SSM id {too_long} (not in Sage 50FR yet): reference is too long: "
        in (first["message"])
    )
    assert "at most 17: 'COMMANDE-WEB-2026-000042'" in first["message"]
    assert (second["kind"], second["field"]) == ("invalid_record", "lines[1].quantity")
    assert second["detail"]["problem"]["rule"] == "positive_decimal"
    assert "quantity of line 2 must be a number greater than 0: '0'" in second["message"]


def test_account_unknown_to_every_dossier_is_refused_by_the_branchs_dossier(
    ws: Workspace,
) -> None:
    two_synced_dossiers(ws, beta_branch=2)
    before = documents(ws, "beta")
    # an account of a branch no dossier is configured for: synced nowhere
    stranger = ws.ssm_post(
        "accounts", {"name": "Boulangerie Inconnue", "branchId": 4, "salesRepId1": 1, "typeId": 1}
    )
    order_id = new_order(ws, "beta", [("TST-001", 1, 0)], account=stranger, branchId=2)

    ws.sync(expect=1)
    assert documents(ws, "beta") == before
    assert open_incidents(ws, "alpha") == []
    (incident,) = open_incidents(ws, "beta")
    assert incident["record_key"] == f"ssm:salesorders/{order_id}"
    assert incident["field"] == "accountId"
    assert "Boulangerie Inconnue" in incident["message"]


def test_status_changed_in_sage_reaches_ssm_and_ssm_comment_stays(ws: Workspace) -> None:
    order_id, piece = synced_order(ws)
    ws.ssm_put("salesorders", order_id, {"comment": "Client à rappeler après livraison"})
    lines_before = order_lines(ws, order_id)
    ws.sage_execute(
        "beta",
        "UPDATE F_DOCENTETE SET DO_Statut = 2, "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "WHERE DO_Domaine = 0 AND DO_Type = 1 AND DO_Piece = ?",
        (piece,),
    )

    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["updated"] == 1
    after = order(ws, order_id)
    assert after["statusId"]["id"] == status_ids(ws)[2]
    assert after["comment"] == "Client à rappeler après livraison"
    assert order_lines(ws, order_id) == lines_before
    assert writes(ws.sync()) == 0


def test_document_rewritten_in_sage_realigns_its_lines_in_ssm(ws: Workspace) -> None:
    order_id, piece = synced_order(ws)
    doc = documents(ws, "beta")[piece]
    # Sage rewrites the whole document: lines deleted and inserted again, one fewer,
    # the second one with another quantity
    kept = [
        (
            line["DL_Ligne"],
            line["AR_Ref"],
            line["DL_Design"],
            line["DL_Qte"],
            line["DL_PrixUnitaire"],
            line["DL_Remise01REM_Valeur"],
            line["DL_MontantHT"],
        )
        for line in doc["lines"][:2]
    ]
    kept[1] = (*kept[1][:3], "4", *kept[1][4:6], "14.36")
    conn = ws.sage("beta")
    with conn:
        conn.execute("DELETE FROM F_DOCLIGNE WHERE DO_Piece = ?", (piece,))
        conn.executemany(
            "INSERT INTO F_DOCLIGNE (DO_Domaine, DO_Type, DO_Piece, DL_Ligne, AR_Ref, DL_Design, "
            "DL_Qte, DL_PrixUnitaire, DL_Remise01REM_Valeur, DL_MontantHT, cbModification) "
            "VALUES (0, 1, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            [(piece, *line) for line in kept],
        )
        conn.execute(
            "UPDATE F_DOCENTETE SET DO_TotalHT = '51.86', DO_TotalTTC = '62.23' WHERE DO_Piece = ?",
            (piece,),
        )
    conn.close()

    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["updated"] == 1
    lines = order_lines(ws, order_id)
    assert [line["extId"] for line in lines] == [f"beta:0:1:{piece}:{n}" for n in (1000, 2000)]
    assert float(lines[1]["quantity"]) == 4
    assert Decimal(str(lines[1]["total"])) == Decimal("14.36")
    assert Decimal(str(order(ws, order_id)["total"])) == Decimal("51.86")
    assert writes(ws.sync()) == 0


def test_order_re_pointed_to_another_dossiers_account_is_refused(ws: Workspace) -> None:
    order_id, piece = synced_order(ws)
    sage_before = {d: documents(ws, d) for d in ("alpha", "beta")}
    elsewhere = one(ws, "accounts", f"alpha:{first_client(ws, 'alpha')}")["id"]
    ws.ssm_put("salesorders", order_id, {"accountId": elsewhere})
    moved = order(ws, order_id)

    runs = ws.sync(expect=1)
    assert writes(runs) == 0
    assert totals(runs, "ssm_to_sage")["refused"] == 1
    assert {d: documents(ws, d) for d in ("alpha", "beta")} == sage_before
    assert order(ws, order_id) == moved
    assert open_incidents(ws, "alpha") == []
    (incident,) = open_incidents(ws, "beta")
    assert incident["kind"] == "moved_between_dossiers"
    assert incident["record_key"] == f"0:1:{piece}"
    assert incident["field"] == "accountId"
    assert "alpha" in incident["message"]


@pytest.mark.parametrize("crash", ["before_sage_write", "after_sage_write"])
def test_crash_after_the_intent_never_writes_the_order_twice(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    two_synced_dossiers(ws)
    before = documents(ws, "beta")
    order_id = new_order(ws, "beta", SSM_LINES)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        if crash == "before_sage_write":
            insert = Sage50OdbcEndpoint.insert
            patch.setattr(
                Sage50OdbcEndpoint,
                "insert",
                lambda self, table, values: (
                    killed() if table == "F_DOCENTETE" else insert(self, table, values)
                ),
            )
        else:
            update = SalesManagementClient.update
            patch.setattr(
                SalesManagementClient,
                "update",
                lambda self, resource, record_id, body: (
                    killed()
                    if resource.lower().startswith("salesorders")
                    else update(self, resource, record_id, body)
                ),
            )
        assert ws.cli("sync", expect=None).exit_code != 0
    written = new_documents(ws, "beta", before)
    assert len(written) == (0 if crash == "before_sage_write" else 1)
    assert order(ws, order_id)["extId"] is None

    runs = ws.sync()
    (doc,) = new_documents(ws, "beta", before)
    assert len(doc["lines"]) == 3
    assert totals(runs, "ssm_to_sage")["created"] == 1
    assert order(ws, order_id)["extId"] == f"beta:0:1:{doc['DO_Piece']}"
    assert [line["extId"] for line in order_lines(ws, order_id)] == [
        f"beta:0:1:{doc['DO_Piece']}:{n}" for n in (1000, 2000, 3000)
    ]
    assert writes(ws.sync()) == 0
    assert len(new_documents(ws, "beta", before)) == 1


# -- orders entered in Sage ------------------------------------------------------------------


def sage_order(
    ws: Workspace,
    dossier_id: str,
    piece: str,
    account: str,
    lines: list[tuple[str, float, float]],
    reference: str | None = None,
    status: int = 1,
) -> None:
    """A sales order entered in Sage, priced from the dossier's catalogue."""
    catalogue = {ref: (design, Decimal(price)) for ref, design, price in CATALOGUE[dossier_id]}
    rows = []
    total = Decimal(0)
    for n, (ref, quantity, discount) in enumerate(lines, start=1):
        design, price = catalogue[ref]
        amount = (Decimal(str(quantity)) * price * (1 - Decimal(str(discount)) / 100)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        total += amount
        rows.append(
            (piece, 1000 * n, ref, design, str(quantity), str(price), str(discount), str(amount))
        )
    conn = ws.sage(dossier_id)
    with conn:
        conn.execute(
            "INSERT INTO F_DOCENTETE (DO_Domaine, DO_Type, DO_Piece, DO_Date, DO_Ref, DO_Tiers, "
            "DO_Statut, DO_TotalHT, DO_TotalTTC, cbModification) "
            "VALUES (0, 1, ?, '2026-02-03', ?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            (
                piece,
                reference,
                account,
                status,
                str(total),
                str((total * Decimal("1.2")).quantize(Decimal("0.01"), ROUND_HALF_UP)),
            ),
        )
        conn.executemany(
            "INSERT INTO F_DOCLIGNE (DO_Domaine, DO_Type, DO_Piece, DL_Ligne, AR_Ref, DL_Design, "
            "DL_Qte, DL_PrixUnitaire, DL_Remise01REM_Valeur, DL_MontantHT, cbModification) "
            "VALUES (0, 1, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            rows,
        )
    conn.close()


def delete_sage_order(ws: Workspace, dossier_id: str, piece: str) -> None:
    conn = ws.sage(dossier_id)
    with conn:
        conn.execute(
            "DELETE FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type = 1 AND DO_Piece = ?",
            (piece,),
        )
        conn.execute(
            "DELETE FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1 AND DO_Piece = ?",
            (piece,),
        )
    conn.close()


def sage_born_order(ws: Workspace) -> tuple[dict[str, Any], str]:
    """Two dossiers synced, then an order entered in beta's Sage and synced: (SSM order,
    client code)."""
    two_synced_dossiers(ws, beta_branch=3)
    code = first_client(ws, "beta")
    sage_order(ws, "beta", "BC00901", code, LINES, reference="TEL-0042")
    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["created"] == 1
    return one(ws, "salesorders", "beta:0:1:BC00901"), code


def test_order_entered_in_sage_reaches_ssm_read_only_with_its_lines(ws: Workspace) -> None:
    synced, code = sage_born_order(ws)
    assert synced["readOnly"] is True
    assert synced["accountId"]["id"] == one(ws, "accounts", f"beta:{code}")["id"]
    assert (synced["number"], synced["reference"]) == (901, "TEL-0042")
    assert Decimal(str(synced["total"])) == Decimal("131.89")
    assert synced["statusId"]["id"] == status_ids(ws)[1]
    assert synced["branchId"]["id"] == 3
    assert synced["salesRepId"]["id"] == 1
    lines = order_lines(ws, synced["id"])
    assert [line["extId"] for line in lines] == [
        f"beta:0:1:BC00901:{n}" for n in (1000, 2000, 3000)
    ]
    assert [line["productId"]["id"] for line in lines] == [
        one(ws, "products", f"beta:{ref}")["id"] for ref, _, _ in LINES
    ]
    prices = {ref: Decimal(price) for ref, _, price in CATALOGUE["beta"]}
    assert [
        (
            Decimal(str(line["quantity"])),
            Decimal(str(line["discount1"])),
            Decimal(str(line["price"])),
            Decimal(str(line["total"])),
        )
        for line in lines
    ] == [
        (Decimal(3), Decimal(0), prices["TST-001"], Decimal("37.5")),
        # SSM quantities are integers: 2.5 x 3.99 goes as 1 x 9.98, the total unchanged
        (Decimal(1), Decimal(10), Decimal("9.98"), Decimal("8.98")),
        (Decimal(1), Decimal(5), prices["TST-003"], Decimal("85.41")),
    ]
    assert [line["description"] for line in lines] == [
        "Farine T55 sac 25 kg",
        "2.5 x Levure fraîche 500 g (3.99)",
        "Beurre AOP plaque 10 kg",
    ]
    # one-way: nothing went to Sage, nothing to another dossier
    assert ws.records("salesorders", "alpha") == []
    assert len(documents(ws, "beta")) == 1 and documents(ws, "alpha") == {}
    assert open_incidents(ws, "beta") == []

    ssm_before = (order(ws, synced["id"]), order_lines(ws, synced["id"]))
    runs = ws.sync()
    assert writes(runs) == 0
    assert (order(ws, synced["id"]), order_lines(ws, synced["id"])) == ssm_before


def test_orders_entered_in_sage_are_created_in_bulk_and_their_lines_one_by_one(
    ws: Workspace,
) -> None:
    """The API has a bulk call for orders, none for their lines."""
    two_synced_dossiers(ws)
    code = first_client(ws, "beta")
    for n in range(5):
        sage_order(ws, "beta", f"BC0090{n}", code, LINES)
    before = ws.simulator_stats()["calls"]
    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["created"] == 5
    calls = ws.simulator_stats()["calls"]

    def sent(call: str) -> int:
        return int(calls.get(call, 0) - before.get(call, 0))

    assert sent("POST /salesorders/bulk") == 1
    assert sent("POST /salesorders") == 0
    assert sent("POST /salesOrdersLines") == 5 * len(LINES)
    orders = ws.records("salesorders", "beta")
    assert len(orders) == 5
    for synced in orders:  # orders go side by side, each one's lines in their order
        assert [line["extId"] for line in order_lines(ws, synced["id"])] == [
            f"{synced['extId']}:{n}" for n in (1000, 2000, 3000)
        ]


def test_order_without_reference_is_named_by_its_piece(ws: Workspace) -> None:
    two_synced_dossiers(ws)
    sage_order(ws, "alpha", "BC00077", first_client(ws, "alpha"), [("TST-A01", 2, 0)])
    ws.sync()
    synced = one(ws, "salesorders", "alpha:0:1:BC00077")
    assert (synced["reference"], synced["number"]) == ("BC00077", 77)
    assert synced["branchId"]["id"] == 1
    assert writes(ws.sync()) == 0


def test_line_changed_in_sage_updates_only_that_line_in_ssm(ws: Workspace) -> None:
    synced, _ = sage_born_order(ws)
    lines_before = order_lines(ws, synced["id"])
    # 5 x 3.99 x 0.90 = 17.955 -> 17.96; total 37.50 + 17.96 + 85.41 = 140.87
    ws.sage_execute(
        "beta",
        "UPDATE F_DOCLIGNE SET DL_Qte = '5', DL_MontantHT = '17.96', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "WHERE DO_Piece = 'BC00901' AND DL_Ligne = 2000",
    )
    ws.sage_execute(
        "beta",
        "UPDATE F_DOCENTETE SET DO_TotalHT = '140.87', DO_TotalTTC = '169.04' "
        "WHERE DO_Piece = 'BC00901'",
    )

    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["updated"] == 1
    lines = order_lines(ws, synced["id"])
    assert (lines[0], lines[2]) == (lines_before[0], lines_before[2])
    assert Decimal(str(lines[1]["quantity"])) == 5
    assert Decimal(str(lines[1]["price"])) == Decimal("3.99")
    assert lines[1]["description"] == "Levure fraîche 500 g"
    assert Decimal(str(lines[1]["total"])) == Decimal("17.96")
    assert Decimal(str(order(ws, synced["id"])["total"])) == Decimal("140.87")
    assert order(ws, synced["id"])["readOnly"] is True
    assert writes(ws.sync()) == 0


def test_order_deleted_in_sage_is_deleted_in_ssm_only_when_born_in_sage(ws: Workspace) -> None:
    synced, _ = sage_born_order(ws)
    from_ssm = new_order(ws, "beta", SSM_LINES)
    ws.sync()
    piece = order(ws, from_ssm)["extId"].rsplit(":", 1)[1]
    delete_sage_order(ws, "beta", "BC00901")
    delete_sage_order(ws, "beta", piece)

    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["deleted"] == 1
    assert order(ws, synced["id"])["deleted"] is True
    assert order_lines(ws, synced["id"]) == []
    assert len(order_lines(ws, synced["id"], deleted=True)) == 3
    # the order entered in SSM stays there, with its lines
    assert order(ws, from_ssm)["deleted"] is False
    assert len(order_lines(ws, from_ssm)) == 3
    assert [o["extId"] for o in ws.records("salesorders", "beta")] == [f"beta:0:1:{piece}"]
    assert writes(ws.sync()) == 0


def test_order_waits_for_its_account(ws: Workspace) -> None:
    add_dossier(ws, "beta", seed=2)
    code = first_client(ws, "beta")
    ws.sage_execute("beta", "UPDATE F_COMPTET SET CT_EMail = 'faux' WHERE CT_Num = ?", (code,))
    sage_order(ws, "beta", "BC00901", code, LINES)
    ws.activate_all()

    runs = ws.sync(expect=1)  # the account is refused
    assert totals(runs, "sage_to_ssm")["pending"] == 1
    assert ws.records("salesorders", "beta") == []
    pending = ws.cli_json(
        "records", "--dossier", "beta", "--entity", "orders", "--label", "pending"
    )
    assert [r["sage_key"] for r in pending] == ["0:1:BC00901"]
    assert f"account {code}" in pending[0]["error"]
    assert totals(runs, "sage_to_ssm")["created"] == 0

    ws.sage_execute(
        "beta",
        "UPDATE F_COMPTET SET CT_EMail = 'ok@exemple.fr', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE CT_Num = ?",
        (code,),
    )
    runs = ws.sync()
    assert totals(runs, "sage_to_ssm")["created"] == 1
    synced = one(ws, "salesorders", "beta:0:1:BC00901")
    assert synced["accountId"]["id"] == one(ws, "accounts", f"beta:{code}")["id"]
    assert len(order_lines(ws, synced["id"])) == 3
    assert ws.cli_json("records", "--dossier", "beta", "--label", "pending") == []
    assert writes(ws.sync()) == 0


@pytest.mark.parametrize("crash", ["after_order_created", "before_first_line"])
def test_interrupted_create_of_a_sage_order_is_finished_not_repeated(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    two_synced_dossiers(ws)
    sage_order(ws, "beta", "BC00901", first_client(ws, "beta"), LINES)
    ext = "beta:0:1:BC00901"

    def killed() -> None:
        raise KeyboardInterrupt

    # orders are created in bulk, their lines one by one
    method = "bulk_create" if crash == "after_order_created" else "create"
    target = "salesorders" if crash == "after_order_created" else "salesOrdersLines"
    original = getattr(SalesManagementClient, method)

    def interrupted(self: SalesManagementClient, resource: str, body: Any) -> Any:
        if resource != target:
            return original(self, resource, body)
        if crash == "after_order_created":
            original(self, resource, body)  # SSM acted; the answer is lost
        killed()
        raise AssertionError("unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(SalesManagementClient, method, interrupted)
        assert ws.cli("sync", expect=None).exit_code != 0
    (created,) = ws.ssm_list("salesorders", f"extId = '{ext}'")
    assert order_lines(ws, created["id"]) == []

    ws.sync()
    (synced,) = ws.ssm_list("salesorders", f"extId = '{ext}'")
    assert synced["id"] == created["id"]
    assert [line["extId"] for line in order_lines(ws, synced["id"])] == [
        f"{ext}:{n}" for n in (1000, 2000, 3000)
    ]
    records = ws.cli_json("records", "--dossier", "beta", "--entity", "orders")
    assert [(r["sage_key"], r["label"]) for r in records] == [("0:1:BC00901", "synced")]
    assert writes(ws.sync()) == 0


def test_order_entered_in_sage_cannot_be_moved_in_ssm(ws: Workspace) -> None:
    synced, _ = sage_born_order(ws)
    elsewhere = one(ws, "accounts", f"alpha:{first_client(ws, 'alpha')}")["id"]
    ws.ssm_put("salesorders", synced["id"], {"accountId": elsewhere})

    runs = ws.sync(expect=1)
    assert writes(runs) == 0
    (incident,) = open_incidents(ws, "beta")
    assert (incident["kind"], incident["record_key"]) == ("moved_between_dossiers", "0:1:BC00901")
    assert documents(ws, "alpha") == {}

    ws.ssm_put("salesorders", synced["id"], {"accountId": synced["accountId"]["id"]})
    ws.sync()
    assert open_incidents(ws, "beta") == []
    records = ws.cli_json("records", "--dossier", "beta", "--entity", "orders")
    assert [(r["sage_key"], r["label"]) for r in records] == [("0:1:BC00901", "synced")]
    assert writes(ws.sync()) == 0


def test_a_sage_order_whose_lines_met_an_outage_is_not_taken_for_an_ssm_edit(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order was created in SSM, then the API went out while its lines were sent:
    the SSM pass that follows sees an order with no agreed record yet, which is no edit
    made in SSM (no ``account_changed``); the next sync sends its lines."""
    two_synced_dossiers(ws)
    sage_order(ws, "beta", "BC00901", first_client(ws, "beta"), LINES)
    ext = "beta:0:1:BC00901"
    original = SalesManagementClient.create

    def out(self: SalesManagementClient, resource: str, body: Any) -> Any:
        if resource == "salesOrdersLines":
            raise SsmUnavailable("POST /salesOrdersLines: ConnectError after 4 attempt(s)")
        return original(self, resource, body)

    with monkeypatch.context() as patch:
        patch.setattr(SalesManagementClient, "create", out)
        assert ws.cli("sync", expect=None).exit_code == 1
    assert [i["kind"] for i in open_incidents(ws, "beta")] == ["run_failed"]

    ws.sync()
    (synced,) = ws.ssm_list("salesorders", f"extId = '{ext}'")
    assert [line["extId"] for line in order_lines(ws, synced["id"])] == [
        f"{ext}:{n}" for n in (1000, 2000, 3000)
    ]
    assert open_incidents(ws, "beta") == []
    records = ws.cli_json("records", "--dossier", "beta", "--entity", "orders")
    assert [(r["sage_key"], r["label"]) for r in records] == [("0:1:BC00901", "synced")]


def test_an_order_entered_in_ssm_never_takes_the_key_of_a_linked_order(ws: Workspace) -> None:
    """The dossier's last order, entered in Sage and synced, is deleted in Sage: Sage's
    next number is its number again. An order entered in SSM then gets the number after
    it (a link still holds that key): no second link for one Sage key, no crash."""
    two_synced_dossiers(ws)
    sage_order(ws, "beta", "BC00001", first_client(ws, "beta"), LINES)
    ws.sync()
    delete_sage_order(ws, "beta", "BC00001")
    assert totals(ws.sync(), "sage_to_ssm")["deleted"] == 1

    from_ssm = new_order(ws, "beta", SSM_LINES)
    runs = ws.sync()

    assert totals(runs, "ssm_to_sage")["created"] == 1
    assert order(ws, from_ssm)["extId"] == "beta:0:1:BC00002"
    assert set(documents(ws, "beta")) == {"BC00002"}
    assert open_incidents(ws, "beta") == []
    assert writes(ws.sync()) == 0
