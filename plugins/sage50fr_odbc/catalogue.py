"""What an ODBC data source holds, compared with what a mapping needs of it.

``mapping check`` reads the source's catalogue (``cursor.tables()`` /
``cursor.columns()``) and says, per logical table and column, what the mapping names and
the source lacks: a table, a column, a compatible type, a long enough text.  ``mapping
suggest`` starts from the built-in layout that finds most of the catalogue (every
``schemas/sage50fr/<name>-mapping.json``), puts the catalogue's own spellings and text
lengths in it, and matches what the layout does not find by name (case, accents, spaces
and underscores aside), for a person to review.

Nothing here reads a row: only the catalogue, through the endpoint's own connection.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import pyodbc

from dossiersync.plugin import SourceError, said

from .endpoint import Sage50OdbcEndpoint
from .mapping import (
    ColumnMapping,
    ColumnType,
    SageMapping,
    TableMapping,
    builtin_layouts,
    check_physical,
)

LAYOUT_SUFFIX = "-mapping.json"

# ODBC SQL type codes (sql.h / sqlext.h), grouped as our five column types see them
_BOUNDED_TEXT = {1, 12, -8, -9}  # CHAR, VARCHAR, WCHAR, WVARCHAR
_TEXT = _BOUNDED_TEXT | {-1, -10}  # + LONGVARCHAR, WLONGVARCHAR
_INTEGER = {-7, -6, 5, 4, -5}  # BIT, TINYINT, SMALLINT, INTEGER, BIGINT
_EXACT = {2, 3}  # NUMERIC, DECIMAL
_APPROXIMATE = {6, 7, 8}  # FLOAT, REAL, DOUBLE
_DATE = {91, 9}  # TYPE_DATE, DATE (ODBC 2)
_TIMESTAMP = {93, 11}  # TYPE_TIMESTAMP, TIMESTAMP (ODBC 2)
#: SQL_QUOTED_IDENTIFIER_CASE's answer for quoted names compared case included
_IC_SENSITIVE = 3

#: words of a driver's own type name, for a type code outside the standard ones
_TYPE_WORDS: tuple[tuple[str, str], ...] = (
    ("timestamp", "timestamp"),
    ("datetime", "timestamp"),
    ("date", "date"),
    ("char", "text"),
    ("text", "text"),
    ("string", "text"),
    ("bool", "int"),
    ("int", "int"),
    ("numeric", "decimal"),
    ("decimal", "decimal"),
    ("money", "decimal"),
    ("real", "decimal"),
    ("float", "decimal"),
    ("double", "decimal"),
)


@dataclass(frozen=True)
class SourceColumn:
    """One column as the driver describes it."""

    name: str
    data_type: int
    type_name: str
    size: int | None
    digits: int | None

    @property
    def family(self) -> str:
        """``text``, ``int``, ``decimal``, ``timestamp``, ``date`` or ``other``."""
        code = self.data_type
        if code in _TEXT:
            return "text"
        if code in _INTEGER or (code in _EXACT and self.digits == 0):
            return "int"
        if code in _EXACT or code in _APPROXIMATE:
            return "decimal"
        if code in _TIMESTAMP:
            return "timestamp"
        if code in _DATE:
            return "date"
        lowered = self.type_name.lower()
        return next((kind for word, kind in _TYPE_WORDS if word in lowered), "other")

    @property
    def max_length(self) -> int | None:
        """The most characters a text column holds, ``None`` when unbounded or unknown."""
        if self.data_type in _BOUNDED_TEXT and self.size:
            return self.size
        return None

    def describe(self) -> str:
        """The type as the driver names it, with its length (``varchar(20)``)."""
        if self.max_length and "(" not in self.type_name:
            return f"{self.type_name}({self.max_length})"
        return self.type_name


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: dict[str, SourceColumn]


@dataclass(frozen=True)
class Catalogue:
    """The tables and columns of one data source.

    ``exact_case``: quoted names must match the source's spelling case included
    (PostgreSQL); otherwise ``ct_num`` and ``CT_Num`` are the same name (SQLite).
    """

    dialect: str
    exact_case: bool
    tables: dict[str, SourceTable]

    def find_table(self, name: str) -> SourceTable | None:
        return _find(self.tables, name)


def _find(named: Mapping[str, Any], name: str) -> Any:
    """The entry named exactly ``name``, else the one named so whatever the case."""
    if name in named:
        return named[name]
    folded = [value for key, value in named.items() if key.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _value(row: Any, name: str) -> Any:
    return getattr(row, name, None)


def read_catalogue(endpoint: Sage50OdbcEndpoint) -> Catalogue:
    """The tables and views of the endpoint's data source with their columns (the
    connection opened when it is not)."""
    dialect = endpoint.dialect
    conn = endpoint._connection()
    with endpoint._errors("read the catalogue of", None):
        quoted_case = conn.getinfo(pyodbc.SQL_QUOTED_IDENTIFIER_CASE)
        cursor = conn.cursor()
        try:
            listed = [
                (row.table_name, _value(row, "table_schem"), _value(row, "table_cat"))
                for row in cursor.tables(tableType="TABLE,VIEW")
                if not (dialect == "sqlite" and str(row.table_name).startswith("sqlite_"))
            ]
            tables: dict[str, SourceTable] = {}
            for name, schema, catalog in listed:
                if name in tables:  # the same name in a later schema: the first one wins
                    continue
                columns = {
                    row.column_name: SourceColumn(
                        name=row.column_name,
                        data_type=int(row.data_type),
                        type_name=str(row.type_name or ""),
                        size=_value(row, "column_size"),
                        digits=_value(row, "decimal_digits"),
                    )
                    for row in cursor.columns(table=name, schema=schema, catalog=catalog)
                    if row.table_name == name
                }
                tables[name] = SourceTable(name, columns)
        finally:
            cursor.close()
    endpoint._release()
    # SQLite compares names without case even quoted, whatever its driver says
    exact_case = dialect != "sqlite" and quoted_case == _IC_SENSITIVE
    return Catalogue(dialect=dialect, exact_case=exact_case, tables=tables)


# -- check -------------------------------------------------------------------------------

#: the column families a mapped type reads and writes safely; SQLite keeps money and
#: times in TEXT columns
_ACCEPTS: dict[str, set[str]] = {
    "text": {"text"},
    "int": {"int"},
    "decimal": {"decimal"},
    "timestamp": {"timestamp"},
    "date": {"date", "timestamp"},
}
_SQLITE_TEXT_FOR = {"decimal", "timestamp", "date"}


def stored_type(column: ColumnMapping, mapping: SageMapping | None = None) -> ColumnType:
    """What the physical column holds: the mapped type; for a value map, its Sage values'
    type; for a reference, the type of the column it holds of the other table."""
    return column.stored_type if mapping is None else mapping.stored_type(column)


def accepts(
    column: ColumnMapping, found: SourceColumn, dialect: str, mapping: SageMapping | None = None
) -> bool:
    """Whether a source column can hold what the mapping says of it."""
    family, wanted = found.family, stored_type(column, mapping)
    if family in _ACCEPTS[wanted]:
        return True
    return dialect == "sqlite" and family == "text" and wanted in _SQLITE_TEXT_FOR


def _bounded_text(column: ColumnMapping) -> bool:
    """Whether the mapping's ``length`` bounds what the physical column holds (a plain
    text column, neither value-mapped nor a reference)."""
    return column.type == "text" and not column.values and column.refers is None


def _expected(column: ColumnMapping, mapping: SageMapping | None = None) -> str:
    if column.length and _bounded_text(column):
        return f"text({column.length})"
    return stored_type(column, mapping)


@dataclass(frozen=True)
class Finding:
    """One thing the mapping needs and the source lacks."""

    kind: str  # not_mapped, missing_table, table_case, missing_column, column_case, type, length
    table: str
    physical_table: str | None
    column: str | None = None
    physical_column: str | None = None
    expected: str | None = None
    found: str | None = None

    def text(self) -> str:
        """The finding in words, logical names first, physical ones when they differ: in
        English (``--json``'s ``message``), said in the command line's language."""
        where = said("table {table}", table=self.table)
        if self.physical_table and self.physical_table != self.table:
            where = said(
                "table {table} (physical table {physical})",
                table=self.table,
                physical=self.physical_table,
            )
        if self.column is not None:
            column = said("column {column}", column=self.column)
            if self.physical_column and self.physical_column != self.column:
                column = said(
                    "column {column} (physical column {physical})",
                    column=self.column,
                    physical=self.physical_column,
                )
            where = said("{column} of {table}", column=column, table=where)
        found, expected = self.found, self.expected
        if self.kind == "not_mapped" and self.column is None:
            return said("{where}: the mapping has no such table", where=where)
        if self.kind == "not_mapped":
            return said(
                "{where}: the mapping has no such column, which the entity reads (mark it "
                "absent when the source cannot hold it)",
                where=where,
            )
        if self.kind == "missing_table":
            return said("{where}: the source has no such table", where=where)
        if self.kind in ("table_case", "column_case"):
            return said(
                "{where}: the source spells it {found}, and names are case-sensitive there: "
                "write it so in the mapping",
                where=where,
                found=found,
            )
        if self.kind == "missing_column":
            return said("{where}: the source has no such column", where=where)
        if self.kind == "type":
            return said(
                "{where}: the mapping says {expected}, the source has {found}",
                where=where,
                expected=expected,
                found=found,
            )
        if self.kind == "length":
            return said(
                "{where}: the mapping says {expected}, the source holds only {found}: longer "
                "values would not fit",
                where=where,
                expected=expected,
                found=found,
            )
        raise KeyError(self.kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "physical_table": self.physical_table,
            "column": self.column,
            "physical_column": self.physical_column,
            "expected": self.expected,
            "found": self.found,
            "message": self.text(),
        }


def check_table(
    table: TableMapping, catalogue: Catalogue, mapping: SageMapping | None = None
) -> list[Finding]:
    """What ``table`` needs that the catalogue lacks (nothing: the table is fine); a
    constant or absent column needs nothing, a reference column is typed as the column
    of ``mapping``'s other table it holds."""
    source = catalogue.find_table(table.table)
    if source is None:
        return [Finding("missing_table", table.logical, table.table)]
    findings = []
    if catalogue.exact_case and source.name != table.table:
        findings.append(Finding("table_case", table.logical, table.table, found=source.name))
    for column in table.columns.values():
        if not column.physical or column.column is None:
            continue
        found: SourceColumn | None = _find(source.columns, column.column)
        at = (table.logical, table.table, column.logical, column.column)
        if found is None:
            findings.append(Finding("missing_column", *at, expected=_expected(column, mapping)))
            continue
        if catalogue.exact_case and found.name != column.column:
            findings.append(Finding("column_case", *at, found=found.name))
        if not accepts(column, found, catalogue.dialect, mapping):
            expected = stored_type(column, mapping)
            findings.append(Finding("type", *at, expected=expected, found=found.describe()))
        elif (
            _bounded_text(column)
            and column.length is not None
            and found.max_length is not None
            and found.max_length < column.length
        ):
            findings.append(
                Finding("length", *at, expected=_expected(column), found=found.describe())
            )
    for name, _value in table.filter:
        if _find(source.columns, name) is None:
            at = (table.logical, table.table, f"filter {name}", name)
            findings.append(Finding("missing_column", *at, expected="a filter column"))
    return findings


@dataclass
class EntityCheck:
    entity: str
    tables: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "tables": list(self.tables),
            "ok": not self.findings,
            "problems": [f.as_dict() for f in self.findings],
        }


