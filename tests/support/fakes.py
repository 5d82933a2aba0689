"""In-memory stand-ins for the two endpoint protocols, for fast unit tests of the engine.

``FakeSage`` implements ``SageSource`` over dicts and ``FakeSsm`` implements
``SsmTarget`` over dicts. They keep the rules the engine relies on (a modification
column moved by every write, ``since`` read with ``>=``, a transaction that really rolls
back; ``dateUpdated``/``dateDeleted`` moved by every write, soft deletion, foreign keys
read back as ``{"id": n, "value": …}``) and nothing else: the end-to-end tests keep the
real ODBC driver and the HTTP simulator.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dossiersync.errors import SourceError, SsmNotFound, SsmRefused
from dossiersync.plugins.sales_management.settings import SalesManagementSettings
from dossiersync.target import Record, WriteResult

if TYPE_CHECKING:
    from dossiersync.source import SageSource
    from dossiersync.target import SsmTarget

Key = tuple[str, ...]
START = datetime(2026, 1, 5, 8, 0, 0)


class FakeSage:
    """A Sage 50FR dossier as ``{table: {key: row}}``; ``keys`` names each table's key
    columns. Every reading of :meth:`clock` and every write moves the clock on by 1 ms."""

    def __init__(self, keys: Mapping[str, Sequence[str]], modified: str = "cbModification") -> None:
        self.source = "fake Sage dossier"
        self.keys = {table: tuple(columns) for table, columns in keys.items()}
        self.modified = modified
        self.tables: dict[str, dict[Key, dict[str, Any]]] = {t: {} for t in self.keys}
        self.now = START
        self.is_open = False
        self._held: dict[str, dict[Key, dict[str, Any]]] | None = None

    # -- the protocol ------------------------------------------------------------------

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        if self._held is not None:
            self.tables, self._held = self._held, None
        self.is_open = False

    def key_columns(self, table: str) -> Sequence[str]:
        return self.keys[table]

    def clock(self) -> str:
        self.now += timedelta(milliseconds=1)
        return self.now.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]

    def text_lengths(self, table: str) -> dict[str, int | None]:
        return {}  # the entity schemas' own limits

    def high_water_mark(self, table: str) -> str | None:
        return max((r[self.modified] for r in self.tables[table].values()), default=None)

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        *,
        since: str | None = None,
        where: Mapping[str, Any] | None = None,
        keys: Iterable[Sequence[Any]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        wanted = None if keys is None else {_key(k) for k in keys}
        size = len(next(iter(wanted))) if wanted else 0
        for key, row in sorted(self.tables[table].items()):
            if since is not None and row[self.modified] < since:
                continue
            if any(row.get(c) != v for c, v in (where or {}).items()):
                continue
            if wanted is not None and key[:size] not in wanted:
                continue
            yield {c: row.get(c) for c in columns} if columns else dict(row)

    def count(
        self, table: str, *, since: str | None = None, where: Mapping[str, Any] | None = None
    ) -> int:
        return sum(1 for _ in self.read(table, since=since, where=where))

    def read_keys(
        self, table: str, where: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[Any, ...]]:
        for row in self.read(table, self.keys[table], where=where):
            yield tuple(row[c] for c in self.keys[table])

    def get(
        self, table: str, key: Sequence[Any], columns: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        return next(self.read(table, columns, keys=[key]), None)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        key = _key(values[c] for c in self.keys[table])
        if key in self.tables[table]:
            raise SourceError(f"insert into {table}: key {key} already exists")
        self.tables[table][key] = {self.modified: self.clock(), **values}

    def update(self, table: str, key: Sequence[Any], values: Mapping[str, Any]) -> int:
        row = self.tables[table].get(_key(key))
        if row is None:
            return 0
        row.update({self.modified: self.clock(), **values})
        return 1

    def delete(self, table: str, key: Sequence[Any]) -> int:
        return 0 if self.tables[table].pop(_key(key), None) is None else 1

    def next_code(self, table: str, column: str, prefix: str, width: int) -> str:
        digits = width - len(prefix)
        taken = [
            int(code[len(prefix) :])
            for code in (str(r.get(column) or "") for r in self.tables[table].values())
            if len(code) == width and code.startswith(prefix) and code[len(prefix) :].isdigit()
        ]
        return f"{prefix}{max(taken, default=0) + 1:0{digits}d}"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        before = copy.deepcopy(self.tables)
        try:
            yield
        except BaseException:
            self.tables = before
            raise

    def hold_writes(self) -> None:
        self._held = copy.deepcopy(self.tables)


def _key(parts: Iterable[Any]) -> Key:
    # the ODBC driver binds ``1`` and ``"1"`` alike: keys compare as trimmed text
    return tuple(str(p).strip() for p in parts)


#: fields the fake reads back as ``{"id": n, "value": …}``, as the API renders references
REFERENCES = {
    "accounts": ("typeId", "branchId", "salesRepId1"),
    "contacts": ("accountId", "salesRepId"),
}


class FakeSsm:
    """A Sales Management implementation as ``{resource: {id: record}}``.

    Every write moves ``dateUpdated`` (a deletion: ``dateDeleted``) on by 1 ms; deleted
    records are kept and listed only with ``deleted=True``. :meth:`refuse` makes the
    writes of one record fail with ``SsmRefused``.
    """

    def __init__(self, bulk_limit: int = 200) -> None:
        self.concurrency = 4
        # the built-in endpoint's settings, defaults but the test's own
        self.settings = SalesManagementSettings()
        self.records: dict[str, dict[int, Record]] = {}
        self.refusals: dict[tuple[str, str | int], str] = {}
        self.limit = bulk_limit
        self.now = START
        self._lock = threading.Lock()

    # -- test helpers ------------------------------------------------------------------

    def refuse(
        self, resource: str, *, ext_id: str | None = None, record_id: int | None = None
    ) -> None:
        """Refuse every write of the record with this extId (or id) from now on."""
        marker: str | int = ext_id if ext_id is not None else int(record_id or 0)
        self.refusals[(resource, marker)] = f"400: {resource} {marker} refused"

    def live(self, resource: str) -> dict[str, Record]:
        """The live records of ``resource`` by extId, as read."""
        return {r["extId"]: r for r in self.list_changed(resource) if r.get("extId")}

    # -- the protocol ------------------------------------------------------------------

    def list_changed(
        self,
        resource: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        ext_prefix: str | None = None,
        equals: Mapping[str, int | str] | None = None,
        deleted: bool = False,
    ) -> Iterator[Record]:
        after = None if since is None else _shift(since, -overlap_seconds)
        with self._lock:
            stored = [dict(r) for _, r in sorted(self.records.get(resource, {}).items())]
        for record in stored:
            if record["deleted"] and not deleted:
                continue
            if after is not None and not (self.changed_at(record) or "") > after:
                continue
            if ext_prefix is not None and not str(record.get("extId") or "").startswith(ext_prefix):
                continue
            if any(record.get(n) != v for n, v in (equals or {}).items()):
                continue
            yield self._rendered(resource, record)

    def changes_since(
        self, resource: str, since: str, *, overlap_seconds: int = 0, limit: int = 1
    ) -> list[Record]:
        found = self.list_changed(
            resource, since=since, overlap_seconds=overlap_seconds, deleted=True
        )
        return [r for _, r in zip(range(limit), found, strict=False)]

    def find(
        self, resource: str, *, ext_ids: Sequence[str] = (), ids: Sequence[int] = ()
    ) -> Iterator[Record]:
        wanted_ext, wanted_ids = set(ext_ids), {int(i) for i in ids}
        for record in self.list_changed(resource):
            if record.get("extId") in wanted_ext or record["id"] in wanted_ids:
                yield record

    def get(self, resource: str, record_id: int) -> Record:
        with self._lock:
            record = self.records.get(resource, {}).get(int(record_id))
            if record is None:
                raise SsmNotFound(f"404: no {resource} {record_id}", 404)
            return self._rendered(resource, dict(record))

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        with self._lock:
            self._check(resource, body.get("extId"), None)
            table = self.records.setdefault(resource, {})
            record_id = max(table, default=0) + 1
            stamp = self._stamp()
            table[record_id] = {
                "id": record_id,
                "extId": None,
                **{k: self.fk_id(v) if self._is_ref(resource, k) else v for k, v in body.items()},
                "dateCreated": stamp,
                "dateUpdated": stamp,
                "dateDeleted": None,
                "deleted": False,
            }
            return record_id

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        with self._lock:
            record = self._live(resource, record_id)
            self._check(resource, record.get("extId"), record_id)
            record.update(
                {k: self.fk_id(v) if self._is_ref(resource, k) else v for k, v in body.items()}
            )
            record["dateUpdated"] = self._stamp()

    def delete(self, resource: str, record_id: int) -> None:
        with self._lock:
            record = self._live(resource, record_id)
            self._check(resource, record.get("extId"), record_id)
            record.update(deleted=True, dateDeleted=self._stamp())

    def bulk_limit(self, resource: str) -> int:
        return self.limit

    def bulk_create(self, resource: str, bodies: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        results = []
        for body in bodies:
            try:
                results.append(WriteResult(self.create(resource, body)))
            except SsmRefused as exc:
                results.append(WriteResult(error=exc))
        return results

    def bulk_update(
        self, resource: str, items: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        results = []
        for record_id, body in items:
            try:
                self.update(resource, record_id, body)
                results.append(WriteResult(record_id))
            except SsmRefused as exc:
                results.append(WriteResult(record_id, exc))
        return results

    def changed_at(self, record: Mapping[str, Any]) -> str | None:
        dates = [str(record[k]) for k in ("dateUpdated", "dateDeleted") if record.get(k)]
        return max(dates, default=None)

    def fk_id(self, value: Any) -> int | None:
        if isinstance(value, Mapping):
            value = value.get("id")
        return None if value is None or value == "" else int(value)

    def field_value(self, value: Any) -> Any:
        return self.fk_id(value) if isinstance(value, Mapping) else value

    def earlier(self, stamp: str, seconds: int) -> str:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"

    # -- inside ------------------------------------------------------------------------

    def _stamp(self) -> str:
        self.now += timedelta(milliseconds=1)
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _live(self, resource: str, record_id: int) -> Record:
        record = self.records.get(resource, {}).get(int(record_id))
        if record is None or record["deleted"]:
            raise SsmNotFound(f"404: no live {resource} {record_id}", 404)
        return record

    def _check(self, resource: str, ext_id: str | None, record_id: int | None) -> None:
        for marker in (ext_id, record_id):
            message = self.refusals.get((resource, marker)) if marker is not None else None
            if message:
                raise SsmRefused(message, 400)

    def _is_ref(self, resource: str, name: str) -> bool:
        return name in REFERENCES.get(resource, ())

    def _rendered(self, resource: str, record: Record) -> Record:
        for name in REFERENCES.get(resource, ()):
            if record.get(name) is not None:
                record[name] = {"id": record[name], "value": f"{name} {record[name]}"}
        return record


def _shift(stamp: str, seconds: int) -> str:
    moment = datetime.strptime(stamp.removesuffix("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return (moment + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


if TYPE_CHECKING:
    # mypy checks that both fakes stand where the protocols are expected
    _sage: SageSource = FakeSage({})
    _ssm: SsmTarget = FakeSsm()
