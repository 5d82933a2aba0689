"""HTTP client of the Sage Sales Management REST API (v4).

One :class:`SalesManagementClient` per implementation. It logs in lazily, logs in again
once when the session expires, retries throttled and failing calls with exponential
backoff (honouring ``Retry-After``), and bounds its own concurrency and request rate so
that the sync engine may call it from a pool of threads.
"""

from __future__ import annotations

import builtins
import json
import logging
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from dossiersync.plugin import (
    SsmAuthError,
    SsmError,
    SsmNotFound,
    SsmRefused,
    SsmUnavailable,
    WriteResult,
    said,
)

if TYPE_CHECKING:
    from dossiersync.plugin import ImplementationConfig

from . import extra_fields
from .combine import PerTenant, tenant_combiner
from .extra_fields import ExtraField, definitions
from .listing import shared_listing
from .settings import SalesManagementSettings

log = logging.getLogger("dossiersync.ssm")
T = TypeVar("T")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: a date or date-time as ISO 8601 writes it (``2026-03-14``, ``…T10:00:00.363Z``)
DATE_LIKE = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?\s*$"
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# statuses and transport errors after which the server surely did not act on the request:
# the only ones a non-idempotent call (a create) may be retried after
NOT_PROCESSED_STATUSES = frozenset({429, 503})
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: items per bulk call, by resource (lower case); other resources have no bulk call
BULK_LIMITS = {
    "accounts": 200,
    "contacts": 200,
    "opportunities": 200,
    "salesorders": 200,
    "productfamilies": 200,
    "products": 100,
}
#: extIds or ids looked up per request (an OR of "=", kept short for the URL)
LOOKUP_CHUNK = 40
#: the largest answer read, by default: a page of 500 records of a few kB each fits many
#: times over; beyond, the server is not answering what was asked
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: the longest a whole request may take, by default (connection, answer and its body)
REQUEST_DEADLINE = 120.0
#: the most of a server's text an error, an incident or a log quotes
MAX_ERROR_TEXT = 2000

#: what a bulk item's answer says (its shape is unpublished; see ``item_verdict``)
DONE, FAILED, UNKNOWN = "done", "failed", "unknown"
#: the documented success wordings ("entity created", "entity updated") and their kin
SUCCESS_WORDING = re.compile(
    r"\b(created|updated|success|successful|successfully|succeeded|ok)\b", re.I
)
#: what an explanation of a failure says: an API code first ("910: …") or a word of refusal
ERROR_WORDING = re.compile(
    r"^\s*\d{3}\b|\b(error|errors|invalid|missing|required|not|cannot|can't|must|"
    r"refused|rejected|denied|forbidden|unauthori[sz]ed|fail|failed|failure|exception|"
    r"duplicate|duplicated|already|too many|bad request|unknown)\b",
    re.I,
)


class DeadlinePassed(httpx.TimeoutException):
    """A request not answered in full within ``request_deadline``: a transport failure,
    retried as a timeout is (and a create sent so may have been carried out)."""


class AnswerTooLarge(Exception):
    """An answer larger than ``max_response_bytes``: its reading was stopped."""

    def __init__(self, size: int, announced: bool) -> None:
        super().__init__(size)
        self.size = size
        self.announced = announced


class UnclearAnswer(SsmUnavailable):
    """A bulk item's answer that says neither done nor refused: the write may have been
    carried out (``may_have_acted``), so the record is looked up (a create, by extId) or
    read back (an update) before anything is concluded."""

    def __init__(self, message: str, answer: str | None = None) -> None:
        super().__init__(message, None, answer, may_have_acted=True)


