"""``dossiersync mapping check`` / ``mapping suggest`` against real ODBC catalogues:
SQLite3 ODBC (a demo dossier) and psqlODBC (the throw-away PostgreSQL)."""

from __future__ import annotations

import copy
import itertools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dossiersync.cli import cli
from dossiersync.plugins.sage50fr_odbc.catalogue import (
    Catalogue,
    Finding,
    SourceColumn,
    SourceTable,
    accepts,
    check_table,
    known_layouts,
    plain_name,
    read_catalogue,
    suggest_mapping,
)
from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
from dossiersync.plugins.sage50fr_odbc.endpoint import Sage50OdbcEndpoint
from dossiersync.plugins.sage50fr_odbc.mapping import (
    ColumnMapping,
    SageMapping,
    _validator,
    builtin_layouts,
)
from dossiersync.plugins.sage50fr_odbc.reference_schema import create_reference_schema

from support.postgres import PgServer

ENTITIES = ("clients", "contacts", "products", "orders")
REFERENCE = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas/sage50fr/reference-mapping.json").read_text(
        encoding="utf-8"
    )
)
_databases = itertools.count()


def reference_with(change: Callable[[dict[str, Any]], None]) -> SageMapping:
    """The reference mapping with ``change`` made to its document (for a schema that
    differs from it)."""
    document = copy.deepcopy(REFERENCE)
    change(document)
    return SageMapping.from_document(document, "a changed reference mapping")


def shorter_name_and_text_type(document: dict[str, Any]) -> None:
    """A source whose client names hold 20 characters and whose client type is text."""
    columns = document["tables"]["F_COMPTET"]["columns"]
    columns["CT_Intitule"]["length"] = 20
    columns["CT_Type"] = {"column": "CT_Type", "type": "text", "length": 5}


class Site:
    """A dossier in a configuration file, and SQL on its database."""

    def __init__(self, root: Path, connection: str, run_sql: Callable[[str], None]) -> None:
        self.root = root
        self.connection = connection
        self.run_sql = run_sql
        self.config = root / "dossiersync.toml"
        self.config.write_text(
            "\n".join(
                [
                    "[implementation]",
                    'name = "Test"',
                    'api_url = "http://127.0.0.1:9/api"',
                    'public_key = "public"',
                    'private_key = "private"',
                    "[state]",
                    f'url = "sqlite:///{root / "state.db"}"',
                    "[dossiers.nord]",
                    'name = "Nord"',
                    f"connection = '{connection}'",
                    "entities = [" + ", ".join(f'"{e}"' for e in ENTITIES) + "]",
                ]
            )
            + "\n",
            encoding="utf-8",
        )

    def cli(self, *args: str, expect: int) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args])
        assert result.exit_code == expect, result.output + result.stderr
        if result.exception is not None:  # an exit status, never a crash
            assert isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    def check(self, *args: str, expect: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            self.cli("mapping", "check", "--dossier", "nord", "--json", *args, expect=expect).stdout
        )
        return data


