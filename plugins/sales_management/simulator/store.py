"""SQLite storage of the simulated Sales Management resources.

Every record is one JSON document in the ``records`` table, with the columns the API
filters and pages on most (``ext_id``, ``date_updated``, ``deleted``) copied out and
indexed. Foreign keys are stored as plain ids and rendered as ``{"id": n, "value": label}``
when read, like the real API does.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .where import (
    FIELD_PATTERN,
    Literal,
    SqlFragment,
    WhereSyntaxError,
    compile_where,
    parse,
)

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
"""Dates are written as the API shows them, ``2017-10-17T11:17:57.363Z``: milliseconds, so
records written within the same millisecond share their date, as on a real tenant."""
API_USER_ID = 1
"""The user the API keys act as: it is recorded as creator, updater and deleter."""

SCHEMA_VERSION = 2

SYSTEM_FIELDS = (
    "id",
    "dateCreated",
    "dateUpdated",
    "dateDeleted",
    "deleted",
    "salesRepIdCreated",
    "salesRepIdUpdated",
    "salesRepIdDeleted",
)
SYSTEM_REFERENCES: Mapping[str, str] = {
    "salesRepIdCreated": "users",
    "salesRepIdUpdated": "users",
    "salesRepIdDeleted": "users",
}
COLUMNS: Mapping[str, str] = {
    "id": "records.id",
    "extId": "records.ext_id",
    "dateUpdated": "records.date_updated",
    "deleted": "records.deleted",
}
#: resources extra fields are defined for (the documented ``/extrafields/{resource}`` values)
EXTRA_FIELD_RESOURCES = (
    "accounts",
    "activities",
    "calendar",
    "contacts",
    "opportunities",
    "products",
    "rates",
    "salesorders",
    "users",
)
#: the documented types of an extra field
EXTRA_FIELD_TYPES = ("datetime", "text", "decimal", "bit", "list", "multivalue")
#: how an extra field's value appears on a record, written and read: unpublished, so a
#: switch. ``flat``: under its name, as a field of the record (``"Z_dossier": "Acme"``);
#: ``nested``: in an ``extraFields`` object (``"extraFields": {"Z_dossier": "Acme"}``)
EXTRA_FIELD_SHAPES = ("flat", "nested")
NESTED_KEY = "extraFields"
_EXTRA_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DATE_FIELD = re.compile(r"(?:^|\.)date[A-Z0-9_][A-Za-z0-9_]*$")
_DATE_LITERAL = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:Z|\+00:00)?$"
)


class ApiError(Exception):
    """A request the API answers with an error status and a ``Message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Resource:
    """One API resource: what it requires on create, what it references, how it is named."""

    name: str
    required: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)
    label: tuple[str, ...] = ("name",)
    writable: bool = True
    #: most items a ``/{resource}/bulk`` call takes; 0: the resource has no bulk call
    bulk: int = 0
    #: fields that must be JSON integers (an order's number, a line's quantity)
    integers: tuple[str, ...] = ()
    #: a field written under one name and read back under another (``salesOrderId``)
    written_as: Mapping[str, str] = field(default_factory=dict)
    seed: tuple[Mapping[str, Any], ...] = ()

    def all_references(self) -> Mapping[str, str]:
        return {**SYSTEM_REFERENCES, **self.references}


def _described(*descriptions: tuple[str, str]) -> tuple[Mapping[str, Any], ...]:
    return tuple(
        {"description": fr, "descriptionFR": fr, "descriptionEN": en} for fr, en in descriptions
    )