class RequestPacer:
    """Keeps requests under ``rate`` per second, across threads (0 = no limit).

    Two rules, with ``MARGIN`` to spare: requests are spaced ``1 / rate`` apart, and no
    ``rate`` requests go within one second as counted from when they really left (a
    thread that woke up late pushes the ones after it), so that a tenant counting
    arrivals in a sliding second never sees one too many. The tenant's real limit is not
    published: each time it answers 429 anyway, both grow by ``SLOW_DOWN`` (down to half
    the configured rate at most).
    """

    MARGIN = 1.02
    SLOW_DOWN = 1.05

    def __init__(
        self,
        rate: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = self.MARGIN / rate if rate > 0 else 0.0
        self._longest = 2 * self._interval
        count = max(1, int(rate))
        self._window = self.MARGIN * count / rate if rate > 0 else 0.0
        self._sent: deque[list[float]] = deque(maxlen=count)  # when the last ones left
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock

    def wait(self) -> None:
        if self._interval == 0.0:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            if len(self._sent) == self._sent.maxlen:
                slot = max(slot, self._sent[0][0] + self._window)
            self._next = slot + self._interval
            left = [slot]
            self._sent.append(left)
        if slot > now:
            self._sleep(slot - now)
        with self._lock:
            left[0] = max(left[0], self._clock())

    def slow_down(self) -> None:
        """The API answered 429: space the requests a little more from now on."""
        with self._lock:
            slower = min(self._longest, self._interval * self.SLOW_DOWN)
            self._window *= slower / self._interval if self._interval else 1.0
            self._interval = slower

    @property
    def interval(self) -> float:
        return self._interval


#: reference lists read whole, kept for ``REFERENCE_SECONDS`` per tenant in a process
REFERENCE_LISTS = frozenset({"salesorderstatuses", "branches", "accounttypes", "currencies"})
REFERENCE_SECONDS = 60.0
_REFERENCE_CACHE: dict[tuple[str, str, str], tuple[float, builtins.list[dict[str, Any]]]] = {}
_REFERENCE_LOCK = threading.Lock()

#: one pacer per tenant (an API URL and its rate), held by the clients using it
_TENANT_PACERS: PerTenant[tuple[str, float], RequestPacer] = PerTenant(
    lambda key: RequestPacer(key[1])
)


def tenant_pacer(api_url: str, rate: float) -> RequestPacer:
    """The one pacer of a tenant (an API URL and its rate) in this process.

    The tenant counts requests, not clients: each dossier's sync has a client of its own,
    and the service syncs several dossiers at a time beside its probes; with one pacer
    each, they would together send several times the configured rate. Workers of the
    distributed engine are separate processes: each has its own (docs/deployment.md)."""
    return _TENANT_PACERS((api_url, rate))


class SalesManagementClient:
    """Generic record I/O against one Sales Management implementation."""

    name = "sales_management"
    #: the resources that take extra fields (``/extrafields/{resource}``)
    extra_field_resources = extra_fields.RESOURCES

    def __init__(
        self,
        api_url: str,
        public_key: str,
        private_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_concurrency: int = 4,
        max_requests_per_second: float = 20.0,
        page_size: int = 500,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        request_deadline: float = REQUEST_DEADLINE,
        bulk_linger: float = 0.0,
        transport: httpx.BaseTransport | None = None,
        settings: SalesManagementSettings | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        if request_deadline <= 0:
            raise ValueError("request_deadline must be positive")
        self.api_url = api_url.rstrip("/")
        #: the implementation's settings (its SSM ids are the entities', ``ctx.ssm_settings``)
        self.settings = settings if settings is not None else SalesManagementSettings()
        #: the requests it sends at once: as many writes as the engine keeps in flight
        self.concurrency = max_concurrency
        # what messages show of the URL: never a user or password written into it
        self._where = str(httpx.URL(self.api_url).copy_with(username=None, password=None))
        self.max_response_bytes = max_response_bytes
        self.request_deadline = request_deadline
        #: how long a bulk call not full waits for other dossiers' items (``combine``)
        self.bulk_linger = bulk_linger
        self.page_size = page_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._credentials = {"username": public_key, "password": private_key}
        self._token: str | None = None
        # the longest page the server has answered, per resource (its cap may differ)
        self._largest_page: dict[str, int] = {}
        self._auth_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        # shared by every client of this tenant in the process: dossiers synced side by
        # side and the service's probes stay within one budget together
        self._pacer = tenant_pacer(self.api_url, max_requests_per_second)
        # and so is the bulk: items of dossiers written side by side share calls
        self._combiner = tenant_combiner(self.api_url, public_key)
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )

    @classmethod
    def from_settings(
        cls, implementation: ImplementationConfig, max_retries: int | None = None
    ) -> SalesManagementClient:
        """The client of an implementation, from its ``[implementation]`` settings: how the
        connector makes its SSM endpoint (``max_retries`` overrides the setting)."""
        settings = SalesManagementSettings.of(implementation)
        return cls(
            settings.api_url,
            settings.public_key.reveal(),
            settings.private_key.reveal(),
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries if max_retries is None else max_retries,
            max_concurrency=settings.max_concurrency,
            max_requests_per_second=settings.max_requests_per_second,
            page_size=settings.page_size,
            max_response_bytes=settings.max_response_bytes,
            request_deadline=settings.request_deadline_seconds,
            bulk_linger=settings.bulk_linger_seconds,
            settings=settings,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self._where!r})"

    def __enter__(self) -> SalesManagementClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def dossier_syncing(self) -> AbstractContextManager[None]:
        """Held while a dossier is synced through this client: the bulk calls of the
        dossiers syncing at once in this process may wait a little for one another's
        items (``bulk_linger_seconds``) and share requests (``combine``)."""
        return self._combiner.joined()

    # -- records -----------------------------------------------------------------------

    def login(self) -> None:
        """Open a session now (calls log in by themselves when needed)."""
        token = self._open_session()
        with self._auth_lock:
            self._token = token

    def query(
        self,
        resource: str,
        where: str | None = None,
        order: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``resource`` matching ``where``, fetched page by page as consumed.

        The page size is asked with ``X-FM-Entity-Count``; the server may answer fewer.
        The end of a list is not documented, so a list ends on an empty page, on a page
        shorter than what this server has already shown it can answer for this resource,
        or when the pages repeat; an ``X-FM-Next-Page`` header is only a hint (an older
        API announced the current page again on the last one).
        """
        size = page_size or self.page_size
        headers = {"X-FM-Entity-Count": str(size)}

        def fetch(page: int) -> tuple[builtins.list[Any], str]:
            params: dict[str, str | int] = {"page": page}
            if where:
                params["where"] = where
            if order:
                params["order"] = order
            response = self._call("GET", f"/{resource}", params=params, headers=headers)
            records = _json(response)
            if not isinstance(records, builtins.list):
                call = f"GET /{resource}"
                raise SsmError(said("{call} answered something else than a list", call=call), 200)
            return records, response.headers.get("X-FM-Next-Page", "").strip()

        page = 0
        previous: set[Any] = set()
        shown = 0  # the longest page of this list so far
        # the next page is asked for while the caller works on this one
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssm-page") as ahead:
            coming = ahead.submit(fetch, page)
            while True:
                records, hint = coming.result()
                ids = {r.get("id") for r in records if isinstance(r, dict)}
                if not records or (page > 0 and ids <= previous):
                    return  # empty, or the same records again: a server ignoring ``page``
                shown = max(shown, len(records))
                with self._auth_lock:
                    largest = self._largest_page.get(resource.lower(), 0)
                    capacity = max(largest, shown)
                    self._largest_page[resource.lower()] = max(largest, len(records))
                # the last page, as an older API said it, or shorter than what this
                # server answers
                last = (hint.isdigit() and int(hint) <= page) or len(records) < min(size, capacity)
                if not last:
                    coming = ahead.submit(fetch, page + 1)
                yield from records
                if last:
                    return
                previous = ids
                page += 1

    def list_changed(
        self,
        resource: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        ext_prefix: str | None = None,
        equals: Mapping[str, int | str] | None = None,
        deleted: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """See ``dossiersync.target.SsmTarget.list_changed``.

        Only documented operators are sent: ``LIKE`` for the prefix, ``=`` for equality,
        ``>`` for dates (the overlap window stands in for ``>=``), ``AND``/``OR``.
        Deleted records are listed by the API and filtered here; a deletion does not
        move ``dateUpdated``, so deletions are found by ``dateDeleted``.
        """
        if (
            resource.lower() in REFERENCE_LISTS
            and since is None
            and ext_prefix is None
            and not equals
            and not deleted
        ):
            yield from self._reference_list(resource)
            return
        base = []
        if ext_prefix is not None:
            base.append(f"extId LIKE {where_literal(ext_prefix + '%')}")
        for name, value in (equals or {}).items():
            base.append(f"{where_field(name)} = {where_literal(value)}")
        if since:
            after = where_literal(shift_date(since, -overlap_seconds))
            dates = ["dateUpdated", "dateDeleted"] if deleted else ["dateUpdated"]
            where = " OR ".join(" AND ".join([*base, f"{d} > {after}"]) for d in dates)
        else:
            where = " AND ".join(base)
        seen: set[Any] = set()
        for record in self.query(resource, where=where or None):
            if ext_prefix is not None and not str(record.get("extId") or "").startswith(ext_prefix):
                continue
            if record.get("deleted") and not deleted:
                continue
            if record.get("id") in seen:
                continue  # a record that moved between two pages while they were read
            seen.add(record.get("id"))
            yield record

    def list_with_unlinked(
        self,
        resource: str,
        ext_prefix: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        deleted: bool = False,
    ) -> Iterator[dict[str, Any]] | None:
        """See ``dossiersync.target.SsmTarget.list_with_unlinked``: from the tenant's
        shared index of the resource once several dossiers ask (``listing``); None while
        it does not serve (the engine lists the resource)."""
        shared = shared_listing(self.api_url, self._credentials["username"], resource)
        return shared.records(
            self.list_changed,
            self.changed_at,
            resource,
            ext_prefix,
            overlap_seconds=overlap_seconds,
            deleted=deleted,
            keep=None if since is None else changed_after(shift_date(since, -overlap_seconds)),
        )

    def _reference_list(self, resource: str) -> builtins.list[dict[str, Any]]:
        """A reference list (order statuses, branches…) read once a minute per tenant in
        this process, not once per dossier and pass: administrators change them rarely."""
        key = (self.api_url, self._credentials["username"], resource.lower())
        now = time.monotonic()
        with _REFERENCE_LOCK:
            kept = _REFERENCE_CACHE.get(key)
        if kept is not None and now - kept[0] < REFERENCE_SECONDS:
            return kept[1]
        records = [r for r in self.query(resource) if not r.get("deleted")]
        with _REFERENCE_LOCK:
            _REFERENCE_CACHE[key] = (now, records)
        return records

    def changes_since(
        self, resource: str, since: str, *, overlap_seconds: int = 0, limit: int = 1
    ) -> builtins.list[dict[str, Any]]:
        """See ``dossiersync.target.SsmTarget.changes_since``: one page of ``limit``."""
        after = where_literal(shift_date(since, -overlap_seconds))
        params = {"page": 0, "where": f"dateUpdated > {after} OR dateDeleted > {after}"}
        response = self._call(
            "GET", f"/{resource}", params=params, headers={"X-FM-Entity-Count": str(limit)}
        )
        records = _json(response)
        if not isinstance(records, builtins.list):
            call = f"GET /{resource}"
            raise SsmError(said("{call} answered something else than a list", call=call), 200)
        return [r for r in records if isinstance(r, dict)][:limit]

    def find(
        self, resource: str, *, ext_ids: Sequence[str] = (), ids: Sequence[int] = ()
    ) -> Iterator[dict[str, Any]]:
        """The live records with these extIds or ids, a few per request (``OR`` of ``=``)."""
        wanted: builtins.list[tuple[str, int | str]] = [
            ("extId", str(e)) for e in dict.fromkeys(ext_ids)
        ]
        wanted += [("id", int(i)) for i in dict.fromkeys(ids)]
        returned: set[Any] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            where = " OR ".join(f"{name} = {where_literal(value)}" for name, value in chunk)
            keep = set(chunk)
            for record in self.query(resource, where=where):
                if record.get("deleted") or record.get("id") in returned:
                    continue
                if ("extId", record.get("extId")) in keep or ("id", record.get("id")) in keep:
                    returned.add(record.get("id"))
                    yield record

    def get(self, resource: str, record_id: int) -> dict[str, Any]:
        response = self._call("GET", f"/{resource}/{int(record_id)}")
        record = _json(response)
        if not isinstance(record, dict):
            call = f"GET /{resource}/{record_id}"
            raise SsmError(said("{call} answered something else than a record", call=call))
        return record

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        """Create one record; returns its new id (the API answers 200 with it)."""
        response = self._call("POST", f"/{resource}", json=dict(body))
        new_id = _record_id(_json(response))
        if new_id is None:
            call = f"POST /{resource}"
            raise SsmError(said("{call} answered without the new record's id", call=call))
        return new_id

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        """Partial update: only the fields in ``body`` change."""
        self._call("PUT", f"/{resource}/{int(record_id)}", json=dict(body))

    def delete(self, resource: str, record_id: int) -> None:
        self._call("DELETE", f"/{resource}/{int(record_id)}")

    def bulk_limit(self, resource: str) -> int:
        """Items per ``/{resource}/bulk`` call: 100 for products, 200 for the generic bulk
        (accounts, contacts, orders, value lists); 1 for a resource without bulk."""
        return BULK_LIMITS.get(resource.lower(), 1)

    def bulk_create(
        self, resource: str, bodies: Sequence[Mapping[str, Any]]
    ) -> builtins.list[WriteResult]:
        """``POST /{resource}/bulk`` (items ``{guid, data}``), or one create per record for a
        resource without bulk; one result per body, in order.

        After a call whose outcome is unknown (timeout, 5xx), or for an item whose answer
        says neither done nor refused (``item_verdict``), bodies carrying an ``extId`` are
        looked up by it within the call: found, they were created; not found, they keep
        an error whose outcome is unknown and are created again only after the engine
        looked them up once more.
        """
        results: builtins.list[WriteResult] = []
        for chunk in _chunks(bodies, self.bulk_limit(resource)):
            if self.bulk_limit(resource) == 1:
                chunk_results = [self._one(self.create, resource, chunk[0])]
            else:
                items = [{"guid": uuid.uuid4().hex, "data": dict(b)} for b in chunk]
                chunk_results = self._bulk("POST", resource, items, creating=True)
            results += self._recover(resource, chunk, chunk_results)
        return results

    def bulk_update(
        self, resource: str, items: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> builtins.list[WriteResult]:
        """``PUT /{resource}/bulk`` (items ``{guid, id, data}``), or one update per record
        for a resource without bulk; one result per item, in order.

        An item whose answer says neither done nor refused is read back within the call
        (``_verify_updates``), never taken either way."""
        results: builtins.list[WriteResult] = []
        for chunk in _chunks(items, self.bulk_limit(resource)):
            if self.bulk_limit(resource) == 1:
                record_id, body = chunk[0]
                outcome = self._one(self.update, resource, record_id, body)
                results.append(WriteResult(record_id, outcome.error))
                continue
            framed = [{"guid": uuid.uuid4().hex, "id": int(i), "data": dict(b)} for i, b in chunk]
            answers = self._bulk("PUT", resource, framed, creating=False)
            answers = [
                WriteResult(int(i), a.error) for (i, _), a in zip(chunk, answers, strict=True)
            ]
            results += self._verify_updates(resource, chunk, answers)
        return results

    @staticmethod
    def changed_at(record: Mapping[str, Any]) -> str | None:
        """The later of ``dateUpdated`` and ``dateDeleted`` (a deletion moves only the latter)."""
        dates = [str(record[k]) for k in ("dateUpdated", "dateDeleted") if record.get(k)]
        return max(dates, default=None)

    @staticmethod
    def fk_id(value: Any) -> int | None:
        """The id of a foreign key as read (``{"id": 15, "value": "…"}``) or written (``15``)."""
        if isinstance(value, Mapping):
            value = value.get("id")
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise ValueError(f"not a record id: {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise ValueError(f"not a record id: {value!r}")

    @classmethod
    def field_value(cls, value: Any) -> Any:
        """A field's value as read back, plain: a foreign key is read back as ``{"id": 15,
        "value": "label"}`` and is its id; anything else is as it is."""
        if isinstance(value, Mapping) and "id" in value:
            return cls.fk_id(value)
        return value

    @staticmethod
    def earlier(stamp: str, seconds: int) -> str:
        """A change date of the API (``2026-12-01T07:02:03.123Z``), ``seconds`` earlier, in
        the same form."""
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"

    # -- extra fields ------------------------------------------------------------------

    def list_extra_fields(self, resource: str) -> builtins.list[ExtraField]:
        """The extra fields of ``resource`` (``GET /extrafields/{resource}``, paged)."""
        return definitions(resource, self.query(f"extrafields/{resource}"))

    def create_extra_field(
        self, resource: str, name: str, kind: str, description: str | None = None
    ) -> int | None:
        """Create an extra field (``POST /extrafields/{resource}``); its id, when answered."""
        sent: dict[str, Any] = {"entity": resource, "fieldName": name, "type": kind}
        if description:
            sent["description"] = description
        return _record_id(_json(self._call("POST", f"/extrafields/{resource}", json=sent)))

    @staticmethod
    def extra_fields_body(shape: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Extra field values as a record's body carries them in ``shape``, the one the
        tenant takes (found by :meth:`find_extra_field_shape`)."""
        return extra_fields.body(shape, values)

    def find_extra_field_shape(
        self, resource: str, record_id: int, names: Mapping[str, str], dossier: str
    ) -> dict[str, Any]:
        """How the tenant takes an extra field's value (unpublished), found by writing on
        one record and reading it back: ``extra_fields.find_shape``."""
        return extra_fields.find_shape(
            self.update, self.get, resource, record_id, names, dossier
        ).as_dict()

    # -- bulk --------------------------------------------------------------------------

    @staticmethod
    def _one(write: Callable[..., Any], *args: Any) -> WriteResult:
        try:
            answer = write(*args)
        except SsmError as exc:
            return WriteResult(error=exc)
        return WriteResult(answer if isinstance(answer, int) else None)

    def _bulk(
        self, method: str, resource: str, items: builtins.list[dict[str, Any]], *, creating: bool
    ) -> builtins.list[WriteResult]:
        """One bulk call, perhaps shared with other dossiers' items (``combine``); each
        item's result found by its ``guid`` and read tolerantly
        (``item_verdict``): an answer that says neither done nor refused is an
        ``SsmUnavailable`` with ``may_have_acted``, verified by the caller."""
        path = f"/{resource}/bulk"

        def send(take: Callable[[], builtins.list[dict[str, Any]]]) -> Any:
            return _json(self._call(method, path, json=Later(take)))

        try:
            answers = self._combiner.exchange(
                (method, resource.lower()),
                items,
                limit=self.bulk_limit(resource),
                slots=self.concurrency,
                send=send,
                linger=self.bulk_linger,
            )
        except SsmError as exc:
            return [WriteResult(error=exc) for _ in items]
        if not isinstance(answers, builtins.list):
            error = _unclear(method, path, "answered something else than a list")
            return [WriteResult(error=error) for _ in items]
        by_guid = {str(a.get("guid")): a for a in answers if isinstance(a, dict) and a.get("guid")}
        results = []
        for item in items:
            answer = by_guid.get(item["guid"])
            if answer is None:
                results.append(WriteResult(error=_unclear(method, path, "no answer for it")))
                continue
            verdict, record_id, why = item_verdict(answer, None if creating else item["id"])
            if verdict == DONE:
                results.append(WriteResult(record_id))
            elif verdict == UNKNOWN:
                results.append(WriteResult(error=_unclear(method, path, self._mask(why))))
            else:
                status = _status(answer)
                text = self._mask(why)
                # without a status, the API's code 910 ("does not exist") still says it
                gone = _not_found(method, 400 if status is None else status, text)
                kind = SsmNotFound if gone else SsmRefused
                refused = kind(f"{method} {path} refused this record: {text}", status, text)
                results.append(WriteResult(error=refused))
        return results

    def _recover(
        self,
        resource: str,
        bodies: Sequence[Mapping[str, Any]],
        results: builtins.list[WriteResult],
    ) -> builtins.list[WriteResult]:
        """Creates whose outcome is unknown (a failed call, an unclear item answer): the
        records found by extId were created; the others keep an error whose outcome is
        unknown, so that the engine looks them up again before it creates them."""
        unknown = {
            str(b["extId"]): n
            for n, (b, r) in enumerate(zip(bodies, results, strict=True))
            if _ambiguous(r.error) and b.get("extId")
        }
        if not unknown:
            return results
        try:
            found = builtins.list(self.find(resource, ext_ids=builtins.list(unknown)))
        except SsmError:
            return results  # still unknown: a later pass looks them up before creating
        recovered = builtins.list(results)
        for record in found:
            n = unknown.pop(str(record.get("extId")), None)
            if n is not None:
                log.debug("%s %s: created despite the error, found by extId", resource, n)
                recovered[n] = WriteResult(int(record["id"]))
        for ext_id, n in unknown.items():
            error = recovered[n].error
            if isinstance(error, UnclearAnswer):
                # no record with its extId: not created (yet); the engine looks it up
                # once more before it sends it again
                text = f"{error}; no record found with its extId {ext_id!r}"
                recovered[n] = WriteResult(error=UnclearAnswer(text, error.answer))
        return recovered

    def _verify_updates(
        self,
        resource: str,
        items: Sequence[tuple[int, Mapping[str, Any]]],
        results: builtins.list[WriteResult],
    ) -> builtins.list[WriteResult]:
        """Updates whose item answer was unclear, read back: the record as sent is done, a
        missing one ``SsmNotFound``, a different one refused (sent again by a later pass).
        A field the record does not show (not echoed, or read under another name) is not
        compared, but a record showing none of the fields sent is not known to be updated
        (refused too); see ``same_value`` for how fields compare."""
        unclear = [n for n, r in enumerate(results) if isinstance(r.error, UnclearAnswer)]
        if not unclear:
            return results
        path = f"PUT /{resource}/bulk"
        checked = builtins.list(results)
        try:
            read = {
                int(r["id"]): r
                for r in self.find(resource, ids=[int(items[n][0]) for n in unclear])
                if _record_id(r) is not None
            }
        except (SsmAuthError, SsmUnavailable) as exc:
            for n in unclear:
                checked[n] = WriteResult(int(items[n][0]), exc)
            return checked
        except SsmError as exc:
            for n in unclear:
                text = f"{path}: unclear answer, and the record could not be read back: {exc}"
                checked[n] = WriteResult(int(items[n][0]), SsmRefused(text, exc.status))
            return checked
        for n in unclear:
            record_id, body = int(items[n][0]), items[n][1]
            record = read.get(record_id)
            if record is None:
                text = f"{path}: unclear answer, and {resource} {record_id} does not exist"
                checked[n] = WriteResult(record_id, SsmNotFound(text, 404))
                continue
            shown = [name for name in body if name in record]
            if body and not shown:
                text = (
                    f"{path}: unclear answer, and {resource} {record_id} read back shows none "
                    f"of the fields sent ({', '.join(sorted(body))}): not known to be updated"
                )
                checked[n] = WriteResult(record_id, SsmRefused(text))
                continue
            differing = [name for name in shown if not same_value(body[name], record[name])]
            if differing:
                said = ", ".join(
                    f"{name} is {_shown(record[name])} instead of {_shown(body[name])}"
                    for name in differing[:5]
                )
                text = (
                    f"{path}: unclear answer, and {resource} {record_id} read back without "
                    f"the update ({said})"
                )
                checked[n] = WriteResult(record_id, SsmRefused(text, None, said))
                continue
            log.debug("%s %s: unclear answer, update read back", resource, record_id)
            checked[n] = WriteResult(record_id)
        return checked

    # -- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, **request: Any) -> httpx.Response:
        token = self._session_token()
        response = self._send(method, path, token, **request)
        if response.status_code == 401:
            token = self._renew_session(token)
            response = self._send(method, path, token, **request)
            if response.status_code == 401:
                call = f"{method} {path}"
                raise SsmAuthError(
                    said("{call}: session refused right after a fresh login", call=call), 401
                )
        if response.status_code >= 400:
            text = self._message(response)
            error = SsmNotFound if _not_found(method, response.status_code, text) else SsmRefused
            call = f"{method} {path}"
            raise error(
                said(
                    "{call} refused (HTTP {status}): {answer}",
                    call=call,
                    status=response.status_code,
                    answer=text,
                ),
                response.status_code,
                text,
            )
        return response

    def _message(self, response: httpx.Response) -> str:
        """The API's explanation of an error, with any secret of this client masked, cut
        to ``MAX_ERROR_TEXT`` characters."""
        return self._mask(_message(response))

    def _mask(self, text: str) -> str:
        """A server's text as an error may quote it: secrets masked, cut to a few kB."""
        secrets = [self._credentials["username"], self._credentials["password"], self._token]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return cut(text)

    def _session_token(self) -> str:
        with self._auth_lock:
            if self._token is None:
                self._token = self._open_session()
            return self._token

    def _renew_session(self, stale: str) -> str:
        with self._auth_lock:
            if self._token is None or self._token == stale:
                self._token = self._open_session()
            return self._token

    def _open_session(self) -> str:
        response = self._send("POST", "/login", None, json=self._credentials)
        if response.status_code in (401, 403):
            raise SsmAuthError(
                said("{where}: login refused: check the public/private key", where=self._where),
                response.status_code,
            )
        if response.status_code >= 400:
            raise SsmRefused(
                said(
                    "{call} refused (HTTP {status}): {answer}",
                    call="POST /login",
                    status=response.status_code,
                    answer=self._message(response),
                ),
                response.status_code,
            )
        answer = _json(response)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise SsmError(
                said("{call} answered without a session token", call="POST /login"),
                response.status_code,
            )
        return token

    def _send(self, method: str, path: str, token: str | None, **request: Any) -> httpx.Response:
        """One call, retried on throttling, server errors and transport failures."""
        headers = dict(request.pop("headers", None) or {})
        if token is not None:
            headers["X-Session-Key"] = token
        # a create answered by a timeout or a 500 may have happened: retrying it could
        # create the record twice; the caller finds it by extId on its next pass instead
        idempotent = not (method == "POST" and token is not None)
        attempt = 0
        while True:
            try:
                # paced once a connection is free, so that a request waiting for one is
                # not sent late, right on the heels of the next
                with self._slots:
                    self._pacer.wait()
                    if isinstance(request.get("json"), Later):
                        # what a combined bulk call carries: what waits when it leaves
                        request["json"] = request["json"]()
                    started = time.monotonic()
                    response = self._exchange(method, path, headers, request)
            except AnswerTooLarge as exc:
                # the same request would get the same answer: not retried
                values = {"call": f"{method} {path}", "limit": self.max_response_bytes}
                raise SsmUnavailable(
                    said(
                        "{call}: answer larger than max_response_bytes = {limit} (announced "
                        "{size} bytes); the server does not answer as the API does",
                        size=exc.size,
                        **values,
                    )
                    if exc.announced
                    else said(
                        "{call}: answer larger than max_response_bytes = {limit} (reading "
                        "stopped at {size} bytes); the server does not answer as the API does",
                        size=exc.size,
                        **values,
                    ),
                    may_have_acted=not idempotent,
                ) from None
            except httpx.TransportError as exc:
                log.debug("%s %s failed: %s", method, path, type(exc).__name__)
                if attempt >= self.max_retries or not (
                    idempotent or isinstance(exc, NOT_SENT_ERRORS)
                ):
                    seconds = format(self.request_deadline, "g")
                    call = f"{method} {self._where}{path}"
                    what = (
                        said(
                            "not answered in full within request_deadline = {seconds} s",
                            seconds=seconds,
                        )
                        if isinstance(exc, DeadlinePassed)
                        else type(exc).__name__
                    )
                    raise SsmUnavailable(
                        said(
                            "{call}: {what} after {attempts} attempt(s); check the API URL "
                            "and the network",
                            call=call,
                            what=what,
                            attempts=attempt + 1,
                        ),
                        may_have_acted=not (idempotent or isinstance(exc, NOT_SENT_ERRORS)),
                    ) from None
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            log.debug("%s %s -> %d in %.0f ms", method, path, response.status_code, elapsed_ms)
            if response.status_code not in RETRYABLE_STATUSES:
                return response
            if response.status_code == 429:
                self._pacer.slow_down()
            if attempt >= self.max_retries or not (
                idempotent or response.status_code in NOT_PROCESSED_STATUSES
            ):
                call = f"{method} {self._where}{path}"
                raise SsmUnavailable(
                    said(
                        "{call}: HTTP {status} after {attempts} attempt(s): {answer}",
                        call=call,
                        status=response.status_code,
                        attempts=attempt + 1,
                        answer=self._message(response),
                    ),
                    response.status_code,
                    may_have_acted=not (
                        idempotent or response.status_code in NOT_PROCESSED_STATUSES
                    ),
                )
            self._sleep(self._backoff(attempt, response.headers.get("Retry-After")))
            attempt += 1

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], request: dict[str, Any]
    ) -> httpx.Response:
        """One request and its whole answer, read as it streams: at most
        ``max_response_bytes`` of it (``AnswerTooLarge`` beyond), all of it within
        ``request_deadline`` seconds from the connection to the last byte
        (``DeadlinePassed`` past it).

        httpx's ``timeout`` bounds each read, not a request: a server dripping its answer
        a byte at a time would hold it for ever. So the exchange runs in a thread of its
        own, which the caller waits for until the deadline, no longer; the exchange stops
        at its next chunk once the deadline passed, and a read blocked then is woken by
        shutting its socket down (before the answer's headers, the socket is not within
        reach: that thread ends at its read timeout, the caller does not wait for it).
        """
        exchange = _Exchange(time.monotonic() + self.request_deadline)
        done = threading.Event()

        def run() -> None:
            try:
                exchange.answer = self._receive(method, path, headers, request, exchange)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                exchange.error = exc
            finally:
                done.set()

        threading.Thread(target=run, name="ssm-request", daemon=True).start()
        if not done.wait(self.request_deadline):
            exchange.expire()
        if not done.is_set():
            raise DeadlinePassed(f"{method} {path}: past the request deadline")
        if exchange.error is not None:
            raise exchange.error
        assert exchange.answer is not None
        return exchange.answer

    def _receive(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        request: dict[str, Any],
        exchange: _Exchange,
    ) -> httpx.Response:
        built = self._http.build_request(method, path, headers=headers, **request)
        response = self._http.send(built, stream=True)
        try:
            exchange.streaming(response)
            announced = response.headers.get("Content-Length", "").strip()
            if announced.isdigit() and int(announced) > self.max_response_bytes:
                raise AnswerTooLarge(int(announced), announced=True)
            body = bytearray()
            for chunk in response.iter_bytes():
                if exchange.expired:
                    raise DeadlinePassed(f"{method} {path}: past the request deadline")
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise AnswerTooLarge(len(body), announced=False)
            if exchange.expired:
                raise DeadlinePassed(f"{method} {path}: past the request deadline")
        except httpx.TransportError:
            if exchange.expired:  # the read woken by the deadline
                raise DeadlinePassed(f"{method} {path}: past the request deadline") from None
            raise
        finally:
            response.close()
        # the body as read (decoded): the answer the rest of the client reads
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=bytes(body), request=built
        )

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry ``attempt + 1``."""
        announced = _retry_after_seconds(retry_after)
        if announced is not None:
            return min(self.backoff_max, announced)
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


class Later:
    """A request body made when the request leaves (once: a retry sends the same)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made = False
        self._body: Any = None

    def __call__(self) -> Any:
        if not self._made:
            self._body, self._made = self._make(), True
        return self._body


