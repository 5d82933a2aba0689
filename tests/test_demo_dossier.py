"""Demo dossiers: deterministic French data in the reference schema, readable over ODBC."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dossiersync.cli import cli
from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint, SageMapping
from dossiersync.plugins.sage50fr_odbc.demo_dossier import DemoSummary, write_demo_dossier
from dossiersync.plugins.sage50fr_odbc.endpoint import normalise

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
EMAIL = re.compile(
    r"^[a-z0-9-]+(\.[a-z0-9-]+)+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9-]+)*\.[a-z]{2,}$"
)
ACCENTED = re.compile(r"[àâçéèêëîïôûùüÿœÉÈÊÂÔ]")
CENT = Decimal("0.01")
MAPPING = SageMapping.load()


def _clients(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute('SELECT * FROM "F_COMPTET" ORDER BY "CT_Num"').fetchall()


def _rows(path: Path, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as stored, ordered by its key."""
    key = ", ".join(f'"{name}"' for name in MAPPING.table(table).key)
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        query = f'SELECT * FROM "{table}" ORDER BY {key}'  # noqa: S608
        return [dict(row) for row in connection.execute(query)]


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _ean13_valid(code: str) -> bool:
    weights = [1, 3] * 6 + [1]
    if len(code) != 13 or not code.isdigit():
        return False
    return sum(int(c) * w for c, w in zip(code, weights, strict=True)) % 10 == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    return path, write_demo_dossier(path, clients=400, seed=7)


