"""What the sync engine asks of the Sage 50FR side: the ``SageSource`` protocol.

The engine and the entities speak in logical tables and columns (the names of the
mapping: ``F_COMPTET``, ``CT_Num``…) and in text timestamps ``YYYY-MM-DD hh:mm:ss.fff``.
How the source is reached (an ODBC driver, a DSN), how names are quoted, how rows are
streamed and how values are normalised: all of that lives in the endpoint plugin that
implements this protocol (``dossiersync.plugins.sage50fr_odbc``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

#: how many characters of a value an unreadable value's description quotes
SHOWN_CHARACTERS = 80
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def shown(value: Any) -> str:
    """A raw value as messages quote it: bytes in hex (``X'00FF'``), control characters
    of text as ``\\xNN``, and anything longer than :data:`SHOWN_CHARACTERS` cut, its full
    length said."""
    if isinstance(value, bytes | bytearray):
        text, size = f"X'{bytes(value).hex().upper()}'", f"{len(value):,} bytes"
    else:
        text = value if isinstance(value, str) else repr(value)
        size = f"{len(text):,} characters"
        # a control character is written \xNN: a NUL would cut a message, or be refused
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}… ({size})"


@dataclass(frozen=True)
class Unreadable:
    """A value of a Sage row that its column's declared type cannot carry as it is (a
    blob or invalid UTF-8 in a text column, a NUL character, ``0.5`` or ``'abc'`` in an
    int column, a timestamp that is not one).

    A source yields it in the row in place of the value, so that one bad cell makes its
    record an incident instead of stopping the table, and is never silently changed.
    ``value`` is the raw value as :func:`shown` quotes it.
    """

    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return self.value


class SageSource(Protocol):
    """Row I/O against one Sage 50FR dossier; one thread at a time."""

    #: the source named for messages, its password masked
    source: str

    def open(self) -> None:
        """Connect; ``SourceUnavailable`` when the source cannot be reached."""
        ...

    def close(self) -> None:
        """Disconnect; an open transaction is rolled back."""
        ...

    def key_columns(self, table: str) -> Sequence[str]:
        """The columns of ``table``'s key, in key order."""
        ...

    def clock(self) -> str:
        """The source's own current time (never the host's), for watermarks."""
        ...

    def text_lengths(self, table: str) -> Mapping[str, int | None]:
        """The longest text each text column of ``table`` holds (``None``: no limit);
        a column missing from the answer keeps the entity schema's limit."""
        ...

    def high_water_mark(self, table: str) -> str | None:
        """The greatest modification time in ``table``, ``None`` when it is empty; a
        value that is not a timestamp is passed over."""
        ...

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        *,
        since: str | None = None,
        where: Mapping[str, Any] | None = None,
        keys: Iterable[Sequence[Any]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows of ``table`` as ``{column: value}``, ordered by key: modified at or after
        ``since``, equal to ``where``, with one of ``keys`` (whole keys, or all the same
        number of leading key columns). A value the column's type cannot carry as it is
        comes as an :class:`Unreadable`; so does a row's modification time that is not
        one, under the modification column's name, even when not asked for."""
        ...

    def count(
        self, table: str, *, since: str | None = None, where: Mapping[str, Any] | None = None
    ) -> int:
        """How many rows :meth:`read` would stream with the same ``since`` and ``where``
        (one cheap query: a pass's progress total)."""
        ...

    def read_keys(
        self, table: str, where: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """The keys of ``table`` (tuples in key-column order), ordered by key."""
        ...

    def get(
        self, table: str, key: Sequence[Any], columns: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One row by key, or ``None``."""
        ...

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        """Insert one row (its modification column set to :meth:`clock` unless given)."""
        ...

    def update(self, table: str, key: Sequence[Any], values: Mapping[str, Any]) -> int:
        """Update one row by key; the number of rows changed (0: no such key)."""
        ...

    def delete(self, table: str, key: Sequence[Any]) -> int:
        """Delete one row by key; the number of rows deleted."""
        ...

    def next_code(self, table: str, column: str, prefix: str, width: int) -> str:
        """The code after the greatest ``prefix`` + digits code of ``width`` characters."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Writes of the block committed together when it succeeds, rolled back if not."""
        ...

    def hold_writes(self) -> None:
        """From now on commit nothing: each :meth:`transaction` keeps its writes (or
        undoes them on error) inside one transaction that :meth:`close` rolls back.
        Reads see the writes held. (The preview of ``sync --dry-run``.)"""
        ...


def may_hide_edits(sage: Any, table: str, mark: str | None, since: str | None) -> bool:
    """Whether ``table`` may hold edits its mark does not show: its modification column
    tells only the day (``changes_by_day``, when the source says so), and its latest day
    is the day of ``since`` (the time of the last look) or later. A second edit made the
    same day leaves the day and the row count as they were: only reading tells."""
    by_day = getattr(sage, "changes_by_day", None)
    if not mark or by_day is None or not by_day(table):
        return False
    return since is None or str(mark)[:10] >= since[:10]
