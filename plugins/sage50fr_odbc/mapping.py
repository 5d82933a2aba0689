"""The one place that knows Sage 50FR table and column names.

Code speaks *logical* names — those of the reference schema (``F_COMPTET``, ``CT_Num``…).
A mapping file says which physical table and column each logical name is on a given
ODBC data source, and the column's type.  A logical column may also be

- a **constant** (``"constant": 0``): the source has no such column and every row holds
  that value (a file of customers only has no customer/supplier discriminator);
- **absent** (``"absent": true``): the source cannot hold the concept at all (no prospect
  flag); it is never read and what is written to it is dropped;
- **value-mapped** (``"values": [["Commande", 1], …]``): the physical column holds the
  first value of each pair where the logical column holds the second;
- a **reference** (``"refers": {"table": …, "column": …, "by": …}``): the physical
  column holds the ``by`` column of a row of another table and the logical value is that
  row's ``column`` (document lines pointing to their header through its integer id).

Built-in layouts ship with the package (``reference``, ``ciel``); a site whose driver
exposes other names edits a copy and points the configuration at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, cast, get_args

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from dossiersync.plugin import SourceError, said

ColumnType = Literal["text", "int", "decimal", "timestamp", "date"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: a physical name: any printable text the driver exposes (spaces, accents, ``°``…),
#: quoted when used; never a control character, never blank
PHYSICAL_NAME = re.compile(r"^(?=.*\S)[^\x00-\x1f\x7f]{1,128}$")
#: names of the built-in layouts: ``schemas/sage50fr/<name>-mapping.json``
LAYOUT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

SCHEMA_RESOURCE = "sage50fr-mapping.schema.json"
REFERENCE_RESOURCE = "sage50fr/reference-mapping.json"
REFERENCE_SOURCE = said(
    "the reference mapping ({resource})",
    resource="dossiersync.schemas/sage50fr/reference-mapping.json",
)


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise :class:`SourceError`."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise SourceError(
            f"{what} {name!r} is not a plain identifier "
            "(a letter or _, then letters, digits or _; at most 128 characters)"
        )
    return name


def check_physical(name: object, what: str) -> str:
    """Return ``name`` if it can name a physical table or column (quoted), else raise
    :class:`SourceError`: printable text of 1 to 128 characters, not blank."""
    if not isinstance(name, str) or not PHYSICAL_NAME.match(name):
        raise SourceError(
            f"{what} {name!r} is not a usable name "
            "(1 to 128 printable characters, not blank, no control character)"
        )
    return name


def builtin_layouts() -> tuple[str, ...]:
    """Names of the layouts that ship with the package (``reference``, ``ciel``…)."""
    folder = files("dossiersync.schemas").joinpath("sage50fr")
    names = (
        entry.name.removesuffix("-mapping.json")
        for entry in folder.iterdir()
        if entry.name.endswith("-mapping.json")
    )
    return tuple(sorted(names))


@dataclass(frozen=True)
class Reference:
    """A column holding another table's ``by`` column; its logical value is ``column``
    of that row."""

    table: str
    column: str
    by: str


_NO_CONSTANT = object()


@dataclass(frozen=True)
class ColumnMapping:
    """One logical column: its physical name, type and (for text) maximum length, or what
    stands in for a physical column (a constant, an absent concept)."""

    logical: str
    column: str | None
    type: ColumnType
    length: int | None = None
    constant: Any = _NO_CONSTANT
    absent: bool = False
    #: ``(Sage value, logical value)`` pairs
    values: tuple[tuple[Any, Any], ...] = ()
    refers: Reference | None = None

    def __post_init__(self) -> None:
        check_identifier(self.logical, "logical column")
        where = f"column {self.logical}"
        if self.type not in COLUMN_TYPES:
            known = ", ".join(COLUMN_TYPES)
            raise SourceError(f"{where}: type {self.type!r} is not one of {known}")
        if self.length is not None and (self.type != "text" or self.length < 1):
            raise SourceError(f"{where}: a length is for text columns, at least 1")
        virtual = self.absent or self.is_constant
        if self.absent and self.is_constant:
            raise SourceError(f"{where}: a column is absent or a constant, not both")
        if virtual and (self.column is not None or self.values or self.refers):
            raise SourceError(f"{where}: an absent or constant column has no physical column")
        if not virtual:
            check_physical(self.column, f"physical column of {self.logical}")
        if self.values and self.refers:
            raise SourceError(f"{where}: a reference column cannot have a value map")
        sage_values = [sage for sage, _ in self.values]
        logical_values = [logical for _, logical in self.values]
        if len(set(sage_values)) != len(sage_values) or len(set(logical_values)) != len(
            logical_values
        ):
            raise SourceError(f"{where}: a value map pairs each value once, both ways")

    @property
    def is_constant(self) -> bool:
        return self.constant is not _NO_CONSTANT

    @property
    def physical(self) -> bool:
        """Whether the source has a column for it (neither constant nor absent)."""
        return not (self.absent or self.is_constant)

    @property
    def stored_type(self) -> ColumnType:
        """The type of what the physical column holds: the Sage values of a value map are
        text unless they are all integers."""
        if self.values:
            if all(isinstance(v, int) and not isinstance(v, bool) for v, _ in self.values):
                return "int"
            return "text"
        return self.type

    def to_sage(self, value: Any) -> Any:
        """The Sage value of a logical value (value maps); ``KeyError`` when unmapped."""
        if not self.values:
            return value
        for sage, logical in self.values:
            if logical == value:
                return sage
        raise KeyError(value)

    def from_sage(self, value: Any) -> Any:
        """The logical value of a Sage value (value maps); ``KeyError`` when unmapped."""
        if not self.values:
            return value
        for sage, logical in self.values:
            if sage == value:
                return logical
        raise KeyError(value)


@dataclass(frozen=True)
class TableMapping:
    """One logical table: physical name, key, modification and identity columns, and
    the rows of the physical table it is (``filter``: physical column = value, all of
    them; a row outside is never read, changed or deleted, and an insert sets them)."""

    logical: str
    table: str
    key: tuple[str, ...]
    modified: str | None
    identity: str | None
    columns: dict[str, ColumnMapping]
    filter: tuple[tuple[str, str | int], ...] = ()

    def __post_init__(self) -> None:
        check_identifier(self.logical, "logical table")
        check_physical(self.table, f"physical table of {self.logical}")
        mapped = {str(c.column).lower() for c in self.columns.values() if c.physical}
        for name, value in self.filter:
            check_physical(name, f"filter column of {self.logical}")
            if name.lower() in mapped:
                raise SourceError(
                    f"table {self.logical}: the filter column {name} is also a mapped column"
                )
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise SourceError(
                    f"table {self.logical}: the filter value of {name} must be a text or an "
                    f"integer, not {value!r}"
                )
        where = f"table {self.logical}"
        for name, column in self.columns.items():
            if name != column.logical:
                raise SourceError(f"{where}: column entry {name} describes {column.logical}")
        # references may share their physical column: a line's id of its header gives the
        # header's type and number alike
        physical = [
            str(c.column).lower() for c in self.columns.values() if c.physical and not c.refers
        ]
        referring = {str(c.column).lower() for c in self.columns.values() if c.refers}
        if len(set(physical)) != len(physical) or referring & set(physical):
            raise SourceError(f"{where}: two logical columns map to the same physical column")
        if not self.key:
            raise SourceError(f"{where}: the key needs at least one column")
        for name in self.key:
            if self._require(name, "key column").absent:
                raise SourceError(f"{where}: the key column {name} cannot be absent")
        if all(self.columns[name].is_constant for name in self.key):
            raise SourceError(f"{where}: at least one key column must be a physical column")
        for role, special in (("modification", self.modified), ("identity", self.identity)):
            if special is not None:
                column = self._require(special, f"{role} column")
                if not column.physical or column.values or column.refers:
                    raise SourceError(f"{where}: the {role} column must be a plain column")
        if self.modified is not None:
            if self.columns[self.modified].type not in ("timestamp", "date"):
                raise SourceError(f"{where}: the modification column must be a timestamp or date")
        if self.identity is not None:
            if self.columns[self.identity].type != "int":
                raise SourceError(f"{where}: the identity column must be an int")
            if self.identity in self.key:
                raise SourceError(f"{where}: the identity column cannot be part of the key")

    def _require(self, name: str, role: str) -> ColumnMapping:
        column = self.columns.get(name)
        if column is None:
            raise SourceError(f"table {self.logical}: {role} {name} is not among its columns")
        return column

    def column(self, logical: str) -> ColumnMapping:
        """The mapping of one logical column; :class:`SourceError` when it is not mapped."""
        column = self.columns.get(logical)
        if column is None:
            raise SourceError(f"table {self.logical} has no column {logical} in its mapping")
        return column

    @property
    def writable(self) -> tuple[str, ...]:
        """Logical columns a write may set: every column except the identity."""
        return tuple(name for name in self.columns if name != self.identity)

    @property
    def readable(self) -> tuple[str, ...]:
        """Logical columns a read returns: every column except the absent ones."""
        return tuple(name for name, column in self.columns.items() if not column.absent)

    @property
    def by_day(self) -> bool:
        """Whether the modification column only tells the day (a ``date``): an edit made
        the same day as the last one leaves it unchanged."""
        return self.modified is not None and self.columns[self.modified].type == "date"


@dataclass(frozen=True)
class SageMapping:
    """Every logical table of a data source, and where the mapping came from."""

    tables: dict[str, TableMapping]
    source: str = REFERENCE_SOURCE

    def stored_type(self, column: ColumnMapping) -> ColumnType:
        """What ``column``'s physical column holds: its own stored type (the Sage values'
        for a value map); for a reference, the type of the other table's column it holds
        (``by``)."""
        ref = column.refers
        if ref is not None:
            target = self.tables.get(ref.table)
            if target is not None and ref.by in target.columns:
                return target.columns[ref.by].type
        return column.stored_type

    def table(self, logical: str) -> TableMapping:
        """The mapping of one logical table; :class:`SourceError` when it is not mapped."""
        table = self.tables.get(logical)
        if table is None:
            raise SourceError(f"{self.source} has no table {logical}")
        return table

    @classmethod
    def load(cls, path: str | Path | None = None) -> SageMapping:
        """Read and check a mapping file; ``None`` reads the reference mapping, the name
        of a built-in layout (``"ciel"``) that layout."""
        if path is None:
            path = "reference"
        if isinstance(path, str) and LAYOUT_NAME.match(path):
            if path not in builtin_layouts():
                raise SourceError(
                    f"there is no built-in mapping layout {path!r} "
                    f"(built in: {', '.join(builtin_layouts())}); a mapping file is a path"
                )
            resource = f"sage50fr/{path}-mapping.json"
            source = (
                REFERENCE_SOURCE
                if path == "reference"
                else said(
                    "the {layout} layout ({resource})",
                    layout=path,
                    resource="dossiersync.schemas/" + resource,
                )
            )
            text = files("dossiersync.schemas").joinpath(resource).read_text("utf-8")
            # shipped with the connector and checked against the schema by its tests
            # (``test_mapping_check.py``): not checked again at every start
            return cls.from_document(json.loads(text), source, checked=True)
        else:
            source = said("mapping file {path}", path=str(Path(path)))
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"{source} cannot be read: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{source} is not valid JSON: {exc}") from exc
        return cls.from_document(document, source)

    @classmethod
    def from_document(cls, document: Any, source: str, *, checked: bool = False) -> SageMapping:
        """Build a mapping from an already parsed JSON document, naming ``source`` in errors
        (``checked``: a built-in layout, known to match the schema)."""
        error = None if checked else best_match(_validator().iter_errors(document))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
            raise SourceError(f"{source}: at {where}: {error.message}")
        tables: dict[str, TableMapping] = {}
        try:
            for logical, spec in document["tables"].items():
                columns = {name: _column(name, column) for name, column in spec["columns"].items()}
                tables[logical] = TableMapping(
                    logical=logical,
                    table=spec["table"],
                    key=tuple(spec["key"]),
                    modified=spec.get("modified"),
                    identity=spec.get("identity"),
                    columns=columns,
                    filter=tuple((spec.get("filter") or {}).items()),
                )
        except SourceError as exc:
            raise SourceError(f"{source}: {exc}") from None
        mapping = cls(tables=tables, source=source)
        check_references(mapping)
        return mapping


def _column(name: str, spec: Mapping[str, Any]) -> ColumnMapping:
    refers = spec.get("refers")
    extra: dict[str, Any] = {}
    if "constant" in spec:
        extra["constant"] = spec["constant"]
    return ColumnMapping(
        logical=name,
        column=spec.get("column"),
        type=cast(ColumnType, spec["type"]),
        length=spec.get("length"),
        absent=bool(spec.get("absent", False)),
        values=tuple((sage, logical) for sage, logical in spec.get("values", ())),
        refers=Reference(refers["table"], refers["column"], refers["by"]) if refers else None,
        **extra,
    )


def check_references(mapping: SageMapping) -> None:
    """Every reference column names a mapped table, a plain column and its identity."""
    for table in mapping.tables.values():
        for column in table.columns.values():
            ref = column.refers
            if ref is None:
                continue
            where = f"{mapping.source}: {table.logical}.{column.logical}"
            target = mapping.tables.get(ref.table)
            if target is None:
                raise SourceError(f"{where} refers to table {ref.table}, which is not mapped")
            for name in (ref.column, ref.by):
                if name not in target.columns or not target.columns[name].physical:
                    raise SourceError(f"{where} refers to {ref.table}.{name}: not a column there")
            if target.columns[ref.column].type != column.type:
                raise SourceError(f"{where}: {ref.table}.{ref.column} is not a {column.type}")
            if target.columns[ref.by].type not in ("int", "text"):
                raise SourceError(f"{where}: {ref.table}.{ref.by} cannot identify a row")
            shared = [
                c.refers
                for c in table.columns.values()
                if c.refers and str(c.column).lower() == str(column.column).lower()
            ]
            if any((r.table, r.by) != (ref.table, ref.by) for r in shared if r is not None):
                raise SourceError(f"{where}: columns sharing {column.column!r} refer to one row")


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(files("dossiersync.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