def test_same_seed_gives_the_same_rows(tmp_path: Path, demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    again = write_demo_dossier(tmp_path / "again.db", clients=400, seed=7)

    assert again == DemoSummary(**{**summary.__dict__, "path": again.path})
    for table in MAPPING.tables:
        assert _rows(again.path, table) == _rows(path, table), table


def test_other_seeds_give_other_names_under_the_same_codes(
    tmp_path: Path, demo: tuple[Path, DemoSummary]
) -> None:
    path, _ = demo
    other = write_demo_dossier(tmp_path / "other.db", clients=300, seed=8)

    first = {row[0]: row[1] for row in _clients(path)}
    second = {row[0]: row[1] for row in _clients(other.path)}

    assert set(second) <= set(first)
    assert sorted(first)[:3] == ["CL00001", "CL00002", "CL00003"]
    assert sum(first[code] != second[code] for code in second) > 250

    def codes(where: Path, table: str, column: str) -> set[Any]:
        return {row[column] for row in _rows(where, table)}

    assert codes(path, "F_FAMILLE", "FA_CodeFamille") == codes(
        other.path, "F_FAMILLE", "FA_CodeFamille"
    )
    refs = codes(other.path, "F_ARTICLE", "AR_Ref")
    assert refs <= codes(path, "F_ARTICLE", "AR_Ref")
    assert min(refs) == "ART000001"
    assert len(refs) == other.products == 150
    pieces = codes(other.path, "F_DOCENTETE", "DO_Piece")
    assert {"BC00001", "BC00030", "FA00001", "FA00008"} <= pieces
    assert pieces <= codes(path, "F_DOCENTETE", "DO_Piece")
    designs = {row["AR_Ref"]: row["AR_Design"] for row in _rows(path, "F_ARTICLE")}
    assert (
        sum(designs[row["AR_Ref"]] != row["AR_Design"] for row in _rows(other.path, "F_ARTICLE"))
        > 100
    )


def test_a_table_stream_does_not_move_the_others(
    tmp_path: Path, demo: tuple[Path, DemoSummary]
) -> None:
    path, _ = demo
    fewer = write_demo_dossier(tmp_path / "fewer.db", clients=400, seed=7, contacts=10, orders=5)

    assert _rows(fewer.path, "F_COMPTET") == _rows(path, "F_COMPTET")
    assert _rows(fewer.path, "F_ARTICLE") == _rows(path, "F_ARTICLE")
    assert _rows(fewer.path, "F_ARTSTOCK") == _rows(path, "F_ARTSTOCK")


def test_clients_look_like_french_companies(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    rows = _clients(path)
    names = [row[1] for row in rows]

    assert summary.clients == len(rows) == 400
    assert all(0 < len(name) <= 35 for name in names)
    assert sum(1 for name in names if ACCENTED.search(name)) > 40
    assert 40 < summary.prospects < 130
    assert summary.prospects == sum(1 for row in rows if row[3] == 1)
    assert 0 < summary.dormant == sum(1 for row in rows if row[15] == 1)
    assert {row[2] for row in rows} == {0}


def test_identifiers_are_well_formed(demo: tuple[Path, DemoSummary]) -> None:
    path, _ = demo
    for row in _clients(path):
        vat, siret = row[12], row[13]
        assert re.fullmatch(r"FR\d{11}", vat)
        assert vat[4:] == siret[:9]
        assert int(vat[2:4]) == (12 + 3 * (int(siret[:9]) % 97)) % 97
        assert re.fullmatch(r"\d{14}", siret)
        assert _luhn_valid(siret[:9])
        assert _luhn_valid(siret)
        assert re.fullmatch(r"\d{5}", row[6])
        assert "@" in row[10]
        assert row[11].startswith("www.")


def test_every_value_fits_its_column(demo: tuple[Path, DemoSummary]) -> None:
    path, _ = demo
    for name, table in MAPPING.tables.items():
        rows = _rows(path, name)
        assert rows, name
        for column in table.columns.values():
            values = [row[column.column] for row in rows if row[column.column] is not None]
            if column.length is not None:
                assert max(len(value) for value in values) <= column.length, column.logical
            if column.type == "decimal":
                # exactly what the connector itself writes to a SQLite dossier
                assert all(isinstance(value, str) for value in values)
                assert all(value == format(normalise(column, value), "f") for value in values)
                assert all(Decimal(value) == Decimal(value).quantize(CENT) for value in values)
            if column.type == "timestamp":
                assert all(TIMESTAMP.match(value) for value in values), column.logical
                assert max(values) < "2024-01-09", column.logical


def test_contacts_belong_to_clients_and_look_french(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    clients = {row["CT_Num"]: row for row in _rows(path, "F_COMPTET")}
    contacts = _rows(path, "F_CONTACTT")
    numbers: dict[str, list[int]] = defaultdict(list)
    for contact in contacts:
        numbers[contact["CT_Num"]].append(contact["CT_No"])

    assert summary.contacts == len(contacts) == 600
    assert set(numbers) <= set(clients)
    assert all(found == list(range(1, len(found) + 1)) for found in numbers.values())
    per_client = Counter(len(numbers.get(code, [])) for code in clients)
    assert set(per_client) == {0, 1, 2, 3}
    assert {contact["CT_Civilite"] for contact in contacts} <= {0, 1, 2}
    assert {0, 1} <= {contact["CT_Civilite"] for contact in contacts}
    assert sum(1 for c in contacts if ACCENTED.search(c["CT_Nom"] + c["CT_Prenom"])) > 30
    assert any(contact["CT_Fonction"] == "Gérant" for contact in contacts)
    assert any(contact["CT_Fonction"] == "Gérante" for contact in contacts)
    assert all(contact["CT_Fonction"] for contact in contacts)
    for contact in contacts:
        email = contact["CT_EMail"]
        assert EMAIL.match(email), email
        assert email.isascii()
        assert email.split("@")[1] == clients[contact["CT_Num"]]["CT_EMail"].split("@")[1]
        for phone in (contact["CT_Telephone"], contact["CT_TelPortable"]):
            assert phone is None or re.fullmatch(r"0\d( \d\d){4}", phone)
        if contact["CT_TelPortable"]:
            assert contact["CT_TelPortable"][:2] in ("06", "07")


def test_contact_emails_fold_accented_names() -> None:
    from dossiersync.plugins.sage50fr_odbc.demo_dossier import _mailbox

    assert _mailbox("Hélène") == "helene"
    assert _mailbox("Le Gall") == "le-gall"
    assert _mailbox("D'Œuvray") == "doeuvray"


def test_products_have_families_prices_and_barcodes(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    families = _rows(path, "F_FAMILLE")
    products = _rows(path, "F_ARTICLE")
    codes = {family["FA_CodeFamille"] for family in families}

    assert summary.families == len(families) and 8 <= len(families) <= 12
    assert {"BOUL", "PATIS", "QUINC"} <= codes
    assert any(ACCENTED.search(family["FA_Intitule"]) for family in families)
    assert summary.products == len(products) == 200
    assert [p["AR_Ref"] for p in products] == [f"ART{n:06d}" for n in range(1, 201)]
    assert {p["FA_CodeFamille"] for p in products} <= codes
    assert len({p["FA_CodeFamille"] for p in products}) == len(codes)
    assert sum(1 for p in products if ACCENTED.search(p["AR_Design"])) > 50
    assert 1 <= sum(p["AR_Sommeil"] for p in products) <= 25
    assert {p["AR_Sommeil"] for p in products} == {0, 1}
    for product in products:
        sale, cost = Decimal(product["AR_PrixVen"]), Decimal(product["AR_PrixAch"])
        assert Decimal("0.10") <= cost < sale
        assert sale == sale.quantize(CENT) and cost == cost.quantize(CENT)
        assert re.fullmatch(r"3\d{12}", product["AR_CodeBarre"])
        assert _ean13_valid(product["AR_CodeBarre"])
        assert product["AR_DateModif"] == product["cbModification"][:10]
    assert _ean13_valid("3017620422003")  # the helper itself agrees with a real EAN
    assert not _ean13_valid("3017620422004")


def test_stock_rows_cover_active_products_only(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    active = {p["AR_Ref"] for p in _rows(path, "F_ARTICLE") if not p["AR_Sommeil"]}
    stock = _rows(path, "F_ARTSTOCK")
    depots: dict[str, list[int]] = defaultdict(list)
    for row in stock:
        depots[row["AR_Ref"]].append(row["DE_No"])

    assert summary.stock == len(stock)
    assert set(depots) == active
    assert {tuple(found) for found in depots.values()} == {(1,), (1, 2)}
    quantities = [Decimal(row["AS_QteSto"]) for row in stock]
    assert sum(1 for q in quantities if q == q.to_integral_value()) > len(quantities) * 0.7
    for row in stock:
        in_stock, reserved, ordered = (
            Decimal(row[c]) for c in ("AS_QteSto", "AS_QteRes", "AS_QteCom")
        )
        assert 0 <= reserved <= in_stock and ordered >= 0


def _documents(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[tuple[int, str], list[dict[str, Any]]]]:
    headers = _rows(path, "F_DOCENTETE")
    lines: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for line in _rows(path, "F_DOCLIGNE"):
        lines[(line["DO_Type"], line["DO_Piece"])].append(line)
    return headers, lines


def test_orders_and_invoices_add_up(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    headers, lines = _documents(path)
    clients = {row["CT_Num"]: row for row in _rows(path, "F_COMPTET")}
    products = {row["AR_Ref"]: row for row in _rows(path, "F_ARTICLE")}
    orders = [h for h in headers if h["DO_Type"] == 1]
    invoices = [h for h in headers if h["DO_Type"] == 6]

    assert {h["DO_Domaine"] for h in headers} == {0}
    assert summary.orders == len(orders) == 40
    assert summary.invoices == len(invoices) == 10
    assert [h["DO_Piece"] for h in orders] == [f"BC{n:05d}" for n in range(1, 41)]
    assert [h["DO_Piece"] for h in invoices] == [f"FA{n:05d}" for n in range(1, 11)]
    assert summary.order_lines == sum(len(lines[(1, h["DO_Piece"])]) for h in orders)
    assert summary.invoice_lines == sum(len(lines[(6, h["DO_Piece"])]) for h in invoices)
    assert set(lines) == {(h["DO_Type"], h["DO_Piece"]) for h in headers}
    assert {h["DO_Statut"] for h in orders} == {0, 1, 2}
    assert [h["DO_Date"] for h in orders] == sorted(h["DO_Date"] for h in orders)
    assert any(h["DO_Ref"] for h in headers) and any(h["DO_Ref"] is None for h in headers)
    discounts = set()
    for header in headers:
        customer = clients[header["DO_Tiers"]]
        assert customer["CT_Prospect"] == 0 and customer["CT_Sommeil"] == 0
        assert header["DO_Date"] <= header["cbModification"][:10]
        document = lines[(header["DO_Type"], header["DO_Piece"])]
        assert 1 <= len(document) <= 5
        assert [line["DL_Ligne"] for line in document] == [
            1000 * n for n in range(1, len(document) + 1)
        ]
        assert len({line["AR_Ref"] for line in document}) == len(document)
        total = Decimal(0)
        for line in document:
            product = products[line["AR_Ref"]]
            assert product["AR_Sommeil"] == 0
            assert line["DL_Design"] == product["AR_Design"]
            assert line["DL_PrixUnitaire"] == product["AR_PrixVen"]
            discount = Decimal(line["DL_Remise01REM_Valeur"])
            discounts.add(discount)
            quantity, price = Decimal(line["DL_Qte"]), Decimal(line["DL_PrixUnitaire"])
            expected = (quantity * price * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
            assert Decimal(line["DL_MontantHT"]) == expected
            assert line["cbModification"] == header["cbModification"]
            total += expected
        assert Decimal(header["DO_TotalHT"]) == total
        assert Decimal(header["DO_TotalTTC"]) == (total * Decimal("1.2")).quantize(
            CENT, ROUND_HALF_UP
        )
    assert discounts == {0, 5, 10}


def test_explicit_counts_are_kept_and_zero_means_none(tmp_path: Path) -> None:
    bare = write_demo_dossier(
        tmp_path / "bare.db", clients=30, seed=1, contacts=0, products=0, orders=0
    )
    for table in (
        "F_CONTACTT",
        "F_FAMILLE",
        "F_ARTICLE",
        "F_ARTSTOCK",
        "F_DOCENTETE",
        "F_DOCLIGNE",
    ):
        assert _rows(bare.path, table) == [], table
    assert (bare.contacts, bare.families, bare.products, bare.stock) == (0, 0, 0, 0)
    assert (bare.orders, bare.order_lines, bare.invoices, bare.invoice_lines) == (0, 0, 0, 0)
    assert len(_clients(bare.path)) == 30

    no_orders = write_demo_dossier(tmp_path / "no-orders.db", clients=30, seed=1, orders=0)
    assert no_orders.contacts == 45 and no_orders.products == 15
    assert _rows(no_orders.path, "F_DOCENTETE") == []

    no_catalogue = write_demo_dossier(tmp_path / "no-catalogue.db", clients=30, seed=1, products=0)
    assert (no_catalogue.families, no_catalogue.orders, no_catalogue.invoices) == (0, 0, 0)

    exact = write_demo_dossier(
        tmp_path / "exact.db", clients=10, seed=1, contacts=47, products=3, orders=7
    )
    assert (exact.contacts, exact.products, exact.orders, exact.invoices) == (47, 3, 7, 2)
    assert max(Counter(c["CT_Num"] for c in _rows(exact.path, "F_CONTACTT")).values()) >= 5


def test_impossible_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contacts need clients"):
        write_demo_dossier(tmp_path / "a.db", clients=0, contacts=3)
    with pytest.raises(ValueError, match="orders need clients and products"):
        write_demo_dossier(tmp_path / "b.db", clients=10, products=0, orders=2)
    with pytest.raises(ValueError, match="negative"):
        write_demo_dossier(tmp_path / "c.db", clients=10, products=-1)
    assert list(tmp_path.iterdir()) == []

    empty = write_demo_dossier(tmp_path / "empty.db", clients=0)
    assert (empty.clients, empty.contacts, empty.orders) == (0, 0, 0)
    assert empty.products == 10


def test_dates_come_from_the_seed_not_from_today(tmp_path: Path) -> None:
    first = write_demo_dossier(tmp_path / "a.db", clients=50, seed=3)
    time.sleep(0.01)
    second = write_demo_dossier(tmp_path / "b.db", clients=50, seed=3)

    rows = _clients(first.path)
    assert [row[16:18] for row in rows] == [row[16:18] for row in _clients(second.path)]
    assert all(TIMESTAMP.match(row[17]) and row[16] <= row[17][:10] for row in rows)
    assert max(row[17] for row in rows) < "2026-01-01"
    for table in ("F_CONTACTT", "F_ARTICLE", "F_ARTSTOCK", "F_DOCENTETE"):
        assert _rows(first.path, table) == _rows(second.path, table)
        assert (
            max(row["cbModification"] for row in _rows(first.path, table))
            <= "2024-01-04 08:00:00.000"
        )


def test_summary_reads_on_one_line() -> None:
    summary = DemoSummary(Path("x.db"), 0, 200, 45, 4, 301, 10, 100, 180, 20, 61, 4, 12)
    single = DemoSummary(Path("y.db"), 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1)

    assert str(summary) == (
        "200 clients (45 prospects, 4 dormant), 301 contacts, 10 families, 100 products, "
        "180 stock rows, 20 orders (61 lines), 4 invoices (12 lines)"
    )
    assert str(single) == (
        "1 client (1 prospect, 0 dormant), 1 contact, 1 family, 1 product, "
        "1 stock row, 1 order (1 line), 1 invoice (1 line)"
    )


def test_demo_dossier_reads_through_the_sqlite_odbc_driver(
    demo: tuple[Path, DemoSummary],
) -> None:
    path, summary = demo

    with Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}", fetch_size=64) as endpoint:
        tables = {name: list(endpoint.read(name)) for name in MAPPING.tables}
        prospects = list(endpoint.read_keys("F_COMPTET", where={"CT_Prospect": 1}))
        invoices = list(endpoint.read_keys("F_DOCENTETE", where={"DO_Type": 6}))
        article = tables["F_ARTICLE"][0]
        same_price = list(
            endpoint.read_keys("F_ARTICLE", where={"AR_PrixVen": article["AR_PrixVen"]})
        )
        high_water_mark = endpoint.high_water_mark("F_COMPTET")

    counts = {name: len(rows) for name, rows in tables.items()}
    assert counts == {
        "F_COMPTET": summary.clients,
        "F_CONTACTT": summary.contacts,
        "F_FAMILLE": summary.families,
        "F_ARTICLE": summary.products,
        "F_ARTSTOCK": summary.stock,
        "F_DOCENTETE": summary.orders + summary.invoices,
        "F_DOCLIGNE": summary.order_lines + summary.invoice_lines,
    }
    assert len(prospects) == summary.prospects
    assert len(invoices) == summary.invoices
    assert [article["AR_Ref"]] in [list(key) for key in same_price]
    rows = tables["F_COMPTET"]
    assert rows[0]["CT_Num"] == "CL00001"
    assert rows[0]["CT_Pays"] == "France"
    assert high_water_mark == max(row["cbModification"] for row in rows)
    assert isinstance(article["AR_PrixVen"], Decimal)
    assert any(ACCENTED.search(row["FA_Intitule"]) for row in tables["F_FAMILLE"])
    line = tables["F_DOCLIGNE"][0]
    assert isinstance(line["DL_MontantHT"], Decimal) and isinstance(line["DL_Ligne"], int)


def test_an_existing_file_is_kept_unless_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "dossier.db"
    write_demo_dossier(path, clients=5, seed=1)

    with pytest.raises(FileExistsError):
        write_demo_dossier(path, clients=10, seed=1)
    assert len(_clients(path)) == 5

    write_demo_dossier(path, clients=10, seed=1, overwrite=True)
    assert len(_clients(path)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dossier.db"]


def test_cli_writes_the_counts_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    args = ["--clients", "60", "--contacts", "25", "--products", "40", "--orders", "8"]
    runner = CliRunner()

    result = runner.invoke(cli, ["demo-dossier", str(path), *args, "--seed", "5"])
    expected = write_demo_dossier(
        tmp_path / "direct.db", clients=60, contacts=25, products=40, orders=8, seed=5
    )

    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: {expected}\n"
    assert "25 contacts" in result.output and "8 orders" in result.output
    assert _rows(path, "F_DOCLIGNE") == _rows(expected.path, "F_DOCLIGNE")

    again = runner.invoke(cli, ["demo-dossier", str(path), *args, "--seed", "5"])
    assert again.exit_code == 1 and "exists" in again.output

    as_json = runner.invoke(
        cli, ["demo-dossier", str(path), "--clients", "20", "--overwrite", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["clients"] == 20 and data["contacts"] == 30 and data["products"] == 10
    assert data["orders"] == 3 and data["invoices"] == 1
    assert data["path"] == str(path.resolve())

    refused = runner.invoke(cli, ["demo-dossier", str(path), "--clients", "5", "--orders", "-1"])
    assert refused.exit_code == 2
    impossible = runner.invoke(
        cli, ["demo-dossier", str(tmp_path / "x.db"), "--clients", "0", "--contacts", "2"]
    )
    assert impossible.exit_code == 1 and "contacts need clients" in impossible.output


def test_five_thousand_clients_get_proportional_defaults(tmp_path: Path) -> None:
    summary = write_demo_dossier(tmp_path / "big.db", clients=5000, seed=2)

    assert summary.clients == 5000
    assert summary.contacts == 7500 and summary.products == 2500 and summary.orders == 500


def test_twenty_thousand_articles(tmp_path: Path) -> None:
    summary = write_demo_dossier(tmp_path / "catalogue.db", clients=50, products=20000, seed=4)

    assert summary.products == 20000
    assert 20000 < summary.stock < 30000
    with sqlite3.connect(summary.path) as connection:
        last = connection.execute('SELECT MAX("AR_Ref") FROM "F_ARTICLE"').fetchone()[0]
    assert last == "ART020000"