class _Exchange:
    """One request in flight: its deadline, and the means to stop it there."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.answer: httpx.Response | None = None
        self.error: BaseException | None = None
        self._expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.deadline

    def streaming(self, response: httpx.Response) -> None:
        """The answer's headers are in: its socket is within reach of ``expire``."""
        stream = response.extensions.get("network_stream")
        found = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._socket = found if isinstance(found, socket.socket) else None
            expired = self._expired
        if expired:
            self._shut()

    def expire(self) -> None:
        with self._lock:
            self._expired = True
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on it
            except OSError:
                pass


def cut(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} characters cut)"


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        call = f"{response.request.method} {response.request.url.path}"
        raise SsmError(
            said("{call} answered non-JSON content", call=call), response.status_code
        ) from None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    text = _text(body) if isinstance(body, dict) else ""
    return text or response.text[:200].strip() or response.reason_phrase


def _not_found(method: str, status: int, text: str) -> bool:
    """An answer saying the record does not exist: 404, code 910 ("resource does not
    exist"), or the 400 the API documents for a DELETE of a missing id."""
    return status == 404 or (status == 400 and (method == "DELETE" or text.startswith("910")))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]


def _ambiguous(error: Exception | None) -> bool:
    """An error after which the server may have carried out the write: a failed call
    (timeout, 5xx after the retries), or a bulk item answered with a 5xx status."""
    if isinstance(error, SsmRefused):
        return (error.status or 0) >= 500
    return isinstance(error, SsmError) and not isinstance(error, SsmAuthError)