def problems(data: dict[str, Any]) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per entity, the problems as (kind, logical table, logical column)."""
    return {
        e["entity"]: [(p["kind"], p["table"], p["column"]) for p in e["problems"]]
        for e in data["entities"]
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_site(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[SageMapping | None], Site]:
    """A site whose dossier is laid out as a mapping says (default: the reference one):
    a demo dossier (SQLite3 ODBC) or an empty PostgreSQL database (psqlODBC)."""

    def make(mapping: SageMapping | None = None) -> Site:
        if backend == "sqlite":
            path = tmp_path / "nord.db"
            connection = f"DRIVER={{SQLite3}};Database={path}"
            if mapping is None:
                write_demo_dossier(path, clients=5)
            else:
                create_reference_schema(connection, mapping)

            def run_sqlite(sql: str) -> None:
                with sqlite3.connect(path) as conn:
                    conn.executescript(sql)

            return Site(tmp_path, connection, run_sqlite)
        pg: PgServer = request.getfixturevalue("pg")
        database = pg.create_database(f"mapping_check_{next(_databases)}")
        connection = pg.odbc_connection_string(database)
        create_reference_schema(connection, mapping)
        return Site(tmp_path, connection, lambda sql: pg.execute(database, sql))

    return make


def secret_of(site: Site) -> str | None:
    fields = dict(part.split("=", 1) for part in site.connection.split(";") if "=" in part)
    return fields.get("PWD")


# -- check -------------------------------------------------------------------------------


def test_a_source_laid_out_as_the_mapping_checks_clean(make_site: Callable[..., Site]) -> None:
    site = make_site()
    text = site.cli("mapping", "check", "--dossier", "nord", expect=0).stdout
    assert "clients (F_COMPTET): ok" in text
    assert "products (F_FAMILLE, F_ARTICLE, F_ARTSTOCK): ok" in text
    assert "orders (F_DOCENTETE, F_DOCLIGNE): ok" in text
    data = site.check(expect=0)
    assert data["ok"] is True
    assert data["dossier_id"] == "nord"
    assert [(e["entity"], e["tables"], e["ok"], e["problems"]) for e in data["entities"]] == [
        ("clients", ["F_COMPTET"], True, []),
        ("contacts", ["F_CONTACTT"], True, []),
        ("products", ["F_FAMILLE", "F_ARTICLE", "F_ARTSTOCK"], True, []),
        ("orders", ["F_DOCENTETE", "F_DOCLIGNE"], True, []),
    ]
    assert "reference mapping" in data["mapping"]
    password = secret_of(site)
    if password:
        assert password not in text
        assert password not in json.dumps(data)
        # named by its driver only: no password, user, server or path (docs/security.md)
        assert data["source"].startswith("(driver ") and "PWD" not in data["source"]


def test_a_dropped_column_a_renamed_table_a_shorter_text_and_a_type_are_reported(
    make_site: Callable[..., Site], backend: str
) -> None:
    site = make_site(reference_with(shorter_name_and_text_type))
    site.run_sql('ALTER TABLE "F_CONTACTT" DROP COLUMN "CT_Fonction"')
    site.run_sql('ALTER TABLE "F_FAMILLE" RENAME TO "FAMILLES"')
    data = site.check(expect=1)
    assert data["ok"] is False
    assert problems(data) == {
        "clients": [
            ("length", "F_COMPTET", "CT_Intitule"),
            ("type", "F_COMPTET", "CT_Type"),
        ],
        "contacts": [("missing_column", "F_CONTACTT", "CT_Fonction")],
        "products": [("missing_table", "F_FAMILLE", None)],
        "orders": [],
    }
    clients = data["entities"][0]["problems"]
    assert clients[0]["expected"] == "text(35)"
    assert clients[0]["found"].lower() == "varchar(20)"
    assert clients[1]["expected"] == "int"
    # only the entities asked for, when some are
    only = site.check("--entity", "orders", "--entity", "clients", expect=1)
    assert [e["entity"] for e in only["entities"]] == ["clients", "orders"]
    assert site.check("--entity", "orders", expect=0)["ok"] is True
    text = site.cli("mapping", "check", "--dossier", "nord", expect=1).stdout
    assert "column CT_Fonction of table F_CONTACTT: the source has no such column" in text
    assert "table F_FAMILLE: the source has no such table" in text
    assert "column CT_Intitule of table F_COMPTET: the mapping says text(35)" in text
    assert "column CT_Type of table F_COMPTET: the mapping says int" in text
    assert "contacts (F_CONTACTT): 1 problem\n" in text
    assert "orders (F_DOCENTETE, F_DOCLIGNE): ok" in text


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=False
)
def test_postgres_names_of_another_case_are_found_and_must_be_spelled_so(
    tmp_path: Path, make_site: Callable[..., Site]
) -> None:
    site = make_site()
    # created without quotes, as many sites do: psqlODBC reports them lower-cased
    site.run_sql('ALTER TABLE "F_COMPTET" RENAME TO f_comptet')
    site.run_sql('ALTER TABLE f_comptet RENAME COLUMN "CT_Intitule" TO ct_intitule')
    data = site.check(expect=1)
    found = data["entities"][0]["problems"]
    assert [(p["kind"], p["column"], p["found"]) for p in found] == [
        ("table_case", None, "f_comptet"),
        ("column_case", "CT_Intitule", "ct_intitule"),
    ]
    # the suggestion spells them as the source does, and then checks clean
    suggested = tmp_path / "suggested.json"
    site.cli("mapping", "suggest", "--dossier", "nord", "--output", str(suggested), expect=0)
    document = json.loads(suggested.read_text(encoding="utf-8"))
    assert document["tables"]["F_COMPTET"]["table"] == "f_comptet"
    assert document["tables"]["F_COMPTET"]["columns"]["CT_Intitule"]["column"] == "ct_intitule"
    site.check("--mapping", str(suggested), expect=0)
    # a mapping file already there is not replaced by a second suggestion, unless asked
    suggested.write_text("{}", encoding="utf-8")
    again = ("mapping", "suggest", "--dossier", "nord", "--output", str(suggested))
    refused = site.cli(*again, expect=2)
    assert "--overwrite" in refused.output + refused.stderr
    assert suggested.read_text(encoding="utf-8") == "{}"
    site.cli(*again, "--overwrite", expect=0)
    site.check("--mapping", str(suggested), expect=0)


def test_a_source_that_cannot_be_reached_is_a_usage_error_without_password(
    make_site: Callable[..., Site], backend: str, tmp_path: Path
) -> None:
    site = make_site()
    wrong = "Wr0ng-Secret-42"
    if backend == "sqlite":
        (tmp_path / "nord.db").unlink()
    else:
        password = secret_of(site)
        assert password
        site = Site(tmp_path, site.connection.replace(password, wrong), site.run_sql)
    for command in ("check", "suggest"):
        result = site.cli("mapping", command, "--dossier", "nord", expect=2)
        said = result.output + result.stderr
        assert "cannot connect to the ODBC data source" in said
        assert wrong not in said
    unknown = site.cli("mapping", "check", "--dossier", "sud", expect=2)
    assert "unknown dossier 'sud'" in unknown.output + unknown.stderr
    broken = tmp_path / "broken-mapping.json"
    broken.write_text('{"version": 1, "tables": {}}', encoding="utf-8")
    invalid = site.cli("mapping", "check", "--dossier", "nord", "--mapping", str(broken), expect=2)
    assert f"mapping file {broken}" in invalid.output + invalid.stderr


# -- suggest -----------------------------------------------------------------------------


def test_suggest_on_an_unchanged_dossier_gives_the_reference_mapping(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    result = site.cli("mapping", "suggest", "--dossier", "nord", expect=0)
    assert json.loads(result.stdout) == REFERENCE
    assert "layout 'reference': 7 of 7 tables and 71 of 71 columns" in result.stderr
    password = secret_of(site)
    if password:
        assert password not in result.stdout + result.stderr


def test_suggest_matches_names_and_reports_what_it_cannot_find(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    site.run_sql('ALTER TABLE "F_COMPTET" RENAME COLUMN "CT_Intitule" TO ct_intitule_x')
    site.run_sql('ALTER TABLE "F_COMPTET" RENAME COLUMN "CT_CodePostal" TO "Ct_Code_Postal"')
    site.run_sql('ALTER TABLE "F_ARTSTOCK" RENAME TO "F_ART_STOCK"')
    output = tmp_path / "suggested.json"
    result = site.cli("mapping", "suggest", "--dossier", "nord", "--output", str(output), expect=1)
    document = json.loads(output.read_text(encoding="utf-8"))
    SageMapping.from_document(document, "the suggestion")  # valid against the schema
    tables = document["tables"]
    assert tables["F_COMPTET"]["columns"]["CT_CodePostal"]["column"] == "Ct_Code_Postal"
    assert tables["F_ARTSTOCK"]["table"] == "F_ART_STOCK"
    # left as the layout says, for a person to complete
    assert tables["F_COMPTET"]["columns"]["CT_Intitule"]["column"] == "CT_Intitule"
    notes = result.stderr
    assert (
        "not found, to complete by hand: column CT_Intitule of table F_COMPTET: "
        "the source has no such column"
    ) in notes
    assert "column CT_CodePostal of F_COMPTET (layout: CT_CodePostal) is Ct_Code_Postal" in notes
    assert "table F_ARTSTOCK (layout: F_ARTSTOCK) is F_ART_STOCK" in notes
    assert result.stdout == ""


# -- the layout choice, on catalogues made by hand --------------------------------------


def _catalogue(tables: dict[str, dict[str, tuple[int, str, int | None]]]) -> Catalogue:
    return Catalogue(
        dialect="postgresql",
        exact_case=True,
        tables={
            name: SourceTable(
                name,
                {
                    column: SourceColumn(column, code, type_name, size, None)
                    for column, (code, type_name, size) in columns.items()
                },
            )
            for name, columns in tables.items()
        },
    )


def test_the_layout_that_finds_most_is_chosen_and_its_lengths_follow_the_catalogue() -> None:
    other: dict[str, Any] = {
        "version": 1,
        "tables": {
            "F_COMPTET": {
                "table": "Client",
                "key": ["CT_Num"],
                "columns": {
                    "CT_Num": {"column": "Code", "type": "text", "length": 17},
                    "CT_Intitule": {"column": "Nom", "type": "text", "length": 35},
                },
            }
        },
    }
    catalogue = _catalogue(
        {"client": {"code": (12, "varchar", 17), "nom": (-9, "varchar", 50), "x": (4, "int4", 10)}}
    )
    suggestion = suggest_mapping(catalogue, {"reference": REFERENCE, "other": other})
    assert suggestion.layout == "other"
    assert suggestion.complete
    assert suggestion.document["tables"]["F_COMPTET"] == {
        "table": "client",
        "key": ["CT_Num"],
        "columns": {
            "CT_Num": {"column": "code", "type": "text", "length": 17},
            "CT_Intitule": {"column": "nom", "type": "text", "length": 50},
        },
    }
    assert other["tables"]["F_COMPTET"]["table"] == "Client"  # the layout itself untouched


def test_every_built_in_layout_file_is_a_layout_and_names_compare_plainly() -> None:
    layouts = known_layouts()
    assert next(iter(layouts)) == "reference"
    folder = Path(__file__).resolve().parent.parent / "schemas" / "sage50fr"
    assert set(layouts) == {
        p.name.removesuffix("-mapping.json") for p in folder.glob("*-mapping.json")
    }
    assert plain_name("Téléphone Portable") == plain_name("telephone_portable")
    assert plain_name("N° pièce") == plain_name("N_piece")
    assert plain_name("CT_Intitule") != plain_name("ct_intitule_x")


@pytest.mark.parametrize(
    ("mapped", "code", "type_name", "digits", "dialect", "fits"),
    [
        ("text", -9, "varchar", None, "postgresql", True),  # psqlODBC's WVARCHAR
        ("text", -10, "text", None, "postgresql", True),
        ("text", 4, "int4", None, "postgresql", False),
        ("int", -5, "int8", None, "postgresql", True),
        ("int", 2, "numeric", 0, "postgresql", True),
        ("int", 2, "numeric", 2, "postgresql", False),
        ("decimal", 2, "numeric", 6, "postgresql", True),
        ("decimal", 7, "float4", None, "postgresql", True),
        ("decimal", -1, "TEXT", None, "sqlite", True),
        ("decimal", -9, "varchar", None, "postgresql", False),
        ("timestamp", 93, "timestamp", None, "postgresql", True),
        ("timestamp", 91, "date", None, "postgresql", False),
        ("timestamp", -1, "TEXT", None, "sqlite", True),
        ("date", 91, "date", None, "postgresql", True),
        ("date", 93, "timestamp", None, "postgresql", True),
        ("date", -1, "TEXT", None, "sqlite", True),
        ("date", -1, "text", None, "postgresql", False),
        ("int", 9999, "SMALLINTEGER", None, "odbc", True),  # an unknown code: its name
    ],
)
def test_which_source_types_hold_each_mapped_type(
    mapped: str, code: int, type_name: str, digits: int | None, dialect: str, fits: bool
) -> None:
    column = ColumnMapping("X", "X", mapped)  # type: ignore[arg-type]
    assert accepts(column, SourceColumn("X", code, type_name, 10, digits), dialect) is fits


def test_a_finding_names_logical_and_physical_names() -> None:
    finding = Finding("missing_column", "F_COMPTET", "Client", "CT_Intitule", "Nom")
    assert finding.text() == (
        "column CT_Intitule (physical column Nom) of table F_COMPTET (physical table Client): "
        "the source has no such column"
    )


# -- what the mapping language says beyond names ---------------------------------------


def ciel_like(document: dict[str, Any]) -> None:
    """Names with spaces and accents, a constant, an absent concept, a value map, lines
    pointing to their header through its integer id."""
    clients = document["tables"]["F_COMPTET"]
    clients["table"] = "Fichier clients"
    clients["columns"]["CT_Intitule"] = {"column": "Nom", "type": "text", "length": 50}
    clients["columns"]["CT_Telephone"] = {"column": "Téléphone", "type": "text", "length": 21}
    clients["columns"]["CT_Type"] = {"type": "int", "constant": 0}
    clients["columns"]["CT_Prospect"] = {"type": "int", "absent": True}
    headers = document["tables"]["F_DOCENTETE"]["columns"]
    headers["DO_Domaine"] = {"type": "int", "constant": 0}
    headers["DO_Type"] = {
        "column": "Type",
        "type": "int",
        "values": [["Devis", 0], ["Commande", 1], ["Facture", 6]],
    }
    lines = document["tables"]["F_DOCLIGNE"]["columns"]
    lines["DO_Domaine"] = {"type": "int", "constant": 0}
    lines["DO_Type"] = {"type": "int", "constant": 1}
    lines["DO_Piece"] = {
        "column": "N° pièce",
        "type": "text",
        "length": 13,
        "refers": {"table": "F_DOCENTETE", "column": "DO_Piece", "by": "cbMarq"},
    }


def test_constants_value_maps_references_and_plain_names_with_spaces(tmp_path: Path) -> None:
    document = copy.deepcopy(REFERENCE)
    ciel_like(document)
    path = tmp_path / "ciel-like-mapping.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    mapping = SageMapping.load(path)
    connection = f"DRIVER={{SQLite3}};Database={tmp_path / 'nord.db'}"
    create_reference_schema(connection, mapping)
    site = Site(tmp_path, connection, lambda sql: None)

    # constants and absent concepts are not looked for; a value map's column holds its
    # Sage values (text), a reference's the other table's id (int)
    assert site.check("--mapping", str(path), expect=0)["ok"] is True
    with Sage50OdbcEndpoint(connection, mapping) as endpoint:
        catalogue = read_catalogue(endpoint)
    suggestion = suggest_mapping(catalogue, {"reference": REFERENCE, "ciel-like": document})
    assert (suggestion.layout, suggestion.complete) == ("ciel-like", True)
    assert suggestion.document == document

    # with the reference layout alone, what it cannot find is said for a person
    from_reference = suggest_mapping(catalogue, {"reference": REFERENCE})
    assert not from_reference.complete
    notes = from_reference.notes()
    assert "not found, to complete by hand: table F_COMPTET: the source has no such table" in notes


def test_a_value_map_and_a_reference_are_typed_by_what_their_column_holds() -> None:
    document = copy.deepcopy(REFERENCE)
    ciel_like(document)
    mapping = SageMapping.from_document(document, "a ciel-like mapping")
    names = ("cbMarq", "DL_Ligne", "N° pièce", "Type")
    columns: dict[str, tuple[int, str, int | None]] = {name: (4, "INTEGER", 10) for name in names}
    catalogue = _catalogue({"F_DOCENTETE": columns, "F_DOCLIGNE": columns})
    found = [
        (f.kind, f.column, f.expected)
        for f in check_table(mapping.table("F_DOCENTETE"), catalogue, mapping)
        + check_table(mapping.table("F_DOCLIGNE"), catalogue, mapping)
        if f.column in ("DO_Type", "DO_Piece", "DO_Domaine")
    ]
    # the header's text values do not fit an integer column; the line's integer id does;
    # constants are not looked for
    assert found == [("type", "DO_Type", "text"), ("missing_column", "DO_Piece", "text(13)")]


@pytest.mark.parametrize("layout", builtin_layouts())
def test_every_built_in_layout_matches_the_mapping_schema(layout: str) -> None:
    # loading a built-in layout does not check it against the schema: this does
    errors = list(_validator().iter_errors(known_layouts()[layout]))
    assert errors == []
    assert SageMapping.from_document(known_layouts()[layout], layout).tables


@pytest.mark.parametrize("layout", builtin_layouts())
def test_a_dossier_in_a_built_in_layout_checks_clean_and_is_suggested_back(
    make_site: Callable[..., Site], layout: str
) -> None:
    site = make_site(SageMapping.load(layout))
    assert site.check("--mapping", layout, expect=0)["ok"] is True
    result = site.cli("mapping", "suggest", "--dossier", "nord", expect=0)
    assert json.loads(result.stdout) == known_layouts()[layout]
    assert f"starting from the built-in layout '{layout}'" in result.stderr


def test_a_column_an_entity_reads_and_the_mapping_lacks_is_reported(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    document = copy.deepcopy(REFERENCE)
    del document["tables"]["F_COMPTET"]["columns"]["CT_Ville"]
    del document["tables"]["F_DOCLIGNE"]["columns"]["DL_Qte"]
    path = tmp_path / "short-mapping.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    data = site.check("--mapping", str(path), expect=1)
    assert {k: v for k, v in problems(data).items() if v} == {
        "clients": [("not_mapped", "F_COMPTET", "CT_Ville")],
        "orders": [("not_mapped", "F_DOCLIGNE", "DL_Qte")],
    }
    assert data["entities"][0]["problems"][0]["message"].startswith(
        "column CT_Ville of table F_COMPTET: the mapping has no such column, which the entity reads"
    )


def test_a_table_filter_column_the_source_lacks_is_reported() -> None:
    def share_a_table(document: dict[str, Any]) -> None:
        document["tables"]["F_FAMILLE"]["filter"] = {"Nature": "F"}

    mapping = reference_with(share_a_table)
    families = mapping.table("F_FAMILLE")
    typed = {"text": (12, "VARCHAR", 35), "timestamp": (93, "TIMESTAMP", None)}
    columns = {c.column: typed[c.type] for c in families.columns.values()}
    lacking = _catalogue({"F_FAMILLE": dict(columns)})
    having = _catalogue({"F_FAMILLE": {**columns, "Nature": (12, "VARCHAR", 1)}})

    assert [(f.kind, f.physical_column) for f in check_table(families, lacking)] == [
        ("missing_column", "Nature")
    ]
    assert check_table(families, having) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=False)
def test_what_the_source_names_is_printed_with_its_control_characters_escaped(
    make_site: Callable[..., Site],
) -> None:
    # a SQLite column's declared type is any text the file holds: one that clears the
    # screen must not do so when the check quotes it
    site = make_site()
    site.run_sql(
        'ALTER TABLE "F_COMPTET" DROP COLUMN "CT_Type";'
        'ALTER TABLE "F_COMPTET" ADD COLUMN "CT_Type" "VARCHAR\x1b[2J";'
    )
    data = site.check(expect=1)
    found = [p["found"] for p in data["entities"][0]["problems"] if p["kind"] == "type"]
    assert found == ["VARCHAR\x1b[2J"]  # JSON says it as it is (\u001b)
    text = site.cli("mapping", "check", "--dossier", "nord", expect=1).stdout
    # shown as an escape; printed raw, click drops the sequence when its output is not a
    # terminal (as here) and a terminal acts on it
    assert "the source has VARCHAR\\e[2J" in text
    assert "\x1b" not in text