RESOURCES: Mapping[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "users",
            writable=False,
            seed=(
                {"name": "Camille Martin", "email": "camille.martin@example.fr", "active": True},
                {"name": "Julien Dubois", "email": "julien.dubois@example.fr", "active": True},
                {"name": "Élodie Moreau", "email": "elodie.moreau@example.fr", "active": True},
            ),
        ),
        Resource(
            "branches",
            writable=False,
            seed=(
                {"name": "Siège"},
                {"name": "Agence Lyon"},
                {"name": "Agence Bordeaux"},
                {"name": "Agence Lille"},
            ),
        ),
        Resource(
            "accountTypes",
            writable=False,
            label=("description",),
            seed=_described(
                ("Client", "Customer"), ("Prospect", "Lead"), ("Partenaire", "Partner")
            ),
        ),
        Resource(
            "salesorderStatuses",
            writable=False,
            label=("description",),
            seed=_described(
                ("En cours", "Open"),
                ("Validée", "Confirmed"),
                ("Livrée", "Delivered"),
                ("Facturée", "Invoiced"),
                ("Annulée", "Cancelled"),
            ),
        ),
        Resource(
            "currencies",
            writable=False,
            label=("description",),
            seed=_described(("Euro", "Euro"), ("Dollar US", "US dollar"), ("Franc suisse", "CHF")),
        ),
        Resource(
            "accounts",
            required=("branchId", "name", "salesRepId1"),
            references={
                "branchId": "branches",
                "salesRepId1": "users",
                "salesRepId2": "users",
                "typeId": "accountTypes",
            },
            bulk=200,
        ),
        Resource(
            "contacts",
            required=("accountId", "firstName", "lastName", "salesRepId"),
            references={"accountId": "accounts", "salesRepId": "users"},
            label=("firstName", "lastName"),
            bulk=200,
        ),
        # a value list: generic bulk
        Resource(
            "productFamilies",
            required=("descriptionEN",),
            label=("descriptionEN",),
            bulk=200,
        ),
        Resource(
            "products",
            required=("model",),
            references={"familyId": "productFamilies"},
            label=("model",),
            bulk=100,
        ),
        Resource(
            "salesorders",
            required=("branchId", "reference", "salesRepId"),
            references={
                "branchId": "branches",
                "salesRepId": "users",
                "accountId": "accounts",
                "contactId": "contacts",
                "statusId": "salesorderStatuses",
                "currencyId": "currencies",
            },
            label=("reference",),
            integers=("number",),
            bulk=200,
        ),
        # created as POST /salesOrdersLines with salesOrderId, read back as salesorderId
        Resource(
            "salesOrdersLines",
            required=("salesOrderId", "productId", "quantity", "price"),
            references={"salesorderId": "salesorders", "productId": "products"},
            label=("extId",),
            integers=("quantity",),
            written_as={"salesOrderId": "salesorderId"},
        ),
        # (assumed) the public API has no invoices resource: read-only copies of ERP
        # invoices and credit notes, lines held in the record as a JSON array
        Resource(
            "salesInvoices",
            required=("accountId", "number"),
            references={"accountId": "accounts"},
            label=("number",),
        ),
    )
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    resource TEXT NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    ext_id TEXT,
    date_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource, id)
);
CREATE INDEX IF NOT EXISTS records_ext_id ON records (resource, ext_id);
CREATE INDEX IF NOT EXISTS records_date_updated ON records (resource, date_updated);
CREATE TABLE IF NOT EXISTS extra_fields (
    id INTEGER PRIMARY KEY,
    resource TEXT NOT NULL,
    field_name TEXT NOT NULL COLLATE NOCASE,
    type TEXT NOT NULL,
    description TEXT,
    date_created TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS extra_fields_name ON extra_fields (resource, field_name);
"""


def is_date_field(name: str) -> bool:
    return _DATE_FIELD.search(name) is not None


def normalise_date_literal(value: str) -> str:
    """A date literal in the stored form (``'2026-11-01 10:00:00'`` -> ``'…T10:00:00.000Z'``),
    so that dates compare as text; anything else is compared as it is."""
    found = _DATE_LITERAL.match(value.strip())
    if found is None:
        return value
    day, time, fraction = found.groups()
    return f"{day}T{time}.{(fraction or '')[:3].ljust(3, '0')}Z"


def format_stamp(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)[:-3] + "Z"


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text.rstrip("Z"), TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def _not_found(resource: str, record_id: int) -> ApiError:
    return ApiError(400, f"910: {resource} with id {record_id} does not exist")


class _Columns:
    """Resolves field names of one resource to SQL expressions over ``records``.

    An extra field is named by its own name in a filter whatever the shape its values
    take on a record (assumed: ``where=`` is SQL over the tenant's columns, and an extra
    field is a column named by its ``fieldName``).
    """

    def __init__(
        self, resource: Resource, extra: Mapping[str, str] | None = None, nested: bool = False
    ) -> None:
        self.resource = resource
        self.references = resource.all_references()
        self.nested_names = frozenset(extra or ()) if nested else frozenset()

    def expression(self, name: str) -> SqlFragment:
        if name in COLUMNS:
            return SqlFragment(COLUMNS[name])
        if name in self.nested_names:
            return SqlFragment("json_extract(records.data, ?)", (f"$.{NESTED_KEY}.{name}",))
        head, _, tail = name.partition(".")
        if head in self.references and tail in ("id", "value"):
            if tail == "id":
                return SqlFragment("json_extract(records.data, ?)", (f"$.{head}",))
            target = RESOURCES[self.references[head]]
            label = _label_sql(target)
            # label.sql is built from the registry's constants and holds only placeholders.
            sql = (
                f"(SELECT {label.sql} FROM records AS ref WHERE ref.resource = ? "  # noqa: S608
                "AND ref.id = json_extract(records.data, ?))"
            )
            return SqlFragment(sql, (*label.params, target.name, f"$.{head}"))
        return SqlFragment("json_extract(records.data, ?)", (f"$.{name}",))

    def literal(self, name: str, value: Literal) -> Literal:
        head, _, tail = name.partition(".")
        is_id = name == "id" or (head in self.references and tail in ("", "id"))
        if is_id and isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, str) and is_date_field(name):
            return normalise_date_literal(value)
        return value


def _label_sql(target: Resource) -> SqlFragment:
    parts = ["COALESCE(json_extract(ref.data, ?), '')" for _ in target.label]
    paths = tuple(f"$.{name}" for name in target.label)
    if len(parts) == 1:
        return SqlFragment("json_extract(ref.data, ?)", paths)
    return SqlFragment("TRIM(" + " || ' ' || ".join(parts) + ")", paths)


class Store:
    """The simulator's records, in one SQLite file, safe to use from several threads."""

    def __init__(self, path: str, extra_fields_shape: str = "flat") -> None:
        if extra_fields_shape not in EXTRA_FIELD_SHAPES:
            raise ValueError(f"extra_fields_shape must be one of {', '.join(EXTRA_FIELD_SHAPES)}")
        self.nested = extra_fields_shape == "nested"
        #: each resource's extra fields (name -> type), read once, kept up to date here
        self._extra: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        row = self._db.execute(
            "SELECT MAX(date_updated), MAX(json_extract(data, '$.dateDeleted')) FROM records"
        ).fetchone()
        stamps = [v for v in row if v]
        self._last_stamp = parse_stamp(max(stamps)) if stamps else datetime.min.replace(tzinfo=UTC)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- set-up ------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version >= SCHEMA_VERSION:
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._last_stamp = datetime.min.replace(tzinfo=UTC)
            with self._transaction():
                if version == 0:  # a new file: the reference lists (a version-1 file has them)
                    for resource in RESOURCES.values():
                        for values in resource.seed:
                            self._insert(resource, dict(values))
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _stamp(self) -> str:
        """Now, never before an earlier stamp (the clock may step back)."""
        now = max(datetime.now(UTC), self._last_stamp)
        self._last_stamp = now
        return format_stamp(now)

    # -- reading -----------------------------------------------------------------------

    def page(
        self,
        resource_name: str,
        *,
        where: str | None = None,
        order: str | None = None,
        page: int = 0,
        size: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching records and the total number of matching records."""
        resource = resource_of(resource_name)
        columns = _Columns(resource, self._declared(resource.name), self.nested)
        # deleted records are listed too, with deleted: true and their dateDeleted
        conditions = [SqlFragment("records.resource = ?", (resource.name,))]
        if where is not None and where.strip():
            try:
                tree = parse(where)
            except WhereSyntaxError as exc:
                raise ApiError(400, f"901: invalid where expression: {exc}") from exc
            conditions.append(compile_where(tree, columns))
        condition = " AND ".join(c.sql for c in conditions)
        params = tuple(p for c in conditions for p in c.params)
        ordering = SqlFragment("records.id ASC")
        if order:
            if FIELD_PATTERN.fullmatch(order.strip()) is None:
                raise ApiError(400, f"invalid order field {order!r}")
            sort = columns.expression(order.strip())
            ordering = SqlFragment(f"{sort.sql} DESC, records.id ASC", sort.params)
        # condition and ordering hold only "?" placeholders; every value is bound below.
        count_sql = f"SELECT COUNT(*) FROM records WHERE {condition}"  # noqa: S608
        page_sql = (
            f"SELECT records.data FROM records WHERE {condition} "  # noqa: S608
            f"ORDER BY {ordering.sql} LIMIT ? OFFSET ?"
        )
        try:
            with self._lock:
                (total,) = self._db.execute(count_sql, params).fetchone()
                rows = self._db.execute(
                    page_sql, (*params, *ordering.params, size, page * size)
                ).fetchall()
                documents = [json.loads(data) for (data,) in rows]
                return self._render(resource, documents), int(total)
        except sqlite3.OperationalError as exc:
            raise ApiError(400, f"901: the filter could not be applied ({exc})") from exc

    def get(self, resource_name: str, record_id: int) -> dict[str, Any]:
        resource = resource_of(resource_name)
        with self._lock:
            document = self._document(resource, record_id)
            if document is None:
                raise _not_found(resource.name, record_id)
            return self._render(resource, [document])[0]

    def _document(self, resource: Resource, record_id: int) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT data FROM records WHERE resource = ? AND id = ?", (resource.name, record_id)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _render(self, resource: Resource, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        extra = self._declared(resource.name)
        if extra:
            # every extra field of the resource is shown, null where the record has none
            for document in documents:
                if self.nested:
                    values = document.get(NESTED_KEY) or {}
                    document[NESTED_KEY] = {name: values.get(name) for name in extra}
                else:
                    for name in extra:
                        document.setdefault(name, None)
        references = resource.all_references()
        wanted: dict[str, set[int]] = {}
        for document in documents:
            for name, target in references.items():
                value = document.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    wanted.setdefault(target, set()).add(value)
        labels: dict[tuple[str, int], str] = {}
        for target, ids in wanted.items():
            labels.update(self._labels(RESOURCES[target], sorted(ids)))
        for document in documents:
            for name, target in references.items():
                value = document.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    document[name] = {"id": value, "value": labels.get((target, value))}
        return documents

    def _labels(self, target: Resource, ids: Sequence[int]) -> dict[tuple[str, int], str]:
        labels: dict[tuple[str, int], str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            placeholders = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                "SELECT id, data FROM records WHERE resource = ? "  # noqa: S608
                f"AND id IN ({placeholders})",
                (target.name, *chunk),
            )
            for record_id, data in rows:
                document = json.loads(data)
                parts = [
                    str(document[n]) for n in target.label if document.get(n) not in (None, "")
                ]
                labels[(target.name, record_id)] = " ".join(parts)
        return labels

    # -- writing -----------------------------------------------------------------------

    def create(self, resource_name: str, body: Mapping[str, Any]) -> int:
        resource = writable_resource(resource_name)
        with self._transaction():
            return self._insert(resource, self._checked(resource, body, True))

    def update(self, resource_name: str, record_id: int, body: Mapping[str, Any]) -> None:
        resource = writable_resource(resource_name)
        with self._transaction():
            self._update(resource, record_id, body)

    def delete(self, resource_name: str, record_id: int) -> None:
        """A soft delete: ``deleted`` and ``dateDeleted`` are set, ``dateUpdated`` is not."""
        resource = writable_resource(resource_name)
        with self._transaction():
            document = self._live_document(resource, record_id)
            document.update(deleted=True, dateDeleted=self._stamp(), salesRepIdDeleted=API_USER_ID)
            self._save(resource, document)

    def bulk(self, resource_name: str, items: Any, *, updating: bool) -> list[dict[str, Any]]:
        """``POST`` (create, items ``{guid, data}``) or ``PUT`` (update, items ``{guid, id,
        data}``) ``/{resource}/bulk``: one answer per item, matched by ``guid``.

        A malformed item fails alone; the others are carried out.
        """
        resource = writable_resource(resource_name)
        if not resource.bulk:
            raise ApiError(404, f"910: {resource.name} has no bulk operation")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "bulk body must be a non-empty JSON array of items")
        if len(items) > resource.bulk:
            raise ApiError(
                400, f"at most {resource.bulk} {resource.name} per bulk call, got {len(items)}"
            )
        answers: list[dict[str, Any]] = []
        with self._transaction():
            for item in items:
                guid = item.get("guid") if isinstance(item, Mapping) else None
                answer: dict[str, Any] = {"guid": guid}
                try:
                    data = _bulk_item(item, updating)
                    if updating:
                        record_id = _record_id(item["id"])
                        self._update(resource, record_id, data)
                        answer.update(statusCode=200, id=record_id, Message="entity updated")
                    else:
                        record_id = self._insert(resource, self._checked(resource, data, True))
                        answer.update(statusCode=200, id=record_id, Message="entity created")
                except ApiError as exc:
                    answer.update(statusCode=exc.status, Message=exc.message)
                answers.append(answer)
        return answers

    def _update(self, resource: Resource, record_id: int, body: Mapping[str, Any]) -> None:
        document = self._live_document(resource, record_id)
        values = self._checked(resource, body, False)
        if NESTED_KEY in values:
            # a partial update of the extra fields too: those not sent keep their values
            values[NESTED_KEY] = {**(document.get(NESTED_KEY) or {}), **values[NESTED_KEY]}
        document.update(values)
        document.update(dateUpdated=self._stamp(), salesRepIdUpdated=API_USER_ID)
        self._save(resource, document)

    def _live_document(self, resource: Resource, record_id: int) -> dict[str, Any]:
        document = self._document(resource, record_id)
        if document is None or document.get("deleted"):
            raise _not_found(resource.name, record_id)
        return document

    def _checked(
        self, resource: Resource, body: Mapping[str, Any], creating: bool
    ) -> dict[str, Any]:
        values = {k: v for k, v in body.items() if k not in SYSTEM_FIELDS}
        self._check_extra_fields(resource, values)
        for name in resource.required:
            if (creating or name in values) and values.get(name) in (None, ""):
                raise ApiError(400, f"Missing required field '{name}' for {resource.name}")
        for name in resource.integers:
            value = values.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ApiError(400, f"{name} must be an integer for {resource.name}, got {value!r}")
        for written, stored in resource.written_as.items():
            if written in values:
                values[stored] = values.pop(written)
        for name, target in resource.references.items():
            if name not in values or values[name] is None:
                continue
            try:
                reference = _record_id(values[name])
            except ApiError as exc:
                raise ApiError(400, f"{name}: {exc.message}") from exc
            referenced = self._document(RESOURCES[target], reference)
            if referenced is None or referenced.get("deleted"):
                raise ApiError(400, f"{name}: {target} with id {reference} does not exist")
            values[name] = reference
        return values

    def _check_extra_fields(self, resource: Resource, values: dict[str, Any]) -> None:
        """Keep the extra field values written in this tenant's shape, checked against their
        types; those written in the other shape are ignored, as an unknown field would
        plausibly be (assumed)."""
        extra = self._declared(resource.name)
        nested = values.pop(NESTED_KEY, None)
        if not self.nested:
            for name, kind in extra.items():
                if name in values:
                    values[name] = _extra_value(resource.name, name, kind, values[name])
            return
        for name in extra:
            values.pop(name, None)
        if nested is None:
            return
        if not isinstance(nested, Mapping):
            raise ApiError(400, f"{NESTED_KEY} must be a JSON object for {resource.name}")
        checked = {}
        for key, value in nested.items():
            if key not in extra:
                raise ApiError(400, f"{NESTED_KEY}.{key}: no extra field {key} on {resource.name}")
            checked[key] = _extra_value(resource.name, key, extra[key], value)
        values[NESTED_KEY] = checked

    # -- extra fields ------------------------------------------------------------------

    def _declared(self, resource_name: str) -> dict[str, str]:
        """The extra fields of a record resource, by name, with their types."""
        key = resource_name.lower()
        if key not in EXTRA_FIELD_RESOURCES:
            return {}
        with self._lock:
            found = self._extra.get(key)
            if found is None:
                rows = self._db.execute(
                    "SELECT field_name, type FROM extra_fields WHERE resource = ? ORDER BY id",
                    (key,),
                )
                found = self._extra[key] = {name: kind for name, kind in rows}
            return found

    def extra_fields(self, resource_name: str, page: int, size: int) -> list[dict[str, Any]]:
        """``GET /extrafields/{resource}``: one page of the resource's extra fields."""
        resource = extra_field_resource(resource_name)
        with self._lock:
            rows = self._db.execute(
                "SELECT id, field_name, type, description, date_created FROM extra_fields "
                "WHERE resource = ? ORDER BY id LIMIT ? OFFSET ?",
                (resource, size, page * size),
            ).fetchall()
        return [_definition(resource, *row) for row in rows]

    def create_extra_field(self, resource_name: str, body: Mapping[str, Any]) -> int:
        """``POST /extrafields/{resource}`` with ``entity``, ``fieldName``, ``type`` and
        optionally ``description``."""
        resource = extra_field_resource(resource_name)
        for name in ("entity", "fieldName", "type"):
            if body.get(name) in (None, ""):
                raise ApiError(400, f"Missing required field '{name}' for extrafields")
        entity, name, kind = body["entity"], body["fieldName"], body["type"]
        if not isinstance(entity, str) or entity.lower() != resource:
            raise ApiError(400, f"entity {entity!r} does not match the resource {resource}")
        if not isinstance(name, str) or not _EXTRA_FIELD_NAME.match(name):
            raise ApiError(
                400, f"fieldName {name!r} must be 1 to 64 letters, digits or '_', not a digit first"
            )
        if name in (*SYSTEM_FIELDS, "extId", NESTED_KEY) or name in _standard_fields(resource):
            raise ApiError(400, f"fieldName {name!r} is a field of {resource} already")
        if kind not in EXTRA_FIELD_TYPES:
            raise ApiError(400, f"type must be one of {', '.join(EXTRA_FIELD_TYPES)}, got {kind!r}")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise ApiError(400, "description must be text")
        with self._transaction():
            taken = self._db.execute(
                "SELECT field_name FROM extra_fields WHERE resource = ? AND field_name = ?",
                (resource, name),
            ).fetchone()
            if taken is not None:
                raise ApiError(400, f"{resource} has an extra field named {taken[0]} already")
            cursor = self._db.execute(
                "INSERT INTO extra_fields (resource, field_name, type, description, "
                "date_created) VALUES (?, ?, ?, ?, ?)",
                (resource, name, kind, description, self._stamp()),
            )
            self._extra.pop(resource, None)
            return int(cursor.lastrowid or 0)

    def _insert(self, resource: Resource, values: dict[str, Any]) -> int:
        (last,) = self._db.execute(
            "SELECT MAX(id) FROM records WHERE resource = ?", (resource.name,)
        ).fetchone()
        record_id = int(last or 0) + 1
        stamp = self._stamp()
        ext_id = values.pop("extId", None)
        document: dict[str, Any] = {"id": record_id, "extId": ext_id, **values}
        document.update(
            dateCreated=stamp,
            dateUpdated=stamp,
            dateDeleted=None,
            deleted=False,
            salesRepIdCreated=API_USER_ID if resource.writable else None,
            salesRepIdUpdated=API_USER_ID if resource.writable else None,
            salesRepIdDeleted=None,
        )
        self._db.execute(
            "INSERT INTO records (resource, id, data, ext_id, date_updated, deleted) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (resource.name, record_id, _dumps(document), _text(ext_id), stamp),
        )
        return record_id

    def _save(self, resource: Resource, document: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE records SET data = ?, ext_id = ?, date_updated = ?, deleted = ? "
            "WHERE resource = ? AND id = ?",
            (
                _dumps(document),
                _text(document.get("extId")),
                document["dateUpdated"],
                1 if document.get("deleted") else 0,
                resource.name,
                document["id"],
            ),
        )


_BY_LOWER_NAME = {name.lower(): resource for name, resource in RESOURCES.items()}


def resource_of(name: str) -> Resource:
    """The resource a path names; paths are matched case-insensitively, as the API does."""
    try:
        return _BY_LOWER_NAME[name.lower()]
    except KeyError:
        raise ApiError(404, f"910: resource {name!r} does not exist") from None


def extra_field_resource(name: str) -> str:
    """The resource an ``/extrafields/{resource}`` path names (case-insensitively)."""
    if name.lower() not in EXTRA_FIELD_RESOURCES:
        raise ApiError(
            404,
            f"910: {name!r} has no extra fields (resources: {', '.join(EXTRA_FIELD_RESOURCES)})",
        )
    return name.lower()


def _standard_fields(resource_name: str) -> set[str]:
    resource = _BY_LOWER_NAME.get(resource_name)
    if resource is None:
        return set()
    return {*resource.required, *resource.references, *resource.integers, *resource.label}


def _definition(
    resource: str, field_id: int, name: str, kind: str, description: str | None, created: str
) -> dict[str, Any]:
    """An extra field as ``GET /extrafields/{resource}`` shows it (assumed: the fields the
    schema of a definition names)."""
    return {
        "id": field_id,
        "entity": resource,
        "fieldName": name,
        "type": kind,
        "description": description,
        "mandatory": False,
        "defaultValue": None,
        "branches": None,
        "dateCreated": created,
        "dateUpdated": None,
        "dateDeleted": None,
        "deleted": False,
        "salesRepIdCreated": API_USER_ID,
    }


#: ``GET /extrafields/{resource}/schema``: the JSON Schema of a definition (assumed)
EXTRA_FIELD_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["entity", "fieldName", "type"],
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "entity": {"type": "string", "enum": list(EXTRA_FIELD_RESOURCES)},
        "fieldName": {"type": "string", "pattern": _EXTRA_FIELD_NAME.pattern},
        "type": {"type": "string", "enum": list(EXTRA_FIELD_TYPES)},
        "description": {"type": ["string", "null"]},
        "mandatory": {"type": "boolean", "readOnly": True},
        "defaultValue": {"type": ["string", "null"], "readOnly": True},
        "branches": {"type": ["array", "null"], "items": {"type": "string", "maxLength": 180}},
        "dateCreated": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
        "dateUpdated": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
        "dateDeleted": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
        "deleted": {"type": "boolean", "readOnly": True},
    },
}


