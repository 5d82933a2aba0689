"""Generic record I/O on one Sage 50FR dossier through ODBC (pyodbc).

The endpoint knows tables, not business objects: every table and column name comes from
a :class:`~dossiersync.plugins.sage50fr_odbc.mapping.SageMapping`, is checked and quoted,
and every value travels as a bound parameter.  Rows come and go as dictionaries keyed
by *logical* column names, with values normalised by the column's declared type.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import pyodbc

from dossiersync.plugin import SourceError, SourceUnavailable, Unreadable, said, shown

from .connection import (
    _private_values,
    connection_fields,
    data_source_connection,
    describe_source,
    source_identity,
)
from .mapping import (
    IDENTIFIER,
    ColumnMapping,
    ColumnType,
    SageMapping,
    TableMapping,
    check_physical,
)

Dialect = Literal["sqlite", "postgresql", "odbc"]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIMESTAMP_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
#: the greatest timestamp text: a modification value above it (a letter, a blob) is none
_LAST_TIMESTAMP = "9999-12-31 23:59:59.999"
#: what a SQLite read puts before a value's stored bytes in hexadecimal (see ``_selected``)
_HEX_MARK = "x"
#: control characters no Sage text holds (tab, line feed and carriage return are text)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SECRET = re.compile(r"(?i)(?<![^;\s])(PWD|PASSWORD)(\s*=\s*)(\{(?:[^}]|\}\})*\}|[^;]*)")
_UNAVAILABLE_STATES = ("08", "HYT00", "HYT01", "57P01", "57P02", "57P03")
_UNAVAILABLE_TEXT = ("database is locked", "connection dead", "server closed the connection")
#: rows of one SQLite statement of a paged read (see ``_paged``)
_PAGE_ROWS = 5000
_PARAMETERS_PER_STATEMENT = 500

_CLOCK_SQL: dict[Dialect, str] = {
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
    "postgresql": "SELECT to_char(LOCALTIMESTAMP(3), 'YYYY-MM-DD HH24:MI:SS.MS')",
    "odbc": "SELECT {fn NOW()}",
}


def mask_secrets(connection: str) -> str:
    """The connection string with every ``PWD=`` / ``Password=`` value replaced by ``***``."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", connection)


def _secret_values(connection: str) -> list[str]:
    values = []
    for match in _SECRET.finditer(connection):
        value = match.group(3).strip()
        if value.startswith("{") and value.endswith("}"):
            value = value[1:-1].replace("}}", "}")
        if value:
            values.append(value)
    return values


def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss.fff``: the one text form of a timestamp (milliseconds, no ``T``)."""
    return f"{value.strftime(TIMESTAMP_FORMAT)}.{value.microsecond // 1000:03d}"


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return datetime.fromisoformat(value.strip()).replace(tzinfo=None)
    raise ValueError(f"not a timestamp: {value!r}")


def _canonical_decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    if value == 0:
        return Decimal(0)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        number = Decimal(value.strip())
    else:
        raise ValueError(f"not a number: {value!r}")
    return _canonical_decimal(number)


def _to_int(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        with suppress(ValueError):
            return int(text)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not an integer: {shown(value)!r}") from None
        if number.is_finite() and number == number.to_integral_value():
            return int(number)  # 3.0, as SQLite gives a REAL
        raise ValueError(f"not an integer: {shown(value)!r}")
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    raise ValueError(f"not an integer: {shown(value)}")


def _decoded(value: Any) -> Any:
    """The text of bytes read as they are stored (UTF-8), refusing any that are not."""
    if not isinstance(value, bytes | bytearray):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte {exc.start + 1} of {len(value)} is not valid)"
        ) from None


def _check_timestamp(text: str) -> None:
    """Raise ``ValueError`` unless a ``YYYY-MM-DD hh:mm:ss.fff`` text is a real time (not
    month 13, day 45 or hour 99)."""
    datetime.fromisoformat(text)


def normalise(column: ColumnMapping, value: Any, kind: ColumnType | None = None) -> Any:
    """A value read from the database, in the form its declared type promises.

    text → ``str`` without trailing spaces, int → ``int``, decimal → exact ``Decimal`` in
    its shortest form, timestamp → ``'YYYY-MM-DD hh:mm:ss.fff'``, date → ``'YYYY-MM-DD'``.
    ``None`` stays ``None``; bytes (as a SQLite column is read) are UTF-8.  Raises
    ``ValueError`` for a value the type cannot hold as it is: bytes that are not UTF-8,
    text with a control character (NUL…), an int with a fraction, a time that is none.
    ``kind`` reads the value as another type than the column's (what a value-mapped
    column stores).
    """
    if value is None:
        return None
    value = _decoded(value)
    kind = kind or column.type
    if kind == "text":
        text = value if isinstance(value, str) else str(value)
        control = _CONTROL.search(text)
        if control is not None:
            raise ValueError(
                f"holds the control character U+{ord(control.group()):04X} "
                f"at character {control.start() + 1}"
            )
        return text.rstrip(" ")
    if kind == "int":
        return _to_int(value)
    if kind == "decimal":
        return _to_decimal(value)
    if kind == "timestamp":
        if isinstance(value, str) and _TIMESTAMP_TEXT.match(value):
            _check_timestamp(value)
            return value
        return format_timestamp(_parse_timestamp(value))
    return _parse_timestamp(value).date().isoformat()


def _names_postgres_driver(connection: str) -> bool:
    """Whether a connection string reaches psqlODBC (by driver name or through a DSN)."""
    fields = {
        k.strip().lower(): v.strip().strip("{}")
        for k, _, v in (part.partition("=") for part in connection.split(";"))
        if k.strip()
    }
    driver = fields.get("driver", "")
    if not driver and "dsn" in fields:
        with suppress(pyodbc.Error):
            driver = pyodbc.dataSources().get(fields["dsn"], "")
    return "postgres" in driver.lower() or "psqlodbc" in driver.lower()


def streaming_connection(connection: str, fetch_size: int) -> str:
    """The connection string, made to stream with psqlODBC, and never to create a file.

    psqlODBC reads a whole result set into memory unless ``UseDeclareFetch`` is on; a site
    that sets it (or ``Fetch``) itself keeps its own values. The SQLite3 driver creates an
    empty database where the path names none, so that a mistyped path would read as an
    empty dossier: ``NoCreat=1`` makes it an error naming the file, unless set otherwise.
    """
    lowered = connection.lower()
    if names_sqlite_driver(connection) and "nocreat" not in lowered:
        return f"{connection.rstrip(';')};NoCreat=1"
    if "usedeclarefetch" in lowered or not _names_postgres_driver(connection):
        return connection
    return f"{connection.rstrip(';')};UseDeclareFetch=1;Fetch={fetch_size}"


def _database_file(connection: str) -> Path | None:
    """The database file a connection string names (``Database=`` or ``DBQ=``), or None
    when it reaches a server or a data source (``change_mark`` has nothing to look at)."""
    fields = connection_fields(connection)
    if any(fields.get(key) for key in ("server", "servername", "host", "dsn")):
        return None
    database = fields.get("database") or fields.get("dbq") or ""
    return Path(database).expanduser() if database else None


def names_sqlite_driver(connection: str) -> bool:
    """Whether a connection string names the SQLite3 ODBC driver itself."""
    for part in connection.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "driver" and "sqlite" in value.lower():
            return True
    return False


class _Unmapped(ValueError):
    """A value read that the column's value map does not know."""


