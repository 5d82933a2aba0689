"""Contacts (both ways, attached to their account) and products (one way, in bulk)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from support.workspace import Workspace

ALL = ("clients", "contacts", "products")


def totals(runs: list[dict], entity: str, direction: str = "sage_to_ssm") -> Counter[str]:
    out: Counter[str] = Counter()
    for dossier in runs:
        for run in dossier["runs"]:
            if run["entity"] == entity and run["direction"] == direction:
                out.update(run["counts"])
    return out


def writes(runs: list[dict]) -> int:
    return sum(
        run["counts"]["created"] + run["counts"]["updated"] + run["counts"]["deleted"]
        for dossier in runs
        for run in dossier["runs"]
    )


# -- contacts ---------------------------------------------------------------------------


def test_contacts_follow_their_account_in_each_dossier(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=20, seed=1, entities=ALL)
    workspace.add_dossier("sud", clients=15, seed=2, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    for dossier_id in ("nord", "sud"):
        sage = workspace.sage_rows(dossier_id, "SELECT CT_Num, CT_No, CT_Nom FROM F_CONTACTT")
        ssm = workspace.records("contacts", dossier_id)
        assert len(ssm) == len(sage) > 0
        assert {c["extId"] for c in ssm} == {f"{dossier_id}:{r[0]}:{r[1]}" for r in sage}
        for row in sage[:5]:
            contact = workspace.record("contacts", f"{dossier_id}:{row[0]}:{row[1]}")
            account = workspace.account(f"{dossier_id}:{row[0]}")
            assert contact["accountId"]["id"] == account["id"]
            assert contact["lastName"] == row[2]
    assert writes(workspace.sync()) == 0


def test_contact_waits_for_its_account(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, entities=ALL)
    code, number = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'faux' WHERE CT_Num = ?", (code,)
    )
    workspace.activate_all()
    workspace.sync(expect=1)  # the account is refused: partial
    pending = workspace.cli_json(
        "records", "--dossier", "nord", "--entity", "contacts", "--label", "pending"
    )
    assert f"{code}:{number}" in {r["sage_key"] for r in pending}
    assert all("waiting for account" in r["error"] for r in pending)

    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'ok@exemple.fr', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
        (code,),
    )
    workspace.sync()
    assert workspace.cli_json("records", "--dossier", "nord", "--label", "pending") == []
    contact = workspace.record("contacts", f"nord:{code}:{number}")
    assert contact["accountId"]["id"] == workspace.account(f"nord:{code}")["id"]


def test_contact_edited_in_ssm_reaches_sage(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    code, number = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
    contact = workspace.record("contacts", f"nord:{code}:{number}")
    workspace.ssm_put("contacts", contact["id"], {"position": "Directrice générale"})
    runs = workspace.sync()
    assert totals(runs, "contacts", "ssm_to_sage")["updated"] == 1
    row = workspace.sage_rows(
        "nord", "SELECT CT_Fonction FROM F_CONTACTT WHERE CT_Num = ? AND CT_No = ?", (code, number)
    )[0]
    assert row[0] == "Directrice générale"
    assert writes(workspace.sync()) == 0


def test_deletion_propagates_only_from_the_side_that_created_the_contact(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    code, number = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
    from_sage = workspace.record("contacts", f"nord:{code}:{number}")
    workspace.ssm_delete("contacts", from_sage["id"])

    account = workspace.account(f"nord:{code}")
    new_id = workspace.ssm_post(
        "contacts",
        {
            "accountId": account["id"],
            "firstName": "Loïc",
            "lastName": "Le Dréan",
            "salesRepId": 2,
        },
    )
    workspace.sync()
    # the Sage-born contact deleted in SSM stays in Sage, flagged for review
    assert workspace.sage_rows(
        "nord", "SELECT 1 FROM F_CONTACTT WHERE CT_Num = ? AND CT_No = ?", (code, number)
    )
    review = workspace.cli_json("records", "--dossier", "nord", "--label", "pending_review")
    assert [r["sage_key"] for r in review] == [f"{code}:{number}"]
    # the SSM-born contact was created in Sage under the account, with the next number
    created = workspace.sage_rows(
        "nord", "SELECT CT_Num, CT_No FROM F_CONTACTT WHERE CT_Nom = 'Le Dréan'"
    )
    assert len(created) == 1 and created[0][0] == code
    new_key = f"{created[0][0]}:{created[0][1]}"
    assert workspace.http.get(f"/contacts/{new_id}").json()["extId"] == f"nord:{new_key}"

    workspace.ssm_delete("contacts", new_id)
    runs = workspace.sync()
    assert totals(runs, "contacts", "ssm_to_sage")["deleted"] == 1
    assert not workspace.sage_rows("nord", "SELECT 1 FROM F_CONTACTT WHERE CT_Nom = 'Le Dréan'")


def test_contact_moved_to_another_dossiers_account_is_refused(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, entities=ALL)
    workspace.add_dossier("sud", clients=10, seed=2, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    code, number, name = workspace.sage_rows(
        "nord", "SELECT CT_Num, CT_No, CT_Nom FROM F_CONTACTT LIMIT 1"
    )[0]
    contact = workspace.record("contacts", f"nord:{code}:{number}")
    elsewhere = workspace.account("sud:CL00002")
    workspace.ssm_put("contacts", contact["id"], {"accountId": elsewhere["id"], "lastName": "X"})
    before = {d: workspace.sage_rows(d, "SELECT * FROM F_CONTACTT") for d in ("nord", "sud")}

    workspace.sync(expect=1)
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert [(i["kind"], i["record_key"]) for i in incidents] == [
        ("moved_between_dossiers", f"{code}:{number}")
    ]
    assert "sud" in incidents[0]["message"]
    after = {d: workspace.sage_rows(d, "SELECT * FROM F_CONTACTT") for d in ("nord", "sud")}
    assert after == before
    assert workspace.http.get(f"/contacts/{contact['id']}").json()["lastName"] == "X"
    assert name != "X"


# -- products ---------------------------------------------------------------------------


def test_products_with_family_stock_and_price(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, products=40, entities=ALL)
    workspace.activate_all()
    runs = workspace.sync()
    assert totals(runs, "products")["created"] == 40
    articles = workspace.sage_rows(
        "nord", "SELECT AR_Ref, AR_Design, AR_PrixVen, AR_Sommeil, FA_CodeFamille FROM F_ARTICLE"
    )
    products = {p["extId"]: p for p in workspace.records("products", "nord")}
    assert len(products) == len(articles)
    families = {f["extId"]: f for f in workspace.records("productFamilies", "nord")}
    stock = dict(
        workspace.sage_rows(
            "nord", "SELECT AR_Ref, SUM(CAST(AS_QteSto AS REAL)) FROM F_ARTSTOCK GROUP BY AR_Ref"
        )
    )
    for ref, design, price, dormant, family in articles:
        p = products[f"nord:{ref}"]
        assert p["model"] == design
        assert Decimal(str(p["price"])) == Decimal(price)
        assert p["notAvailable"] is bool(dormant)
        assert p["familyId"]["id"] == families[f"nord:{family}"]["id"]
        assert Decimal(str(p["stock"])) == Decimal(str(stock.get(ref, 0)))
    assert writes(workspace.sync()) == 0


def test_stock_movement_alone_updates_the_product(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, products=20, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    ref, depot = workspace.sage_rows("nord", "SELECT AR_Ref, DE_No FROM F_ARTSTOCK LIMIT 1")[0]
    workspace.sage_execute(
        "nord",
        "UPDATE F_ARTSTOCK SET AS_QteSto = '1234', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f','now') "
        "WHERE AR_Ref = ? AND DE_No = ?",
        (ref, depot),
    )
    runs = workspace.sync()
    assert totals(runs, "products")["updated"] == 1
    total = workspace.sage_rows(
        "nord", "SELECT SUM(CAST(AS_QteSto AS REAL)) FROM F_ARTSTOCK WHERE AR_Ref = ?", (ref,)
    )[0][0]
    assert Decimal(str(workspace.record("products", f"nord:{ref}")["stock"])) == Decimal(str(total))


def test_dormant_and_deleted_products(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, products=20, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    refs = [r[0] for r in workspace.sage_rows("nord", "SELECT AR_Ref FROM F_ARTICLE LIMIT 2")]
    workspace.sage_execute(
        "nord",
        "UPDATE F_ARTICLE SET AR_Sommeil = 1, cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f','now') WHERE AR_Ref = ?",
        (refs[0],),
    )
    workspace.sage_execute("nord", "DELETE FROM F_ARTSTOCK WHERE AR_Ref = ?", (refs[1],))
    workspace.sage_execute("nord", "DELETE FROM F_ARTICLE WHERE AR_Ref = ?", (refs[1],))
    runs = workspace.sync()
    assert totals(runs, "products")["updated"] == 1
    assert totals(runs, "products")["deleted"] == 1
    assert workspace.record("products", f"nord:{refs[0]}")["notAvailable"] is True
    deleted = {p["extId"] for p in workspace.records("products", "nord", deleted=True)}
    assert deleted == {f"nord:{refs[1]}"}


def test_disabling_products_for_one_dossier_stops_only_that(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1, products=20, entities=ALL)
    workspace.add_dossier("sud", clients=10, seed=2, products=20, entities=ALL)
    workspace.activate_all()
    workspace.sync()
    workspace.dossiers["nord"]["entities"] = ("clients", "contacts")
    workspace.write_config()
    for dossier_id in ("nord", "sud"):
        workspace.sage_execute(
            dossier_id,
            "UPDATE F_ARTICLE SET AR_PrixVen = '99.90', cbModification = "
            "strftime('%Y-%m-%d %H:%M:%f','now') "
            "WHERE AR_Ref = 'ART000001'",
        )
        workspace.sage_execute(
            dossier_id,
            "UPDATE F_COMPTET SET CT_Ville = 'Lille', cbModification = "
            "strftime('%Y-%m-%d %H:%M:%f','now') "
            "WHERE CT_Num = 'CL00001'",
        )
    runs = workspace.sync()
    by_dossier = {d["dossier_id"]: {r["entity"] for r in d["runs"]} for d in runs}
    assert "products" not in by_dossier["nord"] and "products" in by_dossier["sud"]
    assert Decimal(str(workspace.record("products", "sud:ART000001")["price"])) == Decimal("99.90")
    assert Decimal(str(workspace.record("products", "nord:ART000001")["price"])) != Decimal("99.90")
    assert workspace.account("nord:CL00001")["city"] == "Lille"
    assert workspace.account("sud:CL00001")["city"] == "Lille"
