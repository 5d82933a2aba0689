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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dossiersync.errors import SsmAuthError, SsmError, SsmRefused, SsmUnavailable

log = logging.getLogger("dossiersync.ssm")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# statuses and transport errors after which the server surely did not act on the request:
# the only ones a non-idempotent call (a create) may be retried after
NOT_PROCESSED_STATUSES = frozenset({429, 503})
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
BULK_LIMIT = 100
LOGIN_REFUSED = "login refused: check the public/private key"


class RequestPacer:
    """Spaces requests at least ``1 / rate`` seconds apart, across threads (0 = no limit)."""

    def __init__(self, rate: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        if self._interval == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


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

    def list(
        self,
        resource: str,
        where: str | None = None,
        order: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``resource`` matching ``where``, fetched page by page as consumed."""
        size = page_size or self.page_size
        headers = {"Count": str(size), "X-FM-Entity-Count": str(size)}
        page = 0
        while True:
            params: dict[str, str | int] = {"page": page}
            if where:
                params["where"] = where
            if order:
                params["order"] = order
            response = self._call("GET", f"/{resource}", params=params, headers=headers)
            records = _json(response)
            if not isinstance(records, builtins.list):
                raise SsmError(f"GET /{resource} answered something else than a list", 200)
            yield from records
            announced = response.headers.get("X-FM-Next-Page", "").strip()
            if not announced or not records:
                return
            try:
                next_page = int(announced)
            except ValueError:
                raise SsmError(f"GET /{resource}: unreadable next page {announced!r}") from None
            if next_page <= page:
                raise SsmError(f"GET /{resource}: next page {next_page} after page {page}")
            page = next_page

    def get(self, resource: str, record_id: int) -> dict[str, Any]:
        response = self._call("GET", f"/{resource}/{int(record_id)}")
        record = _json(response)
        if not isinstance(record, dict):
            raise SsmError(f"GET /{resource}/{record_id} answered something else than a record")
        return record

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        """Create one record; returns its new id."""
        response = self._call("POST", f"/{resource}", json=dict(body))
        answer = _json(response)
        new_id = answer.get("id") if isinstance(answer, dict) else None
        if isinstance(new_id, bool) or not isinstance(new_id, int | str):
            raise SsmError(f"POST /{resource} answered without the new record's id")
        return int(new_id)

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        """Partial update: only the fields in ``body`` change."""
        self._call("PUT", f"/{resource}/{int(record_id)}", json=dict(body))

    def delete(self, resource: str, record_id: int) -> None:
        self._call("DELETE", f"/{resource}/{int(record_id)}")

    def bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]]
    ) -> builtins.list[dict[str, Any]]:
        """Create or update up to 100 records in one call (``/products/bulk``).

        Items without ``id`` are created, items with ``id`` updated; tag each with a
        ``guid`` to match the answers, which come one per item in order.
        """
        if len(items) > BULK_LIMIT:
            raise ValueError(f"at most {BULK_LIMIT} items per bulk call, got {len(items)}")
        response = self._call("POST", f"/{resource}/bulk", json=[dict(i) for i in items])
        answers = _json(response)
        if not isinstance(answers, builtins.list):
            raise SsmError(f"POST /{resource}/bulk answered something else than a list")
        return answers

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
            raise SsmRefused(
                f"{method} {path} refused (HTTP {response.status_code}): {self._message(response)}",
                response.status_code,
            )
        return response

    def _message(self, response: httpx.Response) -> str:
        """The API's explanation of an error, with any secret of this client masked."""
        text = _message(response)
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
            raise SsmAuthError(LOGIN_REFUSED, response.status_code)
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
            self._pacer.wait()
            started = time.monotonic()
            try:
                with self._slots:
                    response = self._http.request(method, path, headers=headers, **request)
            except httpx.TransportError as exc:
                log.debug("%s %s failed: %s", method, path, type(exc).__name__)
                if attempt >= self.max_retries or not (
                    idempotent or isinstance(exc, NOT_SENT_ERRORS)
                ):
                    raise SsmUnavailable(
                        f"{method} {path}: {type(exc).__name__} after {attempt + 1} attempt(s); "
                        "check the API URL and the network"
                    ) from None
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            log.debug("%s %s -> %d in %.0f ms", method, path, response.status_code, elapsed_ms)
            if response.status_code not in RETRYABLE_STATUSES:
                return response
            if attempt >= self.max_retries or not (
                idempotent or response.status_code in NOT_PROCESSED_STATUSES
            ):
                raise SsmUnavailable(
                    f"{method} {path}: HTTP {response.status_code} after {attempt + 1} "
                    f"attempt(s): {self._message(response)}",
                    response.status_code,
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
    if isinstance(body, dict):
        for key in ("Message", "message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return response.text[:200].strip() or response.reason_phrase
