"""The simulated Sales Management REST API (v4) as a Starlette application.

It answers as the public documentation says (see ``docs/simulator.md``) and refuses the
rest; every refusal (a 4xx answer other than 401 and 429, or a failed bulk item) is
counted and shown at ``GET /_simulator/stats``, so a test or the demo can prove that the
connector sent nothing the documentation does not promise.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .store import EXTRA_FIELD_SCHEMA, EXTRA_FIELD_SHAPES, ApiError, Store, extra_field_resource

BASE_PATH = "/api/v4"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
PAGE_SIZE_HEADER = "X-FM-Entity-Count"
STATS_PATH = "/_simulator/stats"
#: how the end of a list is announced: not at all (the API does not document it), with
#: ``X-FM-Next-Page`` on every page but the last, or as an older API did (next = current
#: page on the last one)
NEXT_PAGE_MODES = ("none", "next", "repeat")
#: the shape of a bulk item's answer, unpublished: ``status`` ``{"guid", "statusCode",
#: "id", "Message"}``, ``message`` ``{"guid", "id", "Message"}`` (the wording of a single
#: create or update, no status), ``bare`` ``{"guid", "id"}`` (a failure: ``{"guid",
#: "error"}``)
BULK_ANSWERS = ("status", "message", "bare")

Handler = Callable[[Request], Awaitable[Response]]


def message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"Message": text}, status_code=status, headers=headers)


@dataclass(frozen=True)
class Switches:
    """Behaviour knobs of a simulator instance."""

    public_key: str = "demo-public"
    private_key: str = "demo-private"
    latency_ms: int = 0
    error_rate: float = 0.0
    rate_limit: int = 0
    session_ttl: int = 3600
    seed: int | None = None
    lost_answer_rate: float = 0.0
    next_page: str = "none"
    max_page_size: int = MAX_PAGE_SIZE
    bulk_answer: str = "status"
    extra_fields_shape: str = "flat"


class Stats:
    """What the simulator answered: requests (in all, and by call), and refusals by reason."""

    def __init__(self) -> None:
        self.requests = 0
        self.calls: dict[str, int] = {}
        self.refusals: dict[str, int] = {}
        self._lock = threading.Lock()

    def request(self, method: str, path: str) -> None:
        """Count one request as ``METHOD /resource``, ``/bulk`` kept, record ids left out."""
        parts = path.removeprefix(BASE_PATH).strip("/").split("/")
        call = f"{method} /{parts[0]}" + ("/bulk" if parts[1:2] == ["bulk"] else "")
        with self._lock:
            self.requests += 1
            self.calls[call] = self.calls.get(call, 0) + 1

    def refused(self, method: str, path: str, status: int, text: str) -> None:
        resource = path.removeprefix(BASE_PATH).split("/")[1:2]
        reason = f"{method} /{''.join(resource)} {status}: {text[:120]}"
        with self._lock:
            self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "calls": dict(self.calls),
                "refusals": sum(self.refusals.values()),
                "reasons": dict(self.refusals),
            }


class Gate:
    """Sessions, rate limit and fault injection applied in front of every resource call."""

    def __init__(self, switches: Switches) -> None:
        self.switches = switches
        self._sessions: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self._random = random.Random(switches.seed)
        self._lock = threading.Lock()

    def open_session(self, username: Any, password: Any) -> str | None:
        expected = (self.switches.public_key, self.switches.private_key)
        if not (isinstance(username, str) and isinstance(password, str)):
            return None
        matches = secrets.compare_digest(username.encode(), expected[0].encode())
        matches &= secrets.compare_digest(password.encode(), expected[1].encode())
        if not matches:
            return None
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._sessions = {t: end for t, end in self._sessions.items() if end > now}
            self._sessions[token] = now + self.switches.session_ttl
        return token

    def session_alive(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expires = self._sessions.get(token)
            if expires is None:
                return False
            if expires <= time.monotonic():
                del self._sessions[token]
                return False
            return True

    def retry_after(self) -> int | None:
        """Seconds to wait if the tenant is over its per-second limit, else ``None``.

        The limit is the tenant's (the keys'), whatever the number of sessions.
        """
        limit = self.switches.rate_limit
        if limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            recent = self._recent
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= limit:
                return max(1, math.ceil(recent[0] + 1.0 - now))
            recent.append(now)
            return None

    def injected_failure(self) -> int | None:
        rate = self.switches.error_rate
        if rate <= 0:
            return None
        with self._lock:
            if self._random.random() >= rate:
                return None
            return self._random.choice((500, 503))

    def answer_lost(self) -> bool:
        """Whether this write, once carried out, is answered 500 as if it had failed."""
        rate = self.switches.lost_answer_rate
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate


def create_app(
    db_path: str,
    *,
    public_key: str = "demo-public",
    private_key: str = "demo-private",
    latency_ms: int = 0,
    error_rate: float = 0.0,
    rate_limit: int = 0,
    session_ttl: int = 3600,
    seed: int | None = None,
    lost_answer_rate: float = 0.0,
    next_page: str = "none",
    max_page_size: int = MAX_PAGE_SIZE,
    bulk_answer: str = "status",
    extra_fields_shape: str = "flat",
) -> Starlette:
    """The simulator application over the SQLite file ``db_path`` (created and seeded if new)."""
    switches = Switches(
        public_key=public_key,
        private_key=private_key,
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit=rate_limit,
        session_ttl=session_ttl,
        seed=seed,
        lost_answer_rate=lost_answer_rate,
        next_page=next_page,
        max_page_size=max_page_size,
        bulk_answer=bulk_answer,
        extra_fields_shape=extra_fields_shape,
    )
    if next_page not in NEXT_PAGE_MODES:
        raise ValueError(f"next_page must be one of {', '.join(NEXT_PAGE_MODES)}")
    if bulk_answer not in BULK_ANSWERS:
        raise ValueError(f"bulk_answer must be one of {', '.join(BULK_ANSWERS)}")
    if extra_fields_shape not in EXTRA_FIELD_SHAPES:
        raise ValueError(f"extra_fields_shape must be one of {', '.join(EXTRA_FIELD_SHAPES)}")
    store = Store(db_path, extra_fields_shape)
    gate = Gate(switches)
    stats = Stats()

    def counted(request: Request, response: Response) -> Response:
        status = response.status_code
        if 400 <= status < 500 and status not in (401, 429):
            text = bytes(response.body).decode(errors="replace")
            stats.refused(request.method, request.url.path, status, text)
        return response

    def guarded(handler: Handler, *, login: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            stats.request(request.method, request.url.path)
            return counted(request, await answer(request))

        async def answer(request: Request) -> Response:
            # the tenant counts requests as they arrive; the latency is the rest of the
            # way, and the answer's
            wait = None if login else gate.retry_after()
            if switches.latency_ms > 0:
                await asyncio.sleep(switches.latency_ms / 1000)
            if not login:
                token = request.headers.get("X-Session-Key")
                if token is None or not gate.session_alive(token):
                    return message(401, "Invalid or expired session key: log in again")
                if wait is not None:
                    headers = {"Retry-After": str(wait)}
                    return message(429, "Too many requests: slow down", headers)
                failure = gate.injected_failure()
                if failure == 500:
                    return message(500, "901: internal error (simulated)")
                if failure is not None:
                    return message(failure, "900: service temporarily unavailable (simulated)")
            try:
                response = await handler(request)
            except ApiError as exc:
                return message(exc.status, exc.message)
            if request.method != "GET" and not login and gate.answer_lost():
                return message(500, "901: internal error (simulated, after the write)")
            return response

        return endpoint

    async def login(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "login body must be a JSON object with username and password")
        token = gate.open_session(body.get("username"), body.get("password"))
        if token is None:
            return message(401, "Invalid credentials")
        return JSONResponse({"token": token})

    async def list_records(request: Request) -> Response:
        resource = request.path_params["resource"]
        page = int_parameter(request.query_params.get("page", "0"), "page")
        size = page_size(request, switches.max_page_size)
        records, total = await run_in_threadpool(
            store.page,
            resource,
            where=request.query_params.get("where"),
            order=request.query_params.get("order"),
            page=page,
            size=size,
        )
        headers = {}
        more = (page + 1) * size < total
        if switches.next_page == "next" and more:
            headers["X-FM-Next-Page"] = str(page + 1)
        elif switches.next_page == "repeat":
            headers["X-FM-Next-Page"] = str(page + 1 if more else page)
        return JSONResponse(records, headers=headers)

    async def get_record(request: Request) -> Response:
        resource, record_id = record_path(request)
        return JSONResponse(await run_in_threadpool(store.get, resource, record_id))

    async def create_record(request: Request) -> Response:
        body = await json_object(request)
        record_id = await run_in_threadpool(store.create, request.path_params["resource"], body)
        return JSONResponse({"Message": "entity created", "id": record_id})

    async def update_record(request: Request) -> Response:
        resource, record_id = record_path(request)
        await run_in_threadpool(store.update, resource, record_id, await json_object(request))
        return JSONResponse({"Message": "entity updated"})

    async def delete_record(request: Request) -> Response:
        resource, record_id = record_path(request)
        await run_in_threadpool(store.delete, resource, record_id)
        return JSONResponse({"Message": "entity deleted"})

    async def bulk_records(request: Request) -> Response:
        body = await json_body(request)
        updating = request.method == "PUT"
        answers = await run_in_threadpool(
            store.bulk, request.path_params["resource"], body, updating=updating
        )
        for item in answers:
            if item["statusCode"] >= 400:
                path = request.url.path
                stats.refused(request.method, path, item["statusCode"], item["Message"])
        return JSONResponse([shaped(item, switches.bulk_answer) for item in answers])

    async def list_extra_fields(request: Request) -> Response:
        page = int_parameter(request.query_params.get("page", "0"), "page")
        size = page_size(request, switches.max_page_size)
        found = await run_in_threadpool(
            store.extra_fields, request.path_params["resource"], page, size
        )
        return JSONResponse(found)

    async def create_extra_field(request: Request) -> Response:
        body = await json_object(request)
        field_id = await run_in_threadpool(
            store.create_extra_field, request.path_params["resource"], body
        )
        return JSONResponse({"Message": "entity created", "id": field_id})

    async def extra_fields_schema(request: Request) -> Response:
        extra_field_resource(request.path_params["resource"])
        return JSONResponse(EXTRA_FIELD_SCHEMA)

    async def show_stats(request: Request) -> Response:
        return JSONResponse(stats.snapshot())

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        stats.request(request.method, request.url.path)
        if 400 <= status < 500:
            stats.refused(request.method, request.url.path, status, str(detail))
        return message(status, str(detail))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        return message(500, f"901: internal error ({type(exc).__name__})")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    routes = [
        Route(f"{BASE_PATH}/login", guarded(login, login=True), methods=["POST"]),
        Route(STATS_PATH, show_stats, methods=["GET"]),
        # before the record routes, which would take "extrafields" for a resource
        Route(
            f"{BASE_PATH}/extrafields/{{resource}}/schema",
            guarded(extra_fields_schema),
            methods=["GET"],
        ),
        Route(f"{BASE_PATH}/extrafields/{{resource}}", guarded(list_extra_fields), methods=["GET"]),
        Route(
            f"{BASE_PATH}/extrafields/{{resource}}", guarded(create_extra_field), methods=["POST"]
        ),
        Route(f"{BASE_PATH}/{{resource}}/bulk", guarded(bulk_records), methods=["POST", "PUT"]),
        Route(f"{BASE_PATH}/{{resource}}", guarded(list_records), methods=["GET"]),
        Route(f"{BASE_PATH}/{{resource}}", guarded(create_record), methods=["POST"]),
        Route(f"{BASE_PATH}/{{resource}}/{{record_id}}", guarded(get_record), methods=["GET"]),
        Route(f"{BASE_PATH}/{{resource}}/{{record_id}}", guarded(update_record), methods=["PUT"]),
        Route(
            f"{BASE_PATH}/{{resource}}/{{record_id}}", guarded(delete_record), methods=["DELETE"]
        ),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.switches = switches
    app.state.stats = stats
    return app


def shaped(answer: dict[str, Any], shape: str) -> dict[str, Any]:
    """A bulk item's answer (``{"guid", "statusCode", "id"?, "Message"}``) in ``shape``.

    A failed item never carries an id, whatever the shape; ``message`` tells it by its
    text alone, ``bare`` by an ``error`` field.
    """
    if shape == "status":
        return answer
    done = answer["statusCode"] < 400
    if shape == "message":
        kept = ("guid", "id", "Message") if done else ("guid", "Message")
        return {k: answer[k] for k in kept}
    if done:
        return {"guid": answer["guid"], "id": answer["id"]}
    return {"guid": answer["guid"], "error": answer["Message"]}


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "request body must be JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from exc


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def int_parameter(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ApiError(400, f"{name} must not be negative")
    return value


def page_size(request: Request, largest: int) -> int:
    """The page size asked for with ``X-FM-Entity-Count`` (50 by default), at most ``largest``."""
    raw = request.headers.get(PAGE_SIZE_HEADER)
    if raw is None or not raw.strip():
        return min(DEFAULT_PAGE_SIZE, largest)
    size = int_parameter(raw.strip(), PAGE_SIZE_HEADER)
    if size == 0:
        raise ApiError(400, f"{PAGE_SIZE_HEADER} must be at least 1")
    return min(size, largest)


def record_path(request: Request) -> tuple[str, int]:
    raw = request.path_params["record_id"]
    if not raw.isdigit():
        raise ApiError(400, f"910: {raw!r} is not a record id")
    return request.path_params["resource"], int(raw)
