"""HTTP client of the Sage Sales Management REST API (v4).

One :class:`SalesManagementClient` per implementation. It logs in lazily, logs in again
once when the session expires, retries throttled and failing calls with exponential
backoff (honouring ``Retry-After``), and bounds its own concurrency and request rate so
that the sync engine may call it from a pool of threads.
"""

from __future__ import annotations

import builtins
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from dossiersync.errors import (
    SsmAuthError,
    SsmError,
    SsmNotFound,
    SsmRefused,
    SsmUnavailable,
)
from dossiersync.target import WriteResult

log = logging.getLogger("dossiersync.ssm")
T = TypeVar("T")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

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
LOGIN_REFUSED = "login refused: check the public/private key"


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


class SalesManagementClient:
    """Generic record I/O against one Sales Management implementation."""

    name = "sales_management"

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.api_url = api_url.rstrip("/")
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
        self._pacer = RequestPacer(max_requests_per_second)
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    def __enter__(self) -> SalesManagementClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

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
                raise SsmError(f"GET /{resource} answered something else than a list", 200)
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
            raise SsmError(f"GET /{resource} answered something else than a list", 200)
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
            raise SsmError(f"GET /{resource}/{record_id} answered something else than a record")
        return record

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        """Create one record; returns its new id (the API answers 200 with it)."""
        response = self._call("POST", f"/{resource}", json=dict(body))
        new_id = _record_id(_json(response))
        if new_id is None:
            raise SsmError(f"POST /{resource} answered without the new record's id")
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

        After a call whose outcome is unknown (timeout, 5xx), bodies carrying an ``extId``
        are looked up by it: found, they were created; not found, they keep the error and
        are created again only by a later pass, which looks them up first too.
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
        for a resource without bulk; one result per item, in order."""
        results: builtins.list[WriteResult] = []
        for chunk in _chunks(items, self.bulk_limit(resource)):
            if self.bulk_limit(resource) == 1:
                record_id, body = chunk[0]
                outcome = self._one(self.update, resource, record_id, body)
                results.append(WriteResult(record_id, outcome.error))
                continue
            framed = [{"guid": uuid.uuid4().hex, "id": int(i), "data": dict(b)} for i, b in chunk]
            answers = self._bulk("PUT", resource, framed, creating=False)
            results += [
                WriteResult(int(i), a.error) for (i, _), a in zip(chunk, answers, strict=True)
            ]
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
        """One bulk call; each item's result found by its ``guid``."""
        path = f"/{resource}/bulk"
        try:
            response = self._call(method, path, json=items)
        except SsmError as exc:
            return [WriteResult(error=exc) for _ in items]
        answers = _json(response)
        if not isinstance(answers, builtins.list):
            error = SsmError(f"{method} {path} answered something else than a list", 200)
            return [WriteResult(error=error) for _ in items]
        by_guid = {str(a.get("guid")): a for a in answers if isinstance(a, dict) and a.get("guid")}
        results = []
        for item in items:
            answer = by_guid.get(item["guid"])
            if answer is None:
                error = SsmRefused(f"{method} {path}: no answer for this record", None)
                results.append(WriteResult(error=error))
                continue
            status = _status(answer)
            record_id = _record_id(answer) if creating else item["id"]
            if status is not None and 200 <= status < 300 and record_id is not None:
                results.append(WriteResult(record_id))
            else:
                text = self._mask(_text(answer) or "no clear success")
                gone = status is not None and _not_found(method, status, text)
                kind = SsmNotFound if gone else SsmRefused
                error = kind(f"{method} {path} refused this record: {text}", status, text)
                results.append(WriteResult(error=error))
        return results

    def _recover(
        self,
        resource: str,
        bodies: Sequence[Mapping[str, Any]],
        results: builtins.list[WriteResult],
    ) -> builtins.list[WriteResult]:
        """Creates whose outcome is unknown: the records found by extId were created."""
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
            n = unknown.get(str(record.get("extId")))
            if n is not None:
                log.debug("%s %s: created despite the error, found by extId", resource, n)
                recovered[n] = WriteResult(int(record["id"]))
        return recovered

    # -- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, **request: Any) -> httpx.Response:
        token = self._session_token()
        response = self._send(method, path, token, **request)
        if response.status_code == 401:
            token = self._renew_session(token)
            response = self._send(method, path, token, **request)
            if response.status_code == 401:
                raise SsmAuthError(
                    f"{method} {path}: session refused right after a fresh login", 401
                )
        if response.status_code >= 400:
            text = self._message(response)
            error = SsmNotFound if _not_found(method, response.status_code, text) else SsmRefused
            raise error(
                f"{method} {path} refused (HTTP {response.status_code}): {text}",
                response.status_code,
                text,
            )
        return response

    def _message(self, response: httpx.Response) -> str:
        """The API's explanation of an error, with any secret of this client masked."""
        return self._mask(_message(response))

    def _mask(self, text: str) -> str:
        secrets = [self._credentials["username"], self._credentials["password"], self._token]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

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
            raise SsmAuthError(f"{self.api_url}: {LOGIN_REFUSED}", response.status_code)
        if response.status_code >= 400:
            raise SsmRefused(
                f"POST /login refused (HTTP {response.status_code}): {self._message(response)}",
                response.status_code,
            )
        answer = _json(response)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise SsmError("POST /login answered without a session token", response.status_code)
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
                    started = time.monotonic()
                    response = self._http.request(method, path, headers=headers, **request)
            except httpx.TransportError as exc:
                log.debug("%s %s failed: %s", method, path, type(exc).__name__)
                if attempt >= self.max_retries or not (
                    idempotent or isinstance(exc, NOT_SENT_ERRORS)
                ):
                    raise SsmUnavailable(
                        f"{method} {self.api_url}{path}: {type(exc).__name__} after "
                        f"{attempt + 1} attempt(s); check the API URL and the network",
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
                raise SsmUnavailable(
                    f"{method} {self.api_url}{path}: HTTP {response.status_code} after "
                    f"{attempt + 1} attempt(s): {self._message(response)}",
                    response.status_code,
                    may_have_acted=not (
                        idempotent or response.status_code in NOT_PROCESSED_STATUSES
                    ),
                )
            self._sleep(self._backoff(attempt, response.headers.get("Retry-After")))
            attempt += 1

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry ``attempt + 1``."""
        announced = _retry_after_seconds(retry_after)
        if announced is not None:
            return min(self.backoff_max, announced)
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


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
        raise SsmError(
            f"{response.request.method} {response.request.url.path} answered non-JSON content",
            response.status_code,
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


def _record_id(answer: Any) -> int | None:
    value = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return int(value) if str(value).strip().isdigit() else None


def _status(answer: dict[str, Any]) -> int | None:
    for key in ("statusCode", "status"):
        value = answer.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _text(answer: dict[str, Any]) -> str:
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


def shift_date(value: str, seconds: int) -> str:
    """An API date (``2017-10-17T11:17:57.363Z``) moved by ``seconds``, in the same form."""
    moment = datetime.fromisoformat(value.strip().removesuffix("Z"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    moved = moment + timedelta(seconds=seconds)
    return moved.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