def _aliased(expressions: Iterable[str]) -> str:
    """A select list whose columns are named ``c0``, ``c1``…: unnamed, a column takes its
    expression's text (or its own name) as its name, and the SQLite3 driver now and then
    garbles a name that holds accents (``UnicodeDecodeError`` in pyodbc): every statement
    the endpoint reads from names its columns so."""
    return ", ".join(f"{expression} AS c{i}" for i, expression in enumerate(expressions))


@dataclass
class _Page:
    """What a paged read needs of the statement it just ran."""

    rows: int = 0
    last: Any = None


class Sage50OdbcEndpoint:
    """One Sage 50FR dossier reached through an ODBC connection string or DSN."""

    name = "sage50fr_odbc"

    def __init__(
        self,
        connection: str,
        mapping: SageMapping | str | Path | None = None,
        *,
        fetch_size: int = 500,
        login_timeout: int = 15,
    ) -> None:
        if fetch_size < 1:
            raise ValueError("fetch_size must be at least 1")
        self._connection_string = connection
        self._file = _database_file(connection)
        self._secrets = _secret_values(connection)
        self._private = _private_values(connection)
        self.source = describe_source(connection)
        if mapping is None or isinstance(mapping, SageMapping):
            self.mapping = mapping if mapping is not None else SageMapping.load()
        else:
            self.mapping = SageMapping.load(mapping)
        self.fetch_size = fetch_size
        self.login_timeout = login_timeout
        self._conn: pyodbc.Connection | None = None
        self._dialect: Dialect | None = None
        self._quote = '"'
        self._writing = False
        self._open_reads = 0
        self._held = False
        self._savepoints = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"

    @staticmethod
    def source_identity(connection: str) -> str:
        """What ``connection`` reaches, however it is written (see ``source_identity``):
        two dossiers reaching the same one are refused by the configuration."""
        return source_identity(connection)

    # -- connection -------------------------------------------------------------------

    def open(self) -> None:
        """Connect, autocommit off; :class:`SourceUnavailable` when the source is unreachable."""
        if self._conn is not None:
            return
        try:
            conn = pyodbc.connect(
                streaming_connection(self._connection_string, self.fetch_size),
                autocommit=False,
                timeout=self.login_timeout,
            )
        except pyodbc.Error as exc:
            raise SourceUnavailable(
                said(
                    "cannot connect to the ODBC data source {source}: {error}. Check that the "
                    "data source exists, its driver is installed and the database is reachable "
                    "(the dossier's connection in the configuration).",
                    source=self.source,
                    error=self._describe(exc),
                )
            ) from None
        try:
            dbms = str(conn.getinfo(pyodbc.SQL_DBMS_NAME)).lower()
            quote = str(conn.getinfo(pyodbc.SQL_IDENTIFIER_QUOTE_CHAR)).strip()
        except pyodbc.Error as exc:
            with suppress(pyodbc.Error):
                conn.close()
            raise SourceUnavailable(
                said(
                    "the ODBC data source {source} does not describe itself: {error}",
                    source=self.source,
                    error=self._describe(exc),
                )
            ) from None
        if "sqlite" in dbms:
            self._dialect, self._quote = "sqlite", '"'
        elif "postgres" in dbms:
            self._dialect, self._quote = "postgresql", '"'
        else:
            self._dialect, self._quote = "odbc", quote
        self._conn = conn

    def close(self) -> None:
        """Disconnect; an open transaction is rolled back."""
        conn, self._conn = self._conn, None
        self._writing, self._open_reads = False, 0
        if conn is not None:
            with suppress(pyodbc.Error):
                conn.rollback()
            with suppress(pyodbc.Error):
                conn.close()

    def __enter__(self) -> Sage50OdbcEndpoint:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, or ``odbc`` for any other DBMS (opens the connection)."""
        self._connection()
        assert self._dialect is not None
        return self._dialect

    def _connection(self) -> pyodbc.Connection:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return self._conn

    def _cursor(self) -> pyodbc.Cursor:
        with self._errors("open a cursor on", None):
            return self._connection().cursor()

    def _execute_script(self, statements: Iterable[str], operation: str) -> None:
        """Run fixed statements without parameters (schema set-up), in the open transaction."""
        self._writing = True
        cursor = self._cursor()
        try:
            for statement in statements:
                with self._errors(operation, None):
                    cursor.execute(statement)
        finally:
            with suppress(pyodbc.Error):
                cursor.close()

    def _release(self) -> None:
        """End a transaction that only read, so an idle endpoint holds no lock or snapshot.

        A SQLite reader that keeps its transaction blocks every writer of the file (Sage
        included); a PostgreSQL one pins ``LOCALTIMESTAMP`` and the snapshot.
        """
        if self._conn is not None and not self._writing and self._open_reads == 0:
            with suppress(pyodbc.Error):
                self._conn.rollback()

    def _end_sqlite_read(self) -> None:
        """Right after a SQLite statement ran, outside a write: end its transaction.

        The SQLite3 driver holds a statement's whole result in memory once it has run (it
        is still fetched ``fetch_size`` rows at a time), while a reader's open
        transaction blocks every writer of the file: a pass that takes its time with
        each row (an API call per batch) would keep Sage from saving until it ended."""
        if self._dialect == "sqlite" and self._conn is not None and not self._writing:
            with suppress(pyodbc.Error):
                self._conn.rollback()

    # -- errors -----------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        args: tuple[object, ...] = exc.args
        text = str(args[1]) if len(args) > 1 else str(exc)
        text = mask_secrets(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        for value, placeholder in self._private:
            text = text.replace(value, placeholder)
        return text

    @staticmethod
    def _is_unavailable(exc: pyodbc.Error) -> bool:
        state = str(exc.args[0]) if exc.args else ""
        text = str(exc).lower()
        return state.startswith(_UNAVAILABLE_STATES) or any(t in text for t in _UNAVAILABLE_TEXT)

    @contextmanager
    def _errors(self, operation: str, table: TableMapping | None) -> Iterator[None]:
        """Turn driver errors into :class:`SourceUnavailable` / :class:`SourceError`.

        ``operation`` reads before the table's name, or before the data source when there
        is no table ("commit on", "read the clock of").
        """
        try:
            yield
        except pyodbc.Error as exc:
            what = f"{operation} {table.logical} (table {table.table}) on" if table else operation
            message = f"{what} {self.source} failed: {self._describe(exc)}"
            if self._is_unavailable(exc):
                raise SourceUnavailable(message) from None
            raise SourceError(message) from None

    # -- SQL pieces -------------------------------------------------------------------

    def _q(self, name: str | None) -> str:
        """``name`` quoted for this driver (a quote inside it doubled), never built from data."""
        name = check_physical(name, "name")
        quote = self._quote
        if not quote:
            if not IDENTIFIER.match(name):
                raise SourceError(f"{self.source} cannot quote names, so it cannot name {name!r}")
            return name
        return f"{quote}{name.replace(quote, quote * 2)}{quote}"

    def _target(self, column: ColumnMapping) -> tuple[TableMapping, ColumnMapping]:
        """The table and column a reference column takes its value (and type) from."""
        ref = column.refers
        assert ref is not None
        target = self.mapping.table(ref.table)
        return target, target.columns[ref.column]

    def _match(self, table: TableMapping, column: ColumnMapping, test: str) -> str:
        """The condition "``column`` ``test``" (``= ?``, ``IN (?, ?)``). A reference column
        is tested on the referred table, whose column is indexed where the line's id is
        not: ``id IN (SELECT by FROM header WHERE column = ?)``."""
        if column.refers is None:
            return f"{self._expr(table, column)} {test}"
        target, named = self._target(column)
        by = target.columns[column.refers.by]
        return (
            f"{self._q(column.column)} IN (SELECT {self._q(by.column)} "  # noqa: S608
            f"FROM {self._q(target.table)} WHERE {self._q(named.column)} {test})"
        )

    def _value_mapped(self, column: ColumnMapping) -> bool:
        """Whether a value of ``column`` goes through a value map (its own or, for a
        reference, the referred column's): an unknown value then matches nothing."""
        if column.refers is not None:
            return bool(self._target(column)[1].values)
        return bool(column.values)

    def _expr(self, table: TableMapping, column: ColumnMapping) -> str:
        """The SQL of a physical column: its quoted name, or for a reference the lookup of
        the referred row's column."""
        ref = column.refers
        if ref is None:
            return self._q(column.column)
        target = self.mapping.table(ref.table)
        by = f"{self._q(target.table)}.{self._q(target.columns[ref.by].column)}"
        own = f"{self._q(table.table)}.{self._q(column.column)}"
        return (
            f"(SELECT {self._q(target.columns[ref.column].column)} "  # noqa: S608
            f"FROM {self._q(target.table)} WHERE {by} = {own})"
        )

    def _param(
        self, table: TableMapping, column: ColumnMapping, value: Any, *, compared: bool = False
    ) -> Any:
        """A Python value converted for binding to ``column`` on this dialect. A value
        ``compared`` to the column (a condition, not a write) may be longer than the
        column holds: it then matches nothing, or the over-long value a row has. A
        value-mapped column binds the Sage value of ``value``; a constant one gives
        ``value`` in its logical form (it is never bound)."""
        if value is None:
            return None
        if column.refers is not None:
            target, named = self._target(column)
            return self._param(target, named, value, compared=compared)
        if column.values or column.is_constant:
            try:
                logical = normalise(column, value)
            except (ValueError, TypeError, InvalidOperation) as exc:
                raise SourceError(
                    f"{table.logical}.{column.logical}: {shown(value)!r} is not a valid "
                    f"{column.type} ({exc})"
                ) from None
            if column.is_constant:
                return logical
            try:
                sage = column.to_sage(logical)
            except KeyError:
                known = ", ".join(repr(v) for _, v in column.values)
                raise SourceError(
                    f"{table.logical}.{column.logical}: {value!r} has no value in "
                    f"{self.mapping.source} (it maps {known})"
                ) from None
            return self._convert(table, column, column.stored_type, sage, compared)
        return self._convert(table, column, column.type, value, compared)

    def _convert(
        self, table: TableMapping, column: ColumnMapping, kind: str, value: Any, compared: bool
    ) -> Any:
        try:
            if kind == "text":
                text = value if isinstance(value, str) else str(value)
                if not compared and column.length is not None and len(text) > column.length:
                    raise ValueError(f"{len(text)} characters, at most {column.length} fit")
                return text
            if kind == "int":
                return _to_int(value)
            generic = self.dialect == "odbc"
            if kind == "decimal":
                number = _to_decimal(value)
                return number if generic else format(number, "f")
            moment = _parse_timestamp(value)
            if kind == "date":
                return moment.date() if generic else moment.date().isoformat()
            if generic:
                return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            return format_timestamp(moment)
        except (ValueError, TypeError, InvalidOperation) as exc:
            raise SourceError(
                f"{table.logical}.{column.logical}: {shown(value)!r} is not a valid "
                f"{column.type} ({exc})"
            ) from None

    def _equalities(
        self, table: TableMapping, values: Mapping[str, Any]
    ) -> tuple[list[str], list[Any]]:
        """``column = ?`` conditions (``IS NULL`` for ``None``) and their parameters. A
        constant column drops its condition when the value is its constant and matches
        nothing otherwise, as does a value a value map does not know."""
        conditions, params = self._filter(table)
        for name, value in values.items():
            column = table.column(name)
            if column.absent:
                raise SourceError(
                    f"{table.logical}.{name} does not exist in {self.mapping.source}: "
                    "no row can be chosen by it"
                )
            if column.is_constant:
                if not self._is_constant(table, column, value):
                    conditions.append("1 = 0")
            elif value is None:
                conditions.append(f"{self._q(column.column)} IS NULL")
            else:
                try:
                    param = self._param(table, column, value, compared=True)
                except SourceError:
                    if not self._value_mapped(column):
                        raise
                    conditions.append("1 = 0")
                    continue
                conditions.append(self._match(table, column, "= ?"))
                params.append(param)
        return conditions, params

    def _filter(self, table: TableMapping) -> tuple[list[str], list[Any]]:
        """The conditions keeping the rows of the physical table ``table`` is."""
        return [f"{self._q(name)} = ?" for name, _ in table.filter], [v for _, v in table.filter]

    def _is_constant(self, table: TableMapping, column: ColumnMapping, value: Any) -> bool:
        """Whether ``value`` is the constant of ``column`` (in its logical form)."""
        if value is None or column.constant is None:
            return value is None and column.constant is None
        try:
            return bool(
                self._param(table, column, value) == self._param(table, column, column.constant)
            )
        except SourceError:
            return False

    def _key_values(self, table: TableMapping, key: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(table.key, self._key(table, key), strict=True))

    def _selection(self, table: TableMapping, columns: Sequence[str] | None) -> list[ColumnMapping]:
        """The columns a read returns: those asked for (all by default) but the absent
        ones, which the rows do not have."""
        if columns is None:
            return [table.columns[name] for name in table.readable]
        if isinstance(columns, str):
            raise TypeError("columns is a sequence of column names, not one string")
        chosen = (table.column(name) for name in dict.fromkeys(columns))
        return [column for column in chosen if not column.absent]

    # -- reading ----------------------------------------------------------------------

    def key_columns(self, table: str) -> Sequence[str]:
        """The logical columns of ``table``'s key, in key order."""
        return tuple(self.mapping.table(table).key)

    def clock(self) -> str:
        """The source's current time as ``'YYYY-MM-DD hh:mm:ss.fff'``.

        SQLite answers in UTC; PostgreSQL with ``LOCALTIMESTAMP``, the start of the
        current transaction (now, unless a write transaction is in progress).  Use it,
        never the host's clock, for watermarks.
        """
        conn = self._connection()
        assert self._dialect is not None
        with self._errors("read the clock of", None):
            row = conn.execute(_CLOCK_SQL[self._dialect]).fetchone()
        self._release()
        assert row is not None
        value = row[0]
        if isinstance(value, str) and _TIMESTAMP_TEXT.match(value):
            return value
        return format_timestamp(_parse_timestamp(value))

    def high_water_mark(self, table: str) -> str | None:
        """The greatest modification timestamp in ``table`` (same text form as :meth:`clock`)."""
        spec = self.mapping.table(table)
        modified = self._modified(spec)
        column = self._q(modified.column)
        filtered, params = self._filter(spec)
        head = f"SELECT {_aliased([f'MAX({column})'])} FROM {self._q(spec.table)}"  # noqa: S608
        conn = self._connection()
        # a value that is not a timestamp is passed over: in SQLite, text that sorts above
        # every timestamp (a letter, a blob) at once, any other one at a time, below it
        conditions = list(filtered)
        if self.dialect == "sqlite":
            conditions.append(f"{column} <= ?")
            params = [*params, _LAST_TIMESTAMP]
        try:
            while True:
                where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
                with self._errors("read the high-water mark of", spec):
                    row = conn.execute(head + where_sql, params).fetchone()
                if row is None or row[0] is None:
                    return None
                try:
                    moment = _parse_timestamp(self._value(spec, modified, row[0]))
                except (ValueError, TypeError, InvalidOperation):
                    conditions = [*filtered, f"{column} < ?"]
                    params = [*self._filter(spec)[1], row[0]]
                    continue
                return format_timestamp(moment)
        finally:
            self._release()

    def change_mark(self) -> tuple[float, Any] | None:
        """A sign, read without a statement, that the source may have been written: when
        its files were last written (seconds since the epoch) and a value that moves
        with every write — the modification time, size and file number of the database
        file this connection names, and of the journal files beside it (SQLite's
        ``-wal`` and ``-journal``, which a write touches before the file itself).
        ``None`` when the connection names no file this machine sees (a DSN, a server):
        the probe then asks its statement.

        An unchanged mark says nothing was written in between only if the file was last
        written well before the earlier mark was read (a file system keeps times to a
        tick); the probe takes care of that (``core.probes.SageProbe``)."""
        path = self._file
        if path is None:
            return None
        found: list[tuple[int, int, int] | None] = []
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            try:
                info = name.stat()
            except OSError:
                found.append(None)
                continue
            found.append((info.st_mtime_ns, info.st_size, info.st_ino))
        if found[0] is None:
            return None
        written = max(f[0] for f in found if f is not None) / 1e9
        return written, tuple(found)

    def marks(
        self, watched: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[tuple[str | None, int]]:
        """For each ``(table, where)``: its high-water mark (as :meth:`high_water_mark`)
        and how many rows ``where`` keeps (as :meth:`count`) — all in one statement, so
        that probing a quiet dossier costs one small query, whatever its tables.

        A database this endpoint does not know asks them one at a time (a ``SELECT``
        without ``FROM`` is not everywhere); so is a table whose greatest modification
        value is not a timestamp (``high_water_mark`` passes over such values).
        """
        if self.dialect not in ("sqlite", "postgresql") or not watched:
            return [(self.high_water_mark(t), self.count(t, where=w)) for t, w in watched]
        parts: list[str] = []
        params: list[Any] = []
        for table, where in watched:
            spec = self.mapping.table(table)
            column = self._q(self._modified(spec).column)
            conditions, values = self._filter(spec)
            if self.dialect == "sqlite":
                conditions, values = [*conditions, f"{column} <= ?"], [*values, _LAST_TIMESTAMP]
            latest_where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            # names quoted from the mapping, values bound: nothing is built from data
            table_sql = self._q(spec.table)
            parts.append(f"(SELECT MAX({column}) FROM {table_sql}{latest_where})")  # noqa: S608
            params += values
            conditions, values = self._equalities(spec, where or {})
            count_where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            parts.append(f"(SELECT COUNT(*) FROM {table_sql}{count_where})")  # noqa: S608
            params += values
        conn = self._connection()
        with self._errors("read the change marks of", None):
            row = conn.execute(f"SELECT {_aliased(parts)}", params).fetchone()  # noqa: S608
        self._release()
        assert row is not None
        found: list[tuple[str | None, int]] = []
        for n, (table, _where) in enumerate(watched):
            raw, count = row[2 * n], int(row[2 * n + 1] or 0)
            if raw is None:
                found.append((None, count))
                continue
            spec = self.mapping.table(table)
            latest: str | None
            try:
                latest = format_timestamp(
                    _parse_timestamp(self._value(spec, self._modified(spec), raw))
                )
            except (ValueError, TypeError, InvalidOperation):
                latest = self.high_water_mark(table)
            found.append((latest, count))
        return found

    def text_lengths(self, table: str) -> dict[str, int | None]:
        """The mapping's length of each text column of ``table`` (``None``: unbounded)."""
        spec = self.mapping.table(table)
        return {
            name: column.length
            for name, column in spec.columns.items()
            if column.type == "text" and not column.absent
        }

    def changes_by_day(self, table: str) -> bool:
        """Whether ``table``'s modification column tells only the day (a ``date``): two
        edits of the same day leave it as it was."""
        return self.mapping.table(table).by_day

    def _modified(self, table: TableMapping) -> ColumnMapping:
        if table.modified is None:
            raise SourceError(
                f"table {table.logical} has no modification column in {self.mapping.source}"
            )
        return table.columns[table.modified]

    def _value(self, table: TableMapping, column: ColumnMapping, value: Any) -> Any:
        """A value read, in its logical form; ``ValueError`` (or ``TypeError``,
        ``InvalidOperation``) when the column's type or value map cannot carry it."""
        if column.refers is not None:
            target, named = self._target(column)
            return self._value(target, named, value)
        if column.values and value is not None:
            stored = normalise(column, value, column.stored_type)
            try:
                return column.from_sage(stored)
            except KeyError:
                known = ", ".join(repr(v) for v, _ in column.values)
                raise _Unmapped(f"the mapping knows only {known}") from None
        return normalise(column, value)

    def _normalise(self, table: TableMapping, column: ColumnMapping, value: Any) -> Any:
        try:
            return self._value(table, column, value)
        except (ValueError, TypeError, InvalidOperation) as exc:
            raise SourceError(
                f"{table.logical}.{column.logical} on {self.source} holds {shown(value)!r}, "
                f"which is not a valid {column.type} ({exc})"
            ) from None

    def _cell(self, table: TableMapping, column: ColumnMapping, value: Any, stored: bool) -> Any:
        """A value read, in its logical form; an :class:`Unreadable` when the column's type
        cannot carry it as it is. ``stored``: the value is its stored bytes in hexadecimal
        (see :meth:`_selected`)."""
        try:
            if stored and isinstance(value, str):
                value = bytes.fromhex(value[len(_HEX_MARK) :])
            return self._value(table, column, value)
        except (ValueError, TypeError, InvalidOperation) as exc:
            if isinstance(value, bytes):
                with suppress(UnicodeDecodeError):
                    value = value.decode("utf-8")  # shown as the text it is
            if isinstance(exc, _Unmapped):
                # the mapping, not the row, is to correct: every such row is alike
                raise SourceError(
                    f"{table.logical}.{column.logical} on {self.source} holds "
                    f"{shown(value)!r}, which is not a valid {column.type} ({exc})"
                ) from None
            return Unreadable(column.logical, shown(value), str(exc))

    def _converter(
        self, table: TableMapping, column: ColumnMapping, stored: bool
    ) -> Callable[[Any], Any]:
        """What :meth:`_cell` does to each value of ``column``, with a quick way for the
        values that are what they should be (most of them, and one call each)."""

        def cell(value: Any) -> Any:
            return self._cell(table, column, value, stored)

        plain = column.refers is None and not column.values
        if not stored or not plain or column.type not in ("text", "int", "timestamp"):
            return cell
        fromhex, skip = bytes.fromhex, len(_HEX_MARK)
        if column.type == "int":

            def integer(value: Any) -> Any:
                if value is None:
                    return None
                raw = fromhex(value[skip:])
                if raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit()):
                    return int(raw)
                return cell(value)

            return integer
        if column.type == "timestamp":
            well_formed = _TIMESTAMP_TEXT.match

            def timestamp(value: Any) -> Any:
                if value is None:
                    return None
                try:
                    text = fromhex(value[skip:]).decode()
                    if well_formed(text):
                        datetime.fromisoformat(text)
                        return text
                except ValueError:
                    pass
                return cell(value)

            return timestamp
        control = _CONTROL.search

        def text(value: Any) -> Any:
            if value is None:
                return None
            try:
                decoded = fromhex(value[skip:]).decode()
            except ValueError:
                return cell(value)
            if decoded.isprintable() or control(decoded) is None:
                return decoded.rstrip(" ")
            return cell(value)

        return text

    def _selected(self, table: TableMapping, column: ColumnMapping) -> str:
        """A column as a read selects it. SQLite gives its bytes as they are stored: the
        SQLite3 driver would cut text at a NUL, decode invalid UTF-8 as Latin-1, give a
        blob as the text ``X'…'``, and turn 0.5, 2**40 or ``'abc'`` in an INTEGER column
        into 0, 0 and NULL."""
        expr = self._expr(table, column)
        if self.dialect != "sqlite":
            return expr
        # in hexadecimal after a mark: text whatever the driver guesses of the column
        # (it would give bytes for some rows, ``X'…'`` for others), and NULL stays NULL
        return f"CASE WHEN {expr} IS NOT NULL THEN '{_HEX_MARK}' || hex({expr}) END"

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        *,
        since: str | None = None,
        where: Mapping[str, Any] | None = None,
        keys: Iterable[Sequence[Any]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream rows of ``table`` as ``{logical column: value}``, ordered by key.

        ``since`` keeps rows modified at or after that time (``>=``: the boundary is
        included); ``where`` keeps rows whose columns equal the given values (``None``
        matches NULL); ``keys`` keeps only those keys (each once however often it is
        given), queried in chunks of a few hundred keys, each chunk ordered by key. A key
        may give only the leading key columns (all of the same length): ``[("A1",)]``
        reads every stock row of article A1 from a table keyed by article and depot.
        Rows are fetched ``fetch_size`` at a time.  Outside a write transaction, the
        read's transaction ends with the stream, releasing its locks on the source.
        """
        spec = self.mapping.table(table)
        selected = self._selection(spec, columns)
        names = [column.logical for column in selected]
        # a row whose modification time is not one says so, asked for or not
        checked = spec.modified if spec.modified and spec.modified not in names else None
        if checked is not None and spec.columns[checked].physical:
            selected.append(spec.columns[checked])
        else:
            checked = None
        rows = self._select(spec, selected, since=since, where=where, keys=keys)
        if checked is None:
            return (dict(zip(names, values, strict=True)) for values in rows)
        return self._checked(names, checked, rows)

    @staticmethod
    def _checked(
        names: list[str], checked: str, rows: Iterator[list[Any]]
    ) -> Iterator[dict[str, Any]]:
        for values in rows:
            row = dict(zip(names, values, strict=False))
            if isinstance(values[-1], Unreadable):
                row[checked] = values[-1]
            yield row

    def count(
        self, table: str, *, since: str | None = None, where: Mapping[str, Any] | None = None
    ) -> int:
        """How many rows :meth:`read` would stream with the same ``since`` and ``where``:
        one ``COUNT(*)``, so a pass can tell how far it is without reading twice."""
        spec = self.mapping.table(table)
        conditions, params = self._equalities(spec, where or {})
        if since is not None:
            modified = self._modified(spec)
            conditions.append(f"{self._q(modified.column)} >= ?")
            params.append(self._param(spec, modified, since))
        where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT COUNT(*) AS c0 FROM {self._q(spec.table)}{where_sql}"  # noqa: S608
        conn = self._connection()
        with self._errors("count the rows of", spec):
            row = conn.execute(sql, params).fetchone()
        self._release()
        return int(row[0]) if row is not None else 0

    def read_keys(
        self, table: str, where: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Stream the keys of ``table`` (tuples in key-column order), ordered by key."""
        spec = self.mapping.table(table)
        selected = [spec.columns[name] for name in spec.key]
        return (tuple(values) for values in self._select(spec, selected, where=where))

    def get(
        self, table: str, key: Sequence[Any], columns: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One row by key, or ``None`` when there is no such row."""
        spec = self.mapping.table(table)
        selected = self._selection(spec, columns)
        rows = self._select(spec, selected, where=self._key_values(spec, key))
        try:
            values = next(rows, None)
        finally:
            rows.close()
        if values is None:
            return None
        return {column.logical: value for column, value in zip(selected, values, strict=True)}

    @staticmethod
    def _key(table: TableMapping, key: Sequence[Any]) -> Sequence[Any]:
        if isinstance(key, str | bytes) or len(key) != len(table.key):
            raise ValueError(
                f"{table.logical} has a key of {len(table.key)} column(s) "
                f"({', '.join(table.key)}): give a sequence of that many values, got {key!r}"
            )
        return key

    @staticmethod
    def _key_part(table: TableMapping, key: Sequence[Any], size: int | None = None) -> None:
        """Refuse what is not a key of ``table`` or its leading columns (``size`` of them
        when the keys read together already have a length)."""
        if isinstance(key, str | bytes) or not 1 <= len(key) <= len(table.key):
            raise ValueError(
                f"{table.logical} has a key of {len(table.key)} column(s) "
                f"({', '.join(table.key)}): give a sequence of that many values, or of its "
                f"leading ones, got {key!r}"
            )
        if size is not None and len(key) != size:
            raise ValueError(
                f"keys read together from {table.logical} must all give {size} column(s), "
                f"got {key!r}"
            )

    def _select(
        self,
        table: TableMapping,
        selected: list[ColumnMapping],
        *,
        since: str | None = None,
        where: Mapping[str, Any] | None = None,
        keys: Iterable[Sequence[Any]] | None = None,
    ) -> Generator[list[Any], None, None]:
        conditions, params = self._equalities(table, where or {})
        if since is not None:
            modified = self._modified(table)
            conditions.append(f"{self._q(modified.column)} >= ?")
            params.append(self._param(table, modified, since))
        real = [column for column in selected if column.physical]
        head = (
            f"SELECT {_aliased(self._selected(table, c) for c in real)} "  # noqa: S608
            f"FROM {self._q(table.table)}"
        )
        ordered = [self._expr(table, c) for c in self._ordering(table)]
        order = f" ORDER BY {', '.join(ordered)}"
        rows: Generator[list[Any], None, None]
        if keys is None and self.dialect == "sqlite":
            rows = self._paged(table, real, conditions, params)
        elif keys is None:
            where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = self._stream(table, real, [(head + where_sql + order, params)])
        else:
            chunks = self._key_chunks(table, head, order, conditions, params, keys)
            rows = self._stream(table, real, chunks, stored=self.dialect == "sqlite")
        if len(real) == len(selected):
            return rows
        return self._with_constants(table, selected, rows)

    @staticmethod
    def _ordering(table: TableMapping) -> list[ColumnMapping]:
        """The key columns rows are ordered by: a constant one orders nothing."""
        return [table.columns[name] for name in table.key if table.columns[name].physical]

    def _with_constants(
        self,
        table: TableMapping,
        selected: list[ColumnMapping],
        rows: Generator[list[Any], None, None],
    ) -> Generator[list[Any], None, None]:
        """Rows of the physical columns completed with the constant ones, in ``selected``
        order."""
        constants = {
            c.logical: self._normalise(table, c, c.constant) for c in selected if c.is_constant
        }
        try:
            for values in rows:
                given = iter(values)
                yield [constants[c.logical] if c.is_constant else next(given) for c in selected]
        finally:
            rows.close()

    def _key_chunks(
        self,
        table: TableMapping,
        head: str,
        order: str,
        conditions: list[str],
        params: list[Any],
        keys: Iterable[Sequence[Any]],
    ) -> Iterator[tuple[str, list[Any]]]:
        keys = iter(keys)
        first = next(keys, None)
        if first is None:
            return
        self._key_part(table, first)
        key_columns = [table.columns[name] for name in table.key[: len(first)]]
        # a constant key column selects no row of its own: a key whose value is not the
        # constant (or that a value map does not know) matches nothing
        varying = [c for c in key_columns if not c.is_constant]
        per_chunk = max(1, _PARAMETERS_PER_STATEMENT // max(1, len(varying)))
        seen: set[tuple[Any, ...]] = set()
        chunk: list[tuple[Any, ...]] = []

        def statement() -> tuple[str, list[Any]]:
            if not varying:
                where = " AND ".join(conditions)
                return f"{head}{f' WHERE {where}' if where else ''}{order}", list(params)
            if len(varying) == 1:
                marks = ", ".join(["?"] * len(chunk))
                condition = self._match(table, varying[0], f"IN ({marks})")
            else:
                one = " AND ".join(self._match(table, c, "= ?") for c in varying)
                condition = " OR ".join(f"({one})" for _ in chunk)
            sql = f"{head} WHERE {' AND '.join([*conditions, f'({condition})'])}{order}"
            return sql, [*params, *(value for key in chunk for value in key)]

        for key in itertools.chain([first], keys):
            if isinstance(key, str | bytes) or len(key) != len(key_columns):
                self._key_part(table, key, len(key_columns))
            converted = self._key_params(table, key_columns, key)
            if converted is None or converted in seen:
                continue
            seen.add(converted)
            chunk.append(converted)
            if len(chunk) >= per_chunk:
                yield statement()
                chunk = []
                if not varying:
                    return
        if chunk:
            yield statement()

    def _key_params(
        self, table: TableMapping, key_columns: list[ColumnMapping], key: Sequence[Any]
    ) -> tuple[Any, ...] | None:
        """The parameters of a key's varying columns; ``None`` when no row can have it."""
        converted = []
        for column, value in zip(key_columns, key, strict=True):
            if column.is_constant:
                if not self._is_constant(table, column, value):
                    return None
                continue
            try:
                converted.append(self._param(table, column, value, compared=True))
            except SourceError:
                if not self._value_mapped(column):
                    raise
                return None
        return tuple(converted)

    def _paged(
        self,
        table: TableMapping,
        selected: list[ColumnMapping],
        conditions: list[str],
        params: list[Any],
    ) -> Generator[list[Any], None, None]:
        """A read of SQLite, a page of rows at a time, each page after the last key read.

        The SQLite3 ODBC driver fetches the whole result of a statement with parameters
        (or in a transaction) into memory before the first row: one statement over a
        500,000-row table costs its whole size. Pages bound that by ``_PAGE_ROWS``; they
        follow the key order (NULLs first, as SQLite sorts them)."""
        key_columns = self._ordering(table)
        # the key as the driver gives it, after the values read: what the next page follows
        at = [len(selected) + i for i in range(len(key_columns))]
        expressions = [
            *(self._selected(table, c) for c in selected),
            *(self._expr(table, c) for c in key_columns),
        ]
        head = f"SELECT {_aliased(expressions)} FROM {self._q(table.table)}"  # noqa: S608
        order = f" ORDER BY {', '.join(self._expr(table, c) for c in key_columns)} LIMIT ?"
        page = _Page()

        def pages() -> Iterator[tuple[str, list[Any]]]:
            after: list[Any] = []
            while True:
                page_conditions, page_params = list(conditions), list(params)
                if after:
                    condition, values = self._after(table, key_columns, after)
                    page_conditions.append(condition)
                    page_params += values
                where_sql = f" WHERE {' AND '.join(page_conditions)}" if page_conditions else ""
                page.rows, page.last = 0, None
                yield head + where_sql + order, [*page_params, _PAGE_ROWS]
                if page.rows < _PAGE_ROWS or page.last is None:
                    return
                after = [page.last[i] for i in at]

        yield from self._stream(table, selected, pages(), page=page, stored=True)

    def _after(
        self, table: TableMapping, key_columns: list[ColumnMapping], key: list[Any]
    ) -> tuple[str, list[Any]]:
        """The condition "key after ``key``" in key order, for raw values as read (``None``
        sorts first: after it is ``IS NOT NULL``, equal to it ``IS NULL``)."""
        alternatives, values = [], []
        for i, column in enumerate(key_columns):
            parts = []
            for earlier, value in zip(key_columns[:i], key[:i], strict=True):
                if value is None:
                    parts.append(f"{self._expr(table, earlier)} IS NULL")
                else:
                    parts.append(f"{self._expr(table, earlier)} = ?")
                    values.append(value)
            if key[i] is None:
                parts.append(f"{self._expr(table, column)} IS NOT NULL")
            else:
                parts.append(f"{self._expr(table, column)} > ?")
                values.append(key[i])
            alternatives.append(f"({' AND '.join(parts)})")
        return f"({' OR '.join(alternatives)})", values

    def _stream(
        self,
        table: TableMapping,
        selected: list[ColumnMapping],
        statements: Iterable[tuple[str, list[Any]]],
        page: _Page | None = None,
        *,
        stored: bool = False,
    ) -> Generator[list[Any], None, None]:
        """Rows of each statement in turn, their ``selected`` values normalised (columns
        after them are left out), a value the column cannot carry as an
        :class:`Unreadable`; ``page`` counts each statement's rows and keeps its last one
        as the driver gave it (reset by whoever makes the statements); ``stored``: the
        values are selected by :meth:`_selected`."""
        converters = [self._converter(table, column, stored) for column in selected]
        self._open_reads += 1
        try:
            for sql, params in statements:
                cursor = self._cursor()
                try:
                    with self._errors("read", table):
                        cursor.execute(sql, params)
                    self._end_sqlite_read()
                    while True:
                        with self._errors("read", table):
                            rows = cursor.fetchmany(self.fetch_size)
                        if not rows:
                            break
                        if page is not None:
                            page.rows += len(rows)
                            page.last = rows[-1]
                        for row in rows:
                            yield [convert(v) for convert, v in zip(converters, row, strict=False)]
                finally:
                    with suppress(pyodbc.Error):
                        cursor.close()
        finally:
            self._open_reads = max(0, self._open_reads - 1)
            self._release()

    # -- writing ----------------------------------------------------------------------

    def _assignments(
        self, table: TableMapping, values: Mapping[str, Any]
    ) -> tuple[list[ColumnMapping], list[Any]]:
        """The physical columns a write sets and their parameters. An absent column's value
        is dropped; a constant column's must be its constant; a reference column binds
        the referred row's ``by`` value."""
        columns, params = [], []
        referring: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            column = table.column(name)
            if name == table.identity:
                raise SourceError(
                    f"{table.logical}.{name} is set by the database and cannot be written"
                )
            if column.absent:
                continue
            if column.is_constant:
                if not self._is_constant(table, column, value):
                    raise SourceError(
                        f"{table.logical}.{name}: every row of {self.mapping.source} holds "
                        f"{column.constant!r}, {value!r} cannot be written"
                    )
                continue
            if column.refers is not None:
                referring.setdefault(str(column.column), {})[name] = value
                continue
            columns.append(column)
            params.append(self._param(table, column, value))
        for physical, named in referring.items():
            column = next(c for c in table.columns.values() if c.column == physical and c.refers)
            columns.append(column)
            params.append(self._referred(table, column, named))
        return columns, params

    def _referred(self, table: TableMapping, column: ColumnMapping, named: dict[str, Any]) -> Any:
        """The ``by`` value of the one row the reference columns sharing ``column``'s
        physical column name (``{logical column: value}``); ``None`` when all are None."""
        if all(value is None for value in named.values()):
            return None
        ref = column.refers
        assert ref is not None
        target = self.mapping.table(ref.table)
        by = target.columns[ref.by]
        wanted = {table.columns[name].refers.column: value for name, value in named.items()}  # type: ignore[union-attr]
        conditions, params = self._equalities(target, wanted)
        sql = (
            f"SELECT {_aliased([self._q(by.column)])} FROM {self._q(target.table)} "  # noqa: S608
            f"WHERE {' AND '.join(conditions) or '1 = 1'}"
        )
        found = [row[0] for row in self._stream(target, [by], [(sql, params)])]
        if len(found) != 1:
            shown = ", ".join(f"{name} = {value!r}" for name, value in wanted.items())
            raise SourceError(
                f"{table.logical}.{', '.join(named)}: {len(found) or 'no'} row(s) of "
                f"{target.logical} have {shown}, exactly one is needed"
            )
        return self._param(target, by, found[0])

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        """Insert one row; the modification column is set to :meth:`clock` unless given."""
        spec = self.mapping.table(table)
        row = dict(values)
        missing = [
            name
            for name in spec.key
            if row.get(name) is None and not spec.columns[name].is_constant
        ]
        if missing:
            raise SourceError(
                f"insert into {spec.logical}: key column(s) {', '.join(missing)} missing"
            )
        if spec.modified is not None and spec.modified not in row:
            row[spec.modified] = self.clock()
        conn = self._connection()
        columns, params = self._assignments(spec, row)
        names = [self._q(c.column) for c in columns] + [self._q(n) for n, _ in spec.filter]
        params += [value for _, value in spec.filter]
        sql = (
            f"INSERT INTO {self._q(spec.table)} "  # noqa: S608
            f"({', '.join(names)}) "
            f"VALUES ({', '.join(['?'] * len(names))})"
        )
        self._writing = True
        with self._errors("insert into", spec):
            conn.execute(sql, params)

    def update(self, table: str, key: Sequence[Any], values: Mapping[str, Any]) -> int:
        """Update one row by key; sets the modification column to :meth:`clock` unless given.

        Key columns may appear in ``values`` only with their current value.  Returns the
        number of rows changed (0 when the key does not exist).
        """
        spec = self.mapping.table(table)
        key_values = self._key_values(spec, key)
        row = dict(values)
        for name, current in key_values.items():
            if name in row:
                column = spec.columns[name]
                if self._param(spec, column, row.pop(name)) != self._param(spec, column, current):
                    raise SourceError(
                        f"update of {spec.logical}: the key column {name} cannot change"
                    )
        if spec.modified is not None and spec.modified not in row:
            row[spec.modified] = self.clock()
        if not row:
            return 0
        conn = self._connection()
        columns, params = self._assignments(spec, row)
        conditions, key_params = self._equalities(spec, key_values)
        sql = (
            f"UPDATE {self._q(spec.table)} "  # noqa: S608
            f"SET {', '.join(f'{self._q(c.column)} = ?' for c in columns)} "
            f"WHERE {' AND '.join(conditions)}"
        )
        self._writing = True
        with self._errors("update", spec):
            count: int = conn.execute(sql, [*params, *key_params]).rowcount
        return count

    def delete(self, table: str, key: Sequence[Any]) -> int:
        """Delete one row by key; returns the number of rows deleted."""
        spec = self.mapping.table(table)
        conn = self._connection()
        conditions, params = self._equalities(spec, self._key_values(spec, key))
        sql = f"DELETE FROM {self._q(spec.table)} WHERE {' AND '.join(conditions)}"  # noqa: S608
        self._writing = True
        with self._errors("delete from", spec):
            count: int = conn.execute(sql, params).rowcount
        return count

    def next_code(self, table: str, column: str, prefix: str, width: int) -> str:
        """The code after the greatest ``prefix`` + digits code of ``width`` characters.

        ``next_code("F_COMPTET", "CT_Num", "P", 8)`` after ``P0000123`` is ``P0000124``;
        ``P0000001`` when there is none.  Not a reservation: insert it in the same
        transaction, and a concurrent writer shows as a duplicate-key error.
        """
        spec = self.mapping.table(table)
        mapped = spec.column(column)
        digits = width - len(prefix)
        if mapped.type != "text":
            raise SourceError(f"{spec.logical}.{column} is not a text column")
        if digits < 1:
            raise ValueError(f"width {width} leaves no room for digits after {prefix!r}")
        if mapped.length is not None and width > mapped.length:
            raise SourceError(f"{spec.logical}.{column} holds at most {mapped.length} characters")
        quoted = self._q(mapped.column)
        conditions, params = self._filter(spec)
        sql = (
            f"SELECT {_aliased([quoted])} FROM {self._q(spec.table)} "  # noqa: S608
            f"WHERE {' AND '.join([*conditions, f'{quoted} >= ? AND {quoted} <= ?'])} "
            f"ORDER BY {quoted} DESC"
        )
        params += [prefix + "0" * digits, prefix + "9" * digits]
        last = 0
        for (code,) in self._stream(spec, [mapped], [(sql, params)]):
            if not isinstance(code, str):
                continue  # unreadable: not a code of this series
            suffix = code[len(prefix) :] if code.startswith(prefix) else ""
            if len(code) == width and suffix.isascii() and suffix.isdigit():
                last = int(suffix)
                break
        if last + 1 >= 10**digits:
            raise SourceError(f"{spec.logical}.{column}: every {prefix!r} code of {width} is taken")
        return f"{prefix}{last + 1:0{digits}d}"

    # -- transactions -----------------------------------------------------------------

    def hold_writes(self) -> None:
        """From now on commit nothing: each :meth:`transaction` becomes a savepoint of one
        transaction that stays open (reads see its writes) until :meth:`close` rolls it
        back. The preview of ``sync --dry-run`` runs the real passes this way."""
        self._held = True

    def commit(self) -> None:
        if self._held:
            return
        conn = self._connection()
        with self._errors("commit on", None):
            conn.commit()
        self._writing = False

    def rollback(self) -> None:
        if self._held:
            raise SourceError("writes are held (a preview): they are undone by close()")
        conn = self._connection()
        with self._errors("roll back on", None):
            conn.rollback()
        self._writing = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit when the block succeeds, roll back when it raises."""
        if self._held:
            with self._savepoint():
                yield
            return
        self._connection()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"dossiersync_held_{self._savepoints}"
        conn = self._connection()
        self._writing = True  # the open transaction holds writes: never end it on a read
        with self._errors("open a savepoint on", None):
            conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            with self._errors("roll back to a savepoint on", None):
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        with self._errors("release a savepoint on", None):
            conn.execute(f"RELEASE SAVEPOINT {name}")

    # -- discovery --------------------------------------------------------------------

    @staticmethod
    def data_source_connection(name: str) -> str:
        """The connection string of a data source :meth:`data_sources` listed."""
        return data_source_connection(name)

    @staticmethod
    def data_sources(patterns: Sequence[str]) -> dict[str, str]:
        """ODBC data sources whose name matches one of ``patterns`` → their driver.

        Patterns are shell-style (``fnmatch``), matched without regard to case; an empty
        list matches every data source.  The system, user and ``ODBCINI`` files are read.
        """
        try:
            sources: dict[str, str] = pyodbc.dataSources()
        except pyodbc.Error as exc:
            raise SourceUnavailable(
                said("cannot list the ODBC data sources: {error}", error=str(exc))
            ) from None
        if not patterns:
            return dict(sorted(sources.items()))
        lowered = [pattern.lower() for pattern in patterns]
        return {
            name: driver
            for name, driver in sorted(sources.items())
            if any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in lowered)
        }
