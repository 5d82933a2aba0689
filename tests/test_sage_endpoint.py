"""The Sage 50FR ODBC endpoint against real drivers: SQLite3 ODBC and psqlODBC."""

from __future__ import annotations

import inspect
import itertools
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from dossiersync.errors import SourceError, SourceUnavailable
from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint, SageMapping, TableMapping
from dossiersync.plugins.sage50fr_odbc import endpoint as endpoint_module
from dossiersync.plugins.sage50fr_odbc.mapping import ColumnMapping
from dossiersync.plugins.sage50fr_odbc.reference_schema import create_reference_schema

from support.postgres import PgServer

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.fixture(scope="module")
def pg_dossier(pg: PgServer) -> str:
    """A reference dossier in PostgreSQL, shared by the module and emptied before each test."""
    connection = pg.odbc_connection_string(pg.create_database("sage_endpoint"))
    create_reference_schema(connection)
    return connection


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty reference dossier in SQLite, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "reference.db"
    create_reference_schema(f"DRIVER={{SQLite3}};Database={path}")
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def dossier(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The connection string of an empty reference dossier."""
    if request.param == "sqlite":
        path = tmp_path / "dossier.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"DRIVER={{SQLite3}};Database={path}"
    server: PgServer = request.getfixturevalue("pg")
    connection = str(request.getfixturevalue("pg_dossier"))
    tables = [table.table for table in SageMapping.load().tables.values()]
    server.execute("sage_endpoint", "; ".join(f'DELETE FROM "{name}"' for name in tables))  # noqa: S608
    return connection


@pytest.fixture
def endpoint(dossier: str) -> Iterator[Sage50OdbcEndpoint]:
    with Sage50OdbcEndpoint(dossier, fetch_size=100) as opened:
        yield opened


def _site(tmp_path: Path, document: dict[str, Any], name: str) -> tuple[SageMapping, str]:
    """A SQLite dossier ``name`` laid out as the mapping ``document`` says (written to a
    file and loaded as a site's would be): the mapping and the connection string."""
    path = tmp_path / f"{name}-mapping.json"
    path.write_text(json.dumps(document))
    mapping = SageMapping.load(path)
    connection = f"DRIVER={{SQLite3}};Database={tmp_path / f'{name}.db'}"
    create_reference_schema(connection, mapping)
    return mapping, connection


def _client(code: str, modified: str = "2024-03-01 09:00:00.000", **values: Any) -> dict[str, Any]:
    return {"CT_Num": code, "CT_Intitule": f"Client {code}", "cbModification": modified, **values}


# -- round trips -----------------------------------------------------------------------


def test_client_round_trips_with_accents(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert(
        "F_COMPTET",
        {
            "CT_Num": "CLÉ001",
            "CT_Intitule": "Société Générale d'Équipements",
            "CT_Type": 0,
            "CT_Prospect": 1,
            "CT_Ville": "Orléans",
            "CT_Complement": "Forfait 12 € HT",
            "CT_DateCreate": "2023-12-31",
        },
    )
    endpoint.commit()

    row = endpoint.get("F_COMPTET", ["CLÉ001"])

    assert row is not None
    assert row["CT_Intitule"] == "Société Générale d'Équipements"
    assert row["CT_Complement"] == "Forfait 12 € HT"
    assert row["CT_Ville"] == "Orléans"
    assert row["CT_Prospect"] == 1
    assert row["CT_DateCreate"] == "2023-12-31"
    assert TIMESTAMP.match(row["cbModification"])
    assert isinstance(row["cbMarq"], int)


def test_money_stays_exact(endpoint: Sage50OdbcEndpoint) -> None:
    prices = {
        "A-BIG": Decimal("123456789012345678.123456"),
        "A-TENTH": Decimal("0.1"),
        "A-NEG": Decimal("-42.50"),
        "A-ZERO": Decimal("0.000000"),
    }
    for ref, price in prices.items():
        endpoint.insert("F_ARTICLE", {"AR_Ref": ref, "AR_Design": "Pièce", "AR_PrixVen": price})
    endpoint.commit()

    read = {row["AR_Ref"]: row["AR_PrixVen"] for row in endpoint.read("F_ARTICLE")}

    assert read == prices
    assert all(isinstance(value, Decimal) for value in read.values())
    assert str(read["A-NEG"]) == "-42.5"
    assert str(read["A-ZERO"]) == "0"


def test_update_changes_values_and_modification_time(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1", modified="2020-01-01 00:00:00.000"))

    changed = endpoint.update("F_COMPTET", ["CL1"], {"CT_Ville": "Besançon", "CT_Sommeil": 1})
    missing = endpoint.update("F_COMPTET", ["NOPE"], {"CT_Ville": "Nulle part"})

    row = endpoint.get("F_COMPTET", ["CL1"], ["CT_Ville", "CT_Sommeil", "cbModification"])
    assert (changed, missing) == (1, 0)
    assert row is not None
    assert row["CT_Ville"] == "Besançon"
    assert row["CT_Sommeil"] == 1
    assert row["cbModification"] > "2020-01-01 00:00:00.000"


def test_update_refuses_to_change_the_key(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1"))

    assert endpoint.update("F_COMPTET", ["CL1"], {"CT_Num": "CL1", "CT_Ville": "Metz"}) == 1
    with pytest.raises(SourceError, match="CT_Num cannot change"):
        endpoint.update("F_COMPTET", ["CL1"], {"CT_Num": "CL2"})


def test_delete_removes_the_row(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1"))

    assert endpoint.delete("F_COMPTET", ["CL1"]) == 1
    assert endpoint.delete("F_COMPTET", ["CL1"]) == 0
    assert endpoint.get("F_COMPTET", ["CL1"]) is None


def test_composite_keys_address_one_row(endpoint: Sage50OdbcEndpoint) -> None:
    for depot in (1, 2):
        endpoint.insert(
            "F_ARTSTOCK", {"AR_Ref": "A1", "DE_No": depot, "AS_QteSto": Decimal(depot * 10)}
        )

    endpoint.update("F_ARTSTOCK", ["A1", 2], {"AS_QteSto": Decimal("7.25")})

    assert endpoint.get("F_ARTSTOCK", ["A1", 1], ["AS_QteSto"]) == {"AS_QteSto": Decimal(10)}
    assert endpoint.get("F_ARTSTOCK", ["A1", 2], ["AS_QteSto"]) == {"AS_QteSto": Decimal("7.25")}


def test_identity_is_set_by_the_database_only(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1"))
    endpoint.insert("F_COMPTET", _client("CL2"))

    marks = [row["cbMarq"] for row in endpoint.read("F_COMPTET", ["cbMarq"])]

    assert len(set(marks)) == 2
    with pytest.raises(SourceError, match="cbMarq is set by the database"):
        endpoint.insert("F_COMPTET", {**_client("CL3"), "cbMarq": 99})


def test_insert_sets_the_modification_time_from_the_source_clock(
    endpoint: Sage50OdbcEndpoint,
) -> None:
    before = endpoint.clock()
    endpoint.insert("F_COMPTET", {"CT_Num": "CL1"})

    row = endpoint.get("F_COMPTET", ["CL1"], ["cbModification"])

    assert row is not None
    assert row["cbModification"] >= before


def test_text_comes_back_without_trailing_spaces(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1", CT_Adresse="3 rue Haute   "))

    assert endpoint.get("F_COMPTET", ["CL1"], ["CT_Adresse"]) == {"CT_Adresse": "3 rue Haute"}


def test_timestamps_are_written_in_one_text_form(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1", modified="2024-05-06T07:08:09.123456"))

    row = endpoint.get("F_COMPTET", ["CL1"], ["cbModification"])

    assert row == {"cbModification": "2024-05-06 07:08:09.123"}


def test_values_that_do_not_fit_are_refused(endpoint: Sage50OdbcEndpoint) -> None:
    with pytest.raises(SourceError, match=r"F_COMPTET\.CT_Intitule"):
        endpoint.insert("F_COMPTET", _client("CL1", CT_Intitule="x" * 36))
    with pytest.raises(SourceError, match=r"F_COMPTET\.CT_Prospect"):
        endpoint.insert("F_COMPTET", _client("CL1", CT_Prospect="oui"))
    with pytest.raises(SourceError, match="no column CT_Inconnu"):
        endpoint.insert("F_COMPTET", _client("CL1", CT_Inconnu=1))


def test_database_errors_name_the_table(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("CL1"))

    with pytest.raises(SourceError, match=r"insert into F_COMPTET \(table F_COMPTET\)"):
        endpoint.insert("F_COMPTET", _client("CL1"))


# -- reading ---------------------------------------------------------------------------


class _CountingCursor:
    """A cursor that records how rows leave the database."""

    def __init__(self, cursor: pyodbc.Cursor, fetched: list[int]) -> None:
        self._cursor = cursor
        self._fetched = fetched

    def execute(self, sql: str, params: Any) -> _CountingCursor:
        self._cursor.execute(sql, params)
        return self

    def fetchmany(self, size: int) -> list[pyodbc.Row]:
        rows = self._cursor.fetchmany(size)
        self._fetched.append(len(rows))
        return rows

    def close(self) -> None:
        self._cursor.close()


class _CountingEndpoint(Sage50OdbcEndpoint):
    def __init__(self, connection: str, **options: Any) -> None:
        super().__init__(connection, **options)
        self.fetched: list[int] = []

    def _cursor(self) -> Any:
        return _CountingCursor(super()._cursor(), self.fetched)


def _insert_clients(endpoint: Sage50OdbcEndpoint, count: int) -> None:
    """Many clients at once, written straight through the driver to keep set-up short."""
    cursor = endpoint._connection().cursor()
    cursor.executemany(
        'INSERT INTO "F_COMPTET" ("CT_Num", "CT_Intitule", "cbModification") VALUES (?, ?, ?)',
        [(f"CL{n:05d}", f"Client CL{n:05d}", "2024-03-01 09:00:00.000") for n in range(count)],
    )
    endpoint.commit()


def test_read_streams_rows_in_batches(dossier: str) -> None:
    with _CountingEndpoint(dossier, fetch_size=100) as endpoint:
        _insert_clients(endpoint, 3000)

        rows = endpoint.read("F_COMPTET", ["CT_Num", "CT_Intitule"])
        lazy = inspect.isgenerator(rows)
        assert lazy
        assert endpoint.fetched == []

        first = next(rows)
        assert first == {"CT_Num": "CL00000", "CT_Intitule": "Client CL00000"}
        assert endpoint.fetched == [100]

        codes = [first["CT_Num"], *(row["CT_Num"] for row in rows)]

    assert codes == [f"CL{number:05d}" for number in range(3000)]
    assert max(endpoint.fetched) == 100
    assert sum(endpoint.fetched) == 3000


def test_since_includes_rows_modified_at_the_boundary(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("OLD", modified="2024-01-01 10:00:00.000"))
    endpoint.insert("F_COMPTET", _client("EDGE", modified="2024-01-01 10:00:00.001"))
    endpoint.insert("F_COMPTET", _client("NEW", modified="2024-01-02 08:00:00.000"))

    rows = endpoint.read("F_COMPTET", ["CT_Num"], since="2024-01-01 10:00:00.001")

    assert [row["CT_Num"] for row in rows] == ["EDGE", "NEW"]


def test_count_counts_what_read_would_stream(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("OLD", modified="2024-01-01 10:00:00.000"))
    endpoint.insert("F_COMPTET", _client("EDGE", modified="2024-01-01 10:00:00.001", CT_Prospect=1))
    endpoint.insert("F_COMPTET", _client("NEW", modified="2024-01-02 08:00:00.000"))
    since = "2024-01-01 10:00:00.001"

    assert endpoint.count("F_COMPTET") == 3
    assert endpoint.count("F_COMPTET", since=since) == 2
    assert endpoint.count("F_COMPTET", since=since, where={"CT_Prospect": 1}) == 1
    assert endpoint.count("F_COMPTET", where={"CT_Ville": "nulle part"}) == 0


def test_where_filters_by_equality(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_COMPTET", _client("A", CT_Prospect=1, CT_Ville="Orléans"))
    endpoint.insert("F_COMPTET", _client("B", CT_Prospect=1, CT_Ville="Lyon"))
    endpoint.insert("F_COMPTET", _client("C", CT_Prospect=0, CT_Ville="Orléans"))
    endpoint.insert("F_COMPTET", _client("D", CT_Prospect=1))

    def codes(**where: Any) -> list[str]:
        return [row["CT_Num"] for row in endpoint.read("F_COMPTET", ["CT_Num"], where=where)]

    assert codes(CT_Prospect=1, CT_Ville="Orléans") == ["A"]
    assert codes(CT_Prospect=1, CT_Ville=None) == ["D"]
    assert codes(CT_Ville="Robert'); DROP TABLE F_COMPTET; --") == []
    assert len(codes()) == 4


def test_where_and_since_combine_with_money(endpoint: Sage50OdbcEndpoint) -> None:
    endpoint.insert("F_ARTICLE", {"AR_Ref": "A1", "AR_PrixVen": Decimal("9.90")})
    endpoint.insert("F_ARTICLE", {"AR_Ref": "A2", "AR_PrixVen": Decimal("19.90")})

    rows = endpoint.read(
        "F_ARTICLE", ["AR_Ref"], since="2000-01-01 00:00:00.000", where={"AR_PrixVen": "9.9"}
    )

    assert list(rows) == [{"AR_Ref": "A1"}]


def test_keys_filter_reads_only_those_keys(endpoint: Sage50OdbcEndpoint) -> None:
    _insert_clients(endpoint, 1500)
    wanted = [[f"CL{number:05d}"] for number in range(0, 1500, 2)]

    rows = endpoint.read("F_COMPTET", ["CT_Num"], keys=[*wanted, ["ABSENT"], wanted[0]])

    assert [row["CT_Num"] for row in rows] == [code for (code,) in wanted]


def test_keys_filter_on_a_composite_key(endpoint: Sage50OdbcEndpoint) -> None:
    for ref, depot in itertools.product(("A1", "A2"), (1, 2, 3)):
        endpoint.insert("F_ARTSTOCK", {"AR_Ref": ref, "DE_No": depot, "AS_QteSto": depot})

    rows = endpoint.read("F_ARTSTOCK", ["AR_Ref", "DE_No"], keys=[("A2", 3), ("A1", 2)])

    assert sorted((row["AR_Ref"], row["DE_No"]) for row in rows) == [("A1", 2), ("A2", 3)]
    assert list(endpoint.read("F_ARTSTOCK", keys=[])) == []


def test_keys_may_give_the_leading_key_columns_only(endpoint: Sage50OdbcEndpoint) -> None:
    for ref, depot in itertools.product(("A1", "A2", "A3"), (1, 2)):
        endpoint.insert("F_ARTSTOCK", {"AR_Ref": ref, "DE_No": depot, "AS_QteSto": depot})

    rows = endpoint.read("F_ARTSTOCK", ["AR_Ref", "DE_No"], keys=[("A3",), ("A1",)])

    assert sorted((row["AR_Ref"], row["DE_No"]) for row in rows) == [
        ("A1", 1),
        ("A1", 2),
        ("A3", 1),
        ("A3", 2),
    ]
    with pytest.raises(ValueError, match="must all give 1 column"):
        list(endpoint.read("F_ARTSTOCK", keys=[("A1",), ("A1", 2)]))
    with pytest.raises(ValueError, match="key of 2 column"):
        list(endpoint.read("F_ARTSTOCK", keys=[("A1", 2, 3)]))


def test_a_key_longer_than_its_column_is_looked_up_not_refused(
    endpoint: Sage50OdbcEndpoint,
) -> None:
    """Reading by a key compares it: a value the column cannot hold matches nothing
    instead of failing the read as a write of it would."""
    endpoint.insert("F_COMPTET", _client("CL00001"))
    too_long = "CL" + "9" * 40

    assert list(endpoint.read("F_COMPTET", ["CT_Num"], keys=[(too_long,), ("CL00001",)])) == [
        {"CT_Num": "CL00001"}
    ]
    assert list(endpoint.read("F_COMPTET", ["CT_Num"], where={"CT_Num": too_long})) == []
    with pytest.raises(SourceError, match="at most 17 fit"):
        endpoint.insert("F_COMPTET", _client(too_long))


def test_sqlite_reads_come_in_pages_that_miss_and_repeat_nothing(
    endpoint: Sage50OdbcEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite is read a page at a time after the last key (the driver would otherwise
    hold a whole result in memory): a composite key, a filter and page ends falling
    inside one article's rows lose or repeat no row."""
    if endpoint.dialect != "sqlite":
        pytest.skip("pages are how SQLite is read; PostgreSQL streams with a cursor")
    monkeypatch.setattr(endpoint_module, "_PAGE_ROWS", 4)
    expected = []
    for ref, depot in itertools.product(("A1", "A2", "B 1", "B1"), (1, 2, 3, 10)):
        endpoint.insert("F_ARTSTOCK", {"AR_Ref": ref, "DE_No": depot, "AS_QteSto": depot % 2})
        expected.append((ref, depot))
    expected.sort()
    cursor, statements = endpoint._cursor, []

    def counted() -> Any:
        statements.append(1)
        return cursor()

    monkeypatch.setattr(endpoint, "_cursor", counted)

    assert list(endpoint.read_keys("F_ARTSTOCK")) == expected
    assert len(statements) == 5  # 4 full pages of 4 rows, then an empty one
    odd = [
        row["AR_Ref"] + str(row["DE_No"])
        for row in endpoint.read("F_ARTSTOCK", ["AR_Ref", "DE_No"], where={"AS_QteSto": 1})
    ]
    assert odd == [ref + str(depot) for ref, depot in expected if depot % 2]
    assert endpoint.count("F_ARTSTOCK", where={"AS_QteSto": 1}) == len(odd)


def test_read_keys_streams_key_tuples_in_order(endpoint: Sage50OdbcEndpoint) -> None:
    for ref, depot in (("B", 2), ("A", 1), ("B", 1)):
        endpoint.insert("F_ARTSTOCK", {"AR_Ref": ref, "DE_No": depot, "AS_QteSto": 1})

    assert list(endpoint.read_keys("F_ARTSTOCK")) == [("A", 1), ("B", 1), ("B", 2)]
    assert list(endpoint.read_keys("F_ARTSTOCK", where={"DE_No": 1})) == [("A", 1), ("B", 1)]


def test_clock_moves_forward_in_the_source_format(endpoint: Sage50OdbcEndpoint) -> None:
    first = endpoint.clock()
    endpoint.commit()
    time.sleep(0.01)
    second = endpoint.clock()

    assert TIMESTAMP.match(first)
    assert TIMESTAMP.match(second)
    assert second > first


def test_high_water_mark_is_the_latest_modification(endpoint: Sage50OdbcEndpoint) -> None:
    assert endpoint.high_water_mark("F_COMPTET") is None

    endpoint.insert("F_COMPTET", _client("A", modified="2024-02-01 12:00:00.250"))
    endpoint.insert("F_COMPTET", _client("B", modified="2024-02-03 08:30:00.000"))

    assert endpoint.high_water_mark("F_COMPTET") == "2024-02-03 08:30:00.000"


def test_next_code_follows_the_greatest_numbered_code(endpoint: Sage50OdbcEndpoint) -> None:
    assert endpoint.next_code("F_COMPTET", "CT_Num", "P", 8) == "P0000001"

    for code in ("P0000007", "P0000123", "P00001230", "P000012A", "Q0000999", "CL00001"):
        endpoint.insert("F_COMPTET", _client(code))

    assert endpoint.next_code("F_COMPTET", "CT_Num", "P", 8) == "P0000124"
    assert endpoint.next_code("F_COMPTET", "CT_Num", "CL", 7) == "CL00002"


def test_transaction_rolls_back_on_error(dossier: str, endpoint: Sage50OdbcEndpoint) -> None:
    with pytest.raises(RuntimeError):
        with endpoint.transaction():
            endpoint.insert("F_COMPTET", _client("GONE"))
            raise RuntimeError("stop")
    with endpoint.transaction():
        endpoint.insert("F_COMPTET", _client("KEPT"))

    assert endpoint.get("F_COMPTET", ["GONE"]) is None
    with Sage50OdbcEndpoint(dossier) as other:
        assert [row["CT_Num"] for row in other.read("F_COMPTET", ["CT_Num"])] == ["KEPT"]


def test_held_writes_are_seen_by_reads_and_never_committed(
    dossier: str, endpoint: Sage50OdbcEndpoint
) -> None:
    with endpoint.transaction():
        endpoint.insert("F_COMPTET", _client("BEFORE"))
    endpoint.hold_writes()
    with endpoint.transaction():
        endpoint.insert("F_COMPTET", _client("HELD"))
        endpoint.update("F_COMPTET", ["BEFORE"], {"CT_Ville": "Albi"})
    with pytest.raises(RuntimeError), endpoint.transaction():
        endpoint.insert("F_COMPTET", _client("UNDONE"))
        raise RuntimeError("this record's writes go, the others stay held")
    seen = [row["CT_Num"] for row in endpoint.read("F_COMPTET", ["CT_Num"])]
    assert seen == ["BEFORE", "HELD"]  # a read in between does not end the transaction
    assert endpoint.get("F_COMPTET", ["BEFORE"], ["CT_Ville"]) == {"CT_Ville": "Albi"}
    with pytest.raises(SourceError):
        endpoint.rollback()
    endpoint.close()

    with Sage50OdbcEndpoint(dossier) as other:
        rows = list(other.read("F_COMPTET", ["CT_Num", "CT_Ville"]))
    assert [row["CT_Num"] for row in rows] == ["BEFORE"]
    assert rows[0]["CT_Ville"] != "Albi"


def test_reference_schema_creation_is_idempotent(dossier: str) -> None:
    create_reference_schema(dossier)

    with Sage50OdbcEndpoint(dossier) as endpoint:
        assert endpoint.high_water_mark("F_DOCLIGNE") is None


# -- mappings --------------------------------------------------------------------------


def _mapping_document() -> dict[str, Any]:
    text = files("dossiersync.schemas").joinpath("sage50fr/reference-mapping.json").read_text()
    document: dict[str, Any] = json.loads(text)
    return document


def test_reference_mapping_covers_the_reference_schema() -> None:
    mapping = SageMapping.load()

    assert set(mapping.tables) == {
        "F_COMPTET",
        "F_CONTACTT",
        "F_FAMILLE",
        "F_ARTICLE",
        "F_ARTSTOCK",
        "F_DOCENTETE",
        "F_DOCLIGNE",
    }
    clients = mapping.table("F_COMPTET")
    assert clients.key == ("CT_Num",)
    assert clients.modified == "cbModification"
    assert clients.identity == "cbMarq"
    assert clients.column("CT_Intitule") == ColumnMapping("CT_Intitule", "CT_Intitule", "text", 35)
    assert mapping.table("F_DOCLIGNE").key == ("DO_Domaine", "DO_Type", "DO_Piece", "DL_Ligne")


def test_a_mapping_with_an_unusable_table_name_is_refused(tmp_path: Path) -> None:
    document = _mapping_document()
    document["tables"]["F_COMPTET"]["table"] = "F_COMPTET\nDROP"
    path = tmp_path / "site-mapping.json"
    path.write_text(json.dumps(document))

    with pytest.raises(SourceError) as raised:
        SageMapping.load(path)

    assert str(path) in str(raised.value)
    assert "F_COMPTET" in str(raised.value)
    for name in ("F_COMPTET\x00", "   ", ""):
        with pytest.raises(SourceError, match="not a usable name"):
            TableMapping(
                logical="F_COMPTET",
                table=name,
                key=("CT_Num",),
                modified=None,
                identity=None,
                columns={"CT_Num": ColumnMapping("CT_Num", "CT_Num", "text")},
            )


def test_names_with_spaces_accents_and_quotes_are_quoted_never_run(tmp_path: Path) -> None:
    document = _mapping_document()
    families = document["tables"]["F_FAMILLE"]
    families["table"] = 'Fam"; DROP TABLE "F_ARTICLE'
    families["columns"]["FA_CodeFamille"]["column"] = "Code famille"
    families["columns"]["FA_Intitule"]["column"] = 'Libellé "court"'
    families["columns"]["cbModification"]["column"] = "Dernière modification"
    mapping, connection = _site(tmp_path, document, "site")

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint.insert("F_FAMILLE", {"FA_CodeFamille": "MOB", "FA_Intitule": "Mobilier"})
        endpoint.update("F_FAMILLE", ["MOB"], {"FA_Intitule": "Mobilier de bureau"})
        endpoint.commit()
        rows = list(endpoint.read("F_FAMILLE", ["FA_CodeFamille", "FA_Intitule"]))
        tables = {row[2] for row in endpoint._connection().cursor().tables()}

    assert rows == [{"FA_CodeFamille": "MOB", "FA_Intitule": "Mobilier de bureau"}]
    assert {'Fam"; DROP TABLE "F_ARTICLE', "F_ARTICLE"} <= tables


def _ciel_like_documents(tmp_path: Path) -> tuple[SageMapping, str]:
    """A mapping whose headers hold a text type, no domain, and whose lines point to their
    header through its integer id; with an absent prospect flag and a constant type."""
    document = _mapping_document()
    clients = document["tables"]["F_COMPTET"]["columns"]
    clients["CT_Type"] = {"type": "int", "constant": 0}
    clients["CT_Prospect"] = {"type": "int", "absent": True}
    headers = document["tables"]["F_DOCENTETE"]["columns"]
    headers["DO_Domaine"] = {"type": "int", "constant": 0}
    headers["DO_Type"] = {
        "column": "Type",
        "type": "int",
        "values": [["Devis", 0], ["Commande", 1], ["Facture", 6]],
    }
    lines = document["tables"]["F_DOCLIGNE"]
    lines["columns"]["DO_Domaine"] = {"type": "int", "constant": 0}
    lines["columns"]["DO_Type"] = {"type": "int", "constant": 1}
    lines["columns"]["DO_Piece"] = {
        "column": "Id pièce",
        "type": "text",
        "length": 13,
        "refers": {"table": "F_DOCENTETE", "column": "DO_Piece", "by": "cbMarq"},
    }
    mapping, connection = _site(tmp_path, document, "ciel-like")
    return mapping, connection


def test_constant_and_absent_columns_stand_in_for_missing_ones(tmp_path: Path) -> None:
    mapping, connection = _ciel_like_documents(tmp_path)

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint.insert("F_COMPTET", _client("CL1", CT_Type=0, CT_Prospect=1))
        endpoint.commit()
        row = endpoint.get("F_COMPTET", ["CL1"], ["CT_Num", "CT_Type", "CT_Prospect"])
        customers = list(endpoint.read("F_COMPTET", ["CT_Num"], where={"CT_Type": 0}))
        suppliers = list(endpoint.read("F_COMPTET", ["CT_Num"], where={"CT_Type": 1}))
        counted = endpoint.count("F_COMPTET", where={"CT_Type": 1})
        with pytest.raises(SourceError, match=r"F_COMPTET\.CT_Type.*holds 0"):
            endpoint.insert("F_COMPTET", _client("SUP1", CT_Type=1))
        with pytest.raises(SourceError, match=r"CT_Prospect does not exist"):
            list(endpoint.read("F_COMPTET", ["CT_Num"], where={"CT_Prospect": 1}))
        physical = [
            d[0] for d in endpoint._connection().execute('SELECT * FROM "F_COMPTET"').description
        ]

    assert row == {"CT_Num": "CL1", "CT_Type": 0}
    assert customers == [{"CT_Num": "CL1"}]
    assert suppliers == []
    assert counted == 0
    assert "CT_Type" not in physical and "CT_Prospect" not in physical


def test_value_maps_and_references_translate_both_ways(tmp_path: Path) -> None:
    mapping, connection = _ciel_like_documents(tmp_path)
    header = {"DO_Domaine": 0, "DO_Tiers": "CL1", "DO_Date": "2024-03-01"}

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint.insert("F_DOCENTETE", {**header, "DO_Type": 1, "DO_Piece": "BC001"})
        endpoint.insert("F_DOCENTETE", {**header, "DO_Type": 6, "DO_Piece": "FA001"})
        for piece, line in (("BC001", 1000), ("BC001", 2000), ("FA001", 1000)):
            endpoint.insert(
                "F_DOCLIGNE",
                {"DO_Domaine": 0, "DO_Type": 1, "DO_Piece": piece, "DL_Ligne": line, "DL_Qte": 2},
            )
        with pytest.raises(SourceError, match=r"DO_Type: 3 has no value"):
            endpoint.insert("F_DOCENTETE", {**header, "DO_Type": 3, "DO_Piece": "BL001"})
        with pytest.raises(SourceError, match=r"no row\(s\) of F_DOCENTETE"):
            endpoint.insert(
                "F_DOCLIGNE", {"DO_Domaine": 0, "DO_Type": 1, "DO_Piece": "XX9", "DL_Ligne": 1}
            )
        endpoint.commit()
        orders = list(endpoint.read("F_DOCENTETE", ["DO_Piece", "DO_Type"], where={"DO_Type": 1}))
        unknown = list(endpoint.read("F_DOCENTETE", ["DO_Piece"], where={"DO_Type": 3}))
        lines = list(
            endpoint.read("F_DOCLIGNE", ["DO_Piece", "DL_Ligne"], where={"DO_Piece": "BC001"})
        )
        by_key = list(endpoint.read("F_DOCLIGNE", ["DL_Ligne"], keys=[(0, 1, "FA001")]))
        stored = (
            endpoint._connection()
            .execute(
                'SELECT h."Type" AS t, l."Id pièce" AS id FROM "F_DOCLIGNE" l '
                'JOIN "F_DOCENTETE" h ON h."cbMarq" = l."Id pièce" ORDER BY l.rowid'
            )
            .fetchall()
        )

    assert orders == [{"DO_Piece": "BC001", "DO_Type": 1}]
    assert unknown == []
    assert lines == [
        {"DO_Piece": "BC001", "DL_Ligne": 1000},
        {"DO_Piece": "BC001", "DL_Ligne": 2000},
    ]
    assert by_key == [{"DL_Ligne": 1000}]
    assert [row[0] for row in stored] == ["Commande", "Commande", "Facture"]
    assert isinstance(stored[0][1], int)


def test_a_value_the_value_map_does_not_know_is_an_error_naming_it(tmp_path: Path) -> None:
    mapping, connection = _ciel_like_documents(tmp_path)
    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint._connection().execute(
            'INSERT INTO "F_DOCENTETE" ("Type", "DO_Piece") VALUES (?, ?)', "Avoir", "AV001"
        )
        endpoint.commit()
        with pytest.raises(SourceError, match=r"DO_Type .* holds 'Avoir'.*'Devis', 'Commande'"):
            list(endpoint.read("F_DOCENTETE", ["DO_Piece", "DO_Type"]))


def test_a_mapping_whose_key_is_not_a_column_is_refused(tmp_path: Path) -> None:
    document = _mapping_document()
    document["tables"]["F_FAMILLE"]["key"] = ["FA_Code"]
    path = tmp_path / "site-mapping.json"
    path.write_text(json.dumps(document))

    with pytest.raises(SourceError, match=r"site-mapping\.json.*F_FAMILLE.*FA_Code"):
        SageMapping.load(path)


def test_a_site_mapping_renames_tables_and_columns(tmp_path: Path) -> None:
    document = _mapping_document()
    clients = document["tables"]["F_COMPTET"]
    clients["table"] = "Cli"
    clients["columns"]["CT_Num"]["column"] = "Code"
    clients["columns"]["CT_Intitule"]["column"] = "RaisonSociale"
    mapping, connection = _site(tmp_path, document, "site")

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint.insert("F_COMPTET", _client("CL1", CT_Intitule="Épicerie Fine"))
        endpoint.commit()
        row = endpoint.get("F_COMPTET", ["CL1"], ["CT_Intitule"])
        physical = endpoint._connection().execute('SELECT "Code", "RaisonSociale" FROM "Cli"')

        assert row == {"CT_Intitule": "Épicerie Fine"}
        assert [tuple(r) for r in physical.fetchall()] == [("CL1", "Épicerie Fine")]


def test_a_date_modification_column_is_read_by_whole_days(tmp_path: Path) -> None:
    document = _mapping_document()
    document["tables"]["F_FAMILLE"]["columns"]["cbModification"]["type"] = "date"
    mapping, connection = _site(tmp_path, document, "ciel")

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        for code, day in (("OLD", "2024-03-01"), ("SAME", "2024-03-02"), ("NEW", "2024-03-03")):
            endpoint.insert("F_FAMILLE", {"FA_CodeFamille": code, "cbModification": day})
        mark = endpoint.high_water_mark("F_FAMILLE")
        rows = endpoint.read("F_FAMILLE", ["FA_CodeFamille"], since="2024-03-02 17:45:00.000")

        assert [row["FA_CodeFamille"] for row in rows] == ["NEW", "SAME"]
        assert mark == "2024-03-03 00:00:00.000"


# -- reachability and discovery --------------------------------------------------------


def test_a_missing_sqlite_folder_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "dossier.db"
    endpoint = Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={missing}")

    with pytest.raises(SourceUnavailable, match=r"data source \(driver SQLite3\)") as raised:
        endpoint.open()
    assert "no-such-folder" not in str(raised.value)  # the configuration's to show


def test_a_finished_read_leaves_the_sqlite_file_free_for_writers(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "dossier.db"
    shutil.copyfile(sqlite_template, path)

    with Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}") as endpoint:
        assert list(endpoint.read("F_COMPTET")) == []
        assert endpoint.get("F_COMPTET", ["CL1"]) is None
        endpoint.clock()
        endpoint.high_water_mark("F_COMPTET")

        with sqlite3.connect(path, timeout=0.1) as sage:
            sage.execute('INSERT INTO "F_COMPTET" ("CT_Num") VALUES (?)', ("CL1",))

        assert endpoint.get("F_COMPTET", ["CL1"], ["CT_Num"]) == {"CT_Num": "CL1"}


def test_a_locked_sqlite_file_is_unavailable(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "dossier.db"
    shutil.copyfile(sqlite_template, path)
    writer = Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}")
    blocked = Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path};Timeout=100")
    try:
        writer.insert("F_COMPTET", _client("CL1"))

        with pytest.raises(SourceUnavailable, match="locked"):
            blocked.insert("F_COMPTET", _client("CL2"))
    finally:
        blocked.close()
        writer.close()


def test_sage_can_save_while_a_long_read_hands_out_its_rows(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """A pass takes its time with each row it reads (an API call per batch): the read of
    a SQLite dossier ends its transaction before handing a page out, so Sage writing
    the file meanwhile is not kept waiting until the pass ends."""
    path = tmp_path / "dossier.db"
    shutil.copyfile(sqlite_template, path)
    endpoint = Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}")
    try:
        with endpoint.transaction():
            for n in range(1, 4):
                endpoint.insert("F_COMPTET", _client(f"CL{n}"))
        rows = endpoint.read("F_COMPTET", ["CT_Num"])
        assert next(rows)["CT_Num"] == "CL1"  # the read is under way
        sage = sqlite3.connect(path, timeout=0.2)  # Sage saving a client
        with sage:
            sage.execute("UPDATE F_COMPTET SET CT_Ville = 'Rodez' WHERE CT_Num = 'CL3'")
        sage.close()
        assert [r["CT_Num"] for r in rows] == ["CL2", "CL3"]
    finally:
        endpoint.close()


@pytest.mark.postgres
def test_an_unreachable_server_is_unavailable_and_the_password_stays_secret(
    pg: PgServer,
) -> None:
    connection = pg.odbc_connection_string("postgres").replace(f"PORT={pg.port}", "PORT=1")
    endpoint = Sage50OdbcEndpoint(connection, login_timeout=2)

    with pytest.raises(SourceUnavailable) as raised:
        endpoint.open()

    message = str(raised.value)
    assert pg.password not in message
    # named by its driver; the server and user the driver quotes are replaced
    assert "(driver PostgreSQL Unicode)" in message and "port 1 failed" in message
    assert "PWD" not in message and "<server>" in message
    assert raised.value.__cause__ is None
    assert pg.password not in repr(endpoint)


@pytest.mark.postgres
def test_a_wrong_password_is_unavailable_and_not_echoed(pg: PgServer) -> None:
    connection = pg.odbc_connection_string("postgres").replace(
        f"PWD={pg.password}", "PWD={wrong;secret}"
    )

    with pytest.raises(SourceUnavailable) as raised:
        Sage50OdbcEndpoint(connection).open()

    assert "wrong;secret" not in str(raised.value)
    assert "password authentication failed" in str(raised.value)


def test_data_sources_lists_matching_dsns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "agence.db"
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text(
        "[Sage_Agence_Lyon]\nDriver=SQLite3\nDatabase=" + str(database) + "\n\n"
        "[sage_agence_paris]\nDriver=SQLite3\nDatabase=" + str(tmp_path / "paris.db") + "\n\n"
        "[Comptabilite]\nDriver=PostgreSQL Unicode\nServername=127.0.0.1\n"
    )
    monkeypatch.setenv("ODBCINI", str(odbc_ini))

    found = Sage50OdbcEndpoint.data_sources(["SAGE_*"])

    assert found == {"Sage_Agence_Lyon": "SQLite3", "sage_agence_paris": "SQLite3"}
    assert "Comptabilite" in Sage50OdbcEndpoint.data_sources([])
    create_reference_schema("DSN=Sage_Agence_Lyon")
    with Sage50OdbcEndpoint("DSN=Sage_Agence_Lyon") as endpoint:
        assert endpoint.dialect == "sqlite"
    assert database.exists()


def test_psqlodbc_connections_stream_their_result_sets() -> None:
    from dossiersync.plugins.sage50fr_odbc.endpoint import streaming_connection

    pg = "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;DATABASE=d;UID=u;PWD=p"
    assert streaming_connection(pg, 250) == pg + ";UseDeclareFetch=1;Fetch=250"
    own = pg + ";UseDeclareFetch=0"
    assert streaming_connection(own, 250) == own
    sqlite = "DRIVER={SQLite3};Database=/tmp/x.db"
    # not psqlODBC: no streaming options; SQLite3 never creates a missing dossier file
    assert streaming_connection(sqlite, 250) == sqlite + ";NoCreat=1"
    assert streaming_connection(sqlite + ";NoCreat=0", 250) == sqlite + ";NoCreat=0"


def test_a_table_filter_keeps_the_rows_of_the_logical_table_only(tmp_path: Path) -> None:
    """One physical table of customers and suppliers: the clients' table is its rows
    whose "Nature" is "C"; a supplier is never read, counted, changed or deleted."""
    document = _mapping_document()
    document["tables"]["F_COMPTET"]["table"] = "Tiers"
    document["tables"]["F_COMPTET"]["filter"] = {"Nature": "C"}
    mapping, connection = _site(tmp_path, document, "tiers")

    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        endpoint.insert("F_COMPTET", _client("CL0000001", "2024-03-01 09:00:00.000"))
        endpoint._connection().execute(
            'INSERT INTO "Tiers" ("CT_Num", "CT_Intitule", "Nature", "cbModification") '
            "VALUES ('CL0000009', 'Fournisseur', 'F', '2025-01-01 00:00:00.000')"
        )
        endpoint.commit()
        rows = [r["CT_Num"] for r in endpoint.read("F_COMPTET", ["CT_Num"])]
        counted = endpoint.count("F_COMPTET")
        mark = endpoint.high_water_mark("F_COMPTET")
        supplier = endpoint.get("F_COMPTET", ["CL0000009"])
        updated = endpoint.update("F_COMPTET", ["CL0000009"], {"CT_Intitule": "Changé"})
        deleted = endpoint.delete("F_COMPTET", ["CL0000009"])
        code = endpoint.next_code("F_COMPTET", "CT_Num", "CL", 9)
        endpoint.commit()
        stored = (
            endpoint._connection()
            .execute('SELECT "CT_Num", "CT_Intitule", "Nature" FROM "Tiers" ORDER BY 1')
            .fetchall()
        )

    assert rows == ["CL0000001"] and counted == 1
    assert mark == "2024-03-01 09:00:00.000"
    assert supplier is None and updated == 0 and deleted == 0
    assert code == "CL0000002"
    assert [tuple(r) for r in stored] == [
        ("CL0000001", "Client CL0000001", "C"),
        ("CL0000009", "Fournisseur", "F"),
    ]


def test_the_marks_of_several_tables_are_one_query_equal_to_asking_each(
    endpoint: Sage50OdbcEndpoint,
) -> None:
    for n, prospect in enumerate((1, 0, 0)):
        stamp = f"2024-03-0{n + 1} 09:00:00.{n}00"
        endpoint.insert("F_COMPTET", _client(f"C{n}", stamp, CT_Type=0, CT_Prospect=prospect))
    endpoint.commit()
    watched: list[tuple[str, Any]] = [
        ("F_COMPTET", {"CT_Prospect": 1}),
        ("F_CONTACTT", None),
        ("F_COMPTET", None),
    ]
    one_by_one = [(endpoint.high_water_mark(t), endpoint.count(t, where=w)) for t, w in watched]
    assert one_by_one == [
        ("2024-03-03 09:00:00.200", 1),
        (None, 0),
        ("2024-03-03 09:00:00.200", 3),
    ]
    assert endpoint.marks(watched) == one_by_one