def item_verdict(answer: Mapping[str, Any], sent_id: int | None) -> tuple[str, int | None, str]:
    """What one bulk item's answer says: ``(DONE, record id, "")``, ``(FAILED, None,
    explanation)`` or ``(UNKNOWN, None, why)``. ``sent_id`` is the id of an update, None
    for a create.

    Its shape is unpublished, so it is read by its signs. An error sign: a status
    (``statusCode`` or ``status``) of 400 or more, a non-empty ``error`` or ``errors``,
    ``success: false``, or a message (``Message``, ``message``, or a status in words)
    worded as a failure (an API code first, or a word of refusal: ``ERROR_WORDING``). A
    success sign: a 2xx status, ``success: true``, a message worded as a success
    ("entity created", "entity updated": ``SUCCESS_WORDING``). Failed: an error sign and
    no success sign. Done: no error sign, no status or message saying something else, and
    the record named: an id for a create, the ``guid`` for an update (an id, when given,
    must be the one sent). Anything else (signs both ways, a 1xx/3xx status, a message
    saying neither, a create without an id) is unknown.
    """
    status = _status(answer)
    said = {
        k: str(answer[k])
        for k in ("Message", "message", "statusCode", "status")
        if isinstance(answer.get(k), str) and answer[k].strip() and not answer[k].isdigit()
    }
    words = builtins.list(said.values())
    # ``"error": null``, ``0``, ``false`` or ``[]`` say there is none
    errors = [answer[k] for k in ("error", "errors") if answer.get(k)]
    worded_as_error = [w for w in words if ERROR_WORDING.search(w)]
    worded_as_success = [w for w in words if SUCCESS_WORDING.search(w) and w not in worded_as_error]
    failed = bool(errors or worded_as_error) or answer.get("success") is False
    succeeded = bool(worded_as_success) or answer.get("success") is True
    if status is not None:
        failed = failed or status >= 400
        succeeded = succeeded or 200 <= status < 300
    if failed and not succeeded:
        # the explanation: a message first, then an error field, then a status in words
        explained = [said[k] for k in ("Message", "message") if k in said]
        explained += [e if isinstance(e, str) else _shown(e) for e in errors] + words
        return FAILED, None, explained[0] if explained else _shown(answer)
    if failed:
        return UNKNOWN, None, f"signs of success and of failure: {_shown(answer)}"
    if status is not None and not succeeded:
        return UNKNOWN, None, f"status {status}, neither a success nor a failure"
    unclear = [w for w in words if w not in worded_as_success]
    if unclear:
        return UNKNOWN, None, f"{unclear[0]!r} says neither success nor failure"
    record_id = _record_id(answer)
    if sent_id is None:
        if record_id is None:
            return UNKNOWN, None, f"no id for the new record: {_shown(answer)}"
        return DONE, record_id, ""
    if record_id is not None and record_id != sent_id:
        return UNKNOWN, None, f"the answer names record {record_id}, not {sent_id}"
    if answer.get("id") not in (None, "") and record_id is None:
        return UNKNOWN, None, f"the answer names record {_shown(answer['id'])}, not {sent_id}"
    return DONE, sent_id, ""


