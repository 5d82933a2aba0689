"""The one place that knows Sage 50FR table and column names.

Code speaks *logical* names — those of the reference schema (``F_COMPTET``, ``CT_Num``…).
A mapping file says which physical table and column each logical name is on a given
ODBC data source, and the column's type.  The reference mapping ships with the package;
a site whose driver exposes other names edits a copy and points the configuration at it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, cast, get_args

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from dossiersync.errors import SourceError

ColumnType = Literal["text", "int", "decimal", "timestamp", "date"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

SCHEMA_RESOURCE = "sage50fr-mapping.schema.json"
REFERENCE_RESOURCE = "sage50fr/reference-mapping.json"
REFERENCE_SOURCE = "the reference mapping (dossiersync.schemas/sage50fr/reference-mapping.json)"


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise :class:`SourceError`."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise SourceError(
            f"{what} {name!r} is not a plain identifier "
            "(a letter or _, then letters, digits or _; at most 128 characters)"
        )
    return name


@dataclass(frozen=True)
class ColumnMapping:
    """One logical column: its physical name, type and (for text) maximum length."""

    logical: str
    column: str
    type: ColumnType
    length: int | None = None

    def __post_init__(self) -> None:
        check_identifier(self.logical, "logical column")
        check_identifier(self.column, f"physical column of {self.logical}")
        if self.type not in COLUMN_TYPES:
            raise SourceError(
                f"column {self.logical}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}"
            )
        if self.length is not None and (self.type != "text" or self.length < 1):
            raise SourceError(f"column {self.logical}: a length is for text columns, at least 1")


@dataclass(frozen=True)
class TableMapping:
    """One logical table: physical name, key, modification and identity columns."""

    logical: str
    table: str
    key: tuple[str, ...]
    modified: str | None
    identity: str | None
    columns: dict[str, ColumnMapping]

    def __post_init__(self) -> None:
        check_identifier(self.logical, "logical table")
        check_identifier(self.table, f"physical table of {self.logical}")
        where = f"table {self.logical}"
        for name, column in self.columns.items():
            if name != column.logical:
                raise SourceError(f"{where}: column entry {name} describes {column.logical}")
        physical = [column.column.lower() for column in self.columns.values()]
        if len(set(physical)) != len(physical):
            raise SourceError(f"{where}: two logical columns map to the same physical column")
        if not self.key:
            raise SourceError(f"{where}: the key needs at least one column")
        for name in self.key:
            self._require(name, "key column")
        if self.modified is not None:
            if self._require(self.modified, "modification column").type not in (
                "timestamp",
                "date",
            ):
                raise SourceError(f"{where}: the modification column must be a timestamp or date")
        if self.identity is not None:
            if self._require(self.identity, "identity column").type != "int":
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


@dataclass(frozen=True)
class SageMapping:
    """Every logical table of a data source, and where the mapping came from."""

    tables: dict[str, TableMapping]
    source: str = REFERENCE_SOURCE

    def table(self, logical: str) -> TableMapping:
        """The mapping of one logical table; :class:`SourceError` when it is not mapped."""
        table = self.tables.get(logical)
        if table is None:
            raise SourceError(f"{self.source} has no table {logical}")
        return table

    @classmethod
    def load(cls, path: str | Path | None = None) -> SageMapping:
        """Read and check a mapping file; ``None`` reads the reference mapping."""
        if path is None:
            source = REFERENCE_SOURCE
            text = files("dossiersync.schemas").joinpath(REFERENCE_RESOURCE).read_text("utf-8")
        else:
            source = f"mapping file {Path(path)}"
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
    def from_document(cls, document: Any, source: str) -> SageMapping:
        """Build a mapping from an already parsed JSON document, naming ``source`` in errors."""
        error = best_match(_validator().iter_errors(document))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
            raise SourceError(f"{source}: at {where}: {error.message}")
        tables: dict[str, TableMapping] = {}
        try:
            for logical, spec in document["tables"].items():
                columns = {
                    name: ColumnMapping(
                        logical=name,
                        column=column["column"],
                        type=cast(ColumnType, column["type"]),
                        length=column.get("length"),
                    )
                    for name, column in spec["columns"].items()
                }
                tables[logical] = TableMapping(
                    logical=logical,
                    table=spec["table"],
                    key=tuple(spec["key"]),
                    modified=spec.get("modified"),
                    identity=spec.get("identity"),
                    columns=columns,
                )
        except SourceError as exc:
            raise SourceError(f"{source}: {exc}") from None
        return cls(tables=tables, source=source)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(files("dossiersync.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