def check_mapping(
    mapping: SageMapping,
    catalogue: Catalogue,
    entities: Mapping[str, Mapping[str, Collection[str]]],
) -> list[EntityCheck]:
    """Per entity (name → the logical tables it uses → the logical columns it reads of
    each), what the mapping lacks of them and what the source lacks of the mapping."""
    checks = []
    for entity, tables in entities.items():
        check = EntityCheck(entity, tuple(tables))
        for logical, needed in tables.items():
            table = mapping.tables.get(logical)
            if table is None:
                check.findings.append(Finding("not_mapped", logical, None))
                continue
            check.findings += [
                Finding("not_mapped", logical, table.table, name)
                for name in needed
                if name not in table.columns
            ]
            check.findings.extend(check_table(table, catalogue, mapping))
        checks.append(check)
    return checks


# -- suggest -----------------------------------------------------------------------------


def known_layouts() -> dict[str, Any]:
    """Every built-in layout (``schemas/sage50fr/<name>-mapping.json``) by name, parsed;
    the reference layout first."""
    folder = files("dossiersync.schemas").joinpath("sage50fr")
    names = sorted(builtin_layouts(), key=lambda name: (name != "reference", name))
    return {
        name: json.loads(folder.joinpath(f"{name}{LAYOUT_SUFFIX}").read_text("utf-8"))
        for name in names
    }