def _extra_value(resource: str, name: str, kind: str, value: Any) -> Any:
    """An extra field's value as written, checked against the field's type."""
    if value is None:
        return None
    fits = {
        "text": isinstance(value, str),
        # a list field is written with its value's label (assumed, read back to check)
        "list": isinstance(value, str),
        "multivalue": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "decimal": isinstance(value, int | float) and not isinstance(value, bool),
        "bit": isinstance(value, bool),
        "datetime": isinstance(value, str) and _DATE_LITERAL.match(value.strip()) is not None,
    }[kind]
    if not fits:
        raise ApiError(400, f"{name}: a {kind} extra field of {resource} cannot take {value!r}")
    return value


def writable_resource(name: str) -> Resource:
    resource = resource_of(name)
    if not resource.writable:
        raise ApiError(405, f"{name} is a read-only reference list")
    return resource


def _record_id(value: Any) -> int:
    """A record id as written: a plain id (foreign keys are read back as ``{id, value}``
    but written as ids)."""
    if isinstance(value, bool):
        raise ApiError(400, f"{value!r} is not a record id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ApiError(400, f"{value!r} is not a record id")


def _bulk_item(item: Any, updating: bool) -> Mapping[str, Any]:
    """The ``data`` of a well-formed bulk item, or an ApiError for this item alone."""
    wanted = ("guid", "id", "data") if updating else ("guid", "data")
    if not isinstance(item, Mapping) or any(item.get(k) in (None, "") for k in wanted):
        raise ApiError(400, "bulk item must be an object with " + ", ".join(wanted))
    if not isinstance(item["data"], Mapping):
        raise ApiError(400, "bulk item data must be a JSON object")
    return item["data"]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