def same_value(sent: Any, read: Any) -> bool:
    """Whether a field read back holds what an update sent.

    A foreign key read as ``{"id": 15, "value": "…"}`` compares its id; numbers compare
    numerically (``12.5`` and ``"12.50"``); two dates or date-times compare as instants
    (a date alone is its midnight, UTC unless said); an emptied field (``None`` or
    ``""``) reads back empty; objects and lists compare member by member; anything else,
    strings included, compares exactly.
    """
    if sent is None or sent == "":
        empty = read is None or read == "" or (isinstance(read, Mapping) and not read.get("id"))
        return bool(empty)
    if isinstance(read, Mapping) and "id" in read and not isinstance(sent, Mapping):
        try:
            return SalesManagementClient.fk_id(sent) == SalesManagementClient.fk_id(read)
        except ValueError:
            return False
    if isinstance(sent, bool) or isinstance(read, bool):
        return sent is read
    if isinstance(sent, int | float):
        return _number(sent) == _number(read)
    if isinstance(sent, str):
        if sent == read:
            return True
        moment = _moment(sent)
        return moment is not None and isinstance(read, str) and moment == _moment(read)
    if isinstance(sent, Mapping):
        return isinstance(read, Mapping) and all(
            k in read and same_value(v, read[k]) for k, v in sent.items()
        )
    if isinstance(sent, builtins.list):
        return (
            isinstance(read, builtins.list)
            and len(sent) == len(read)
            and all(same_value(a, b) for a, b in zip(sent, read, strict=True))
        )
    return bool(sent == read)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _moment(value: str) -> datetime | None:
    """A date or date-time as an instant (UTC unless said), or None for other text."""
    if not DATE_LIKE.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _shown(value: Any) -> str:
    """A value in an explanation: JSON, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _unclear(method: str, path: str, why: str) -> UnclearAnswer:
    return UnclearAnswer(f"{method} {path}: unclear answer for this record ({why})", why)


def _record_id(answer: Any) -> int | None:
    value = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return int(value) if str(value).strip().isdigit() else None


def _status(answer: Mapping[str, Any]) -> int | None:
    for key in ("statusCode", "status"):
        value = answer.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _text(answer: Mapping[str, Any]) -> str:
    """The API's explanation in an answer body (either documented error shape)."""
    for key in ("Message", "message", "error"):
        if isinstance(answer.get(key), str) and answer[key]:
            return str(answer[key])
    return ""


def where_field(name: str) -> str:
    if not FIELD_NAME.fullmatch(name):
        raise ValueError(f"not a field name: {name!r}")
    return name


def where_literal(value: int | str) -> str:
    """A value in a ``where=`` expression: a number, or a single-quoted string."""
    if isinstance(value, bool):
        raise ValueError("booleans are not documented in where= filters")
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def changed_after(after: str) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a record was updated or deleted after ``after`` (an API date), as the
    API's ``dateUpdated > after OR dateDeleted > after`` keeps it; a date that cannot
    be read keeps the record (read once more, never missed)."""
    bound = _moment(after)

    def keep(record: Mapping[str, Any]) -> bool:
        if bound is None:
            return True
        for name in ("dateUpdated", "dateDeleted"):
            value = record.get(name)
            if value:
                moment = _moment(str(value))
                if moment is None or moment > bound:
                    return True
        return False

    return keep


def shift_date(value: str, seconds: int) -> str:
    """An API date (``2017-10-17T11:17:57.363Z``) moved by ``seconds``, in the same form."""
    moment = datetime.fromisoformat(value.strip().removesuffix("Z"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    moved = moment + timedelta(seconds=seconds)
    return moved.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