def _physical_columns(spec: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """The logical columns of a layout's table that name a physical column (neither a
    constant nor absent), with their entries."""
    for name, column in spec["columns"].items():
        if isinstance(column.get("column"), str):
            yield name, column


def plain_name(name: str) -> str:
    """A name without case, accents, spaces, underscores or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


def _layout_score(document: Mapping[str, Any], catalogue: Catalogue) -> tuple[int, int]:
    tables = columns = 0
    for spec in document["tables"].values():
        source = catalogue.find_table(spec["table"])
        if source is None:
            continue
        tables += 1
        columns += sum(
            1 for _, column in _physical_columns(spec) if _find(source.columns, column["column"])
        )
    return tables, columns


def _usable(name: str) -> bool:
    try:
        check_physical(name, "name")
    except SourceError:
        return False
    return True


def _by_plain_name(
    candidates: Iterable[str], wanted: Iterable[str], taken: set[str]
) -> tuple[str | None, list[str]]:
    """The one candidate whose plain name is one of ``wanted``'s, and the names that
    matched but cannot be written in a mapping."""
    plain = {plain_name(w) for w in wanted}
    matches = [c for c in candidates if c not in taken and plain_name(c) in plain]
    usable = [c for c in matches if _usable(c)]
    return (usable[0] if len(usable) == 1 else None), [c for c in matches if not _usable(c)]


@dataclass
class Suggestion:
    """A proposed mapping document and what a person should look at."""

    layout: str
    document: dict[str, Any]
    tables_found: int
    tables: int
    columns_found: int
    columns: int
    matched_by_name: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.findings

    def notes(self) -> list[str]:
        """What a person reviews, in English, said in the command line's language."""
        notes: list[str] = [
            said(
                "starting from the built-in layout '{layout}': {tables_found} of {tables} "
                "tables and {columns_found} of {columns} columns found under its names",
                layout=self.layout,
                tables_found=self.tables_found,
                tables=self.tables,
                columns_found=self.columns_found,
                columns=self.columns,
            )
        ]
        notes += [said("matched by name, to review: {text}", text=t) for t in self.matched_by_name]
        notes += [
            said("not found, to complete by hand: {text}", text=f.text()) for f in self.findings
        ]
        return notes


def suggest_mapping(
    catalogue: Catalogue, layouts: Mapping[str, Any] | None = None, origin: str = "the source"
) -> Suggestion:
    """A mapping for ``catalogue``: the best matching layout, respelled and with the
    catalogue's text lengths, what it misses matched by name."""
    layouts = layouts if layouts is not None else known_layouts()
    if not layouts:
        raise SourceError("no built-in mapping layout found (schemas/sage50fr/*-mapping.json)")
    scores = {name: _layout_score(document, catalogue) for name, document in layouts.items()}
    best = max(scores, key=lambda name: scores[name])  # the first of equals: reference
    document = copy.deepcopy(layouts[best])
    tables_found, columns_found = scores[best]
    by_name: list[str] = []
    taken_tables: set[str] = set()
    for logical, spec in document["tables"].items():
        source = catalogue.find_table(spec["table"])
        if source is None:
            name, unusable = _by_plain_name(
                catalogue.tables, (logical, spec["table"]), taken_tables
            )
            by_name += [
                said(
                    "table {table} may be {name}, a name a mapping cannot hold",
                    table=logical,
                    name=repr(u),
                )
                for u in unusable
            ]
            if name is not None:
                by_name.append(
                    said(
                        "table {table} (layout: {layout}) is {name}",
                        table=logical,
                        layout=spec["table"],
                        name=name,
                    )
                )
                source = catalogue.tables[name]
        if source is None:
            continue
        taken_tables.add(source.name)
        spec["table"] = source.name
        found_here = {
            c.name
            for _, column in _physical_columns(spec)
            if (c := _find(source.columns, column["column"])) is not None
        }
        for column_logical, column in _physical_columns(spec):
            found: SourceColumn | None = _find(source.columns, column["column"])
            if found is None:
                name, unusable = _by_plain_name(
                    source.columns, (column_logical, column["column"]), found_here
                )
                by_name += [
                    said(
                        "column {column} of {table} may be {name}, a name a mapping cannot hold",
                        column=column_logical,
                        table=logical,
                        name=repr(u),
                    )
                    for u in unusable
                ]
                if name is not None:
                    by_name.append(
                        said(
                            "column {column} of {table} (layout: {layout}) is {name}",
                            column=column_logical,
                            table=logical,
                            layout=column["column"],
                            name=name,
                        )
                    )
                    found = source.columns[name]
                    found_here.add(name)
            if found is None:
                continue
            column["column"] = found.name
            plain = "values" not in column and "refers" not in column
            if column["type"] == "text" and plain and found.max_length is not None:
                column["length"] = found.max_length
    mapping = SageMapping.from_document(
        document, said("the mapping suggested for {origin}", origin=origin)
    )
    findings = [
        f for table in mapping.tables.values() for f in check_table(table, catalogue, mapping)
    ]
    return Suggestion(
        layout=best,
        document=document,
        tables_found=tables_found,
        tables=len(document["tables"]),
        columns_found=columns_found,
        columns=sum(len(list(_physical_columns(spec))) for spec in document["tables"].values()),
        matched_by_name=by_name,
        findings=findings,
    )
