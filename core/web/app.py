"""``create_app(config, store)``: the status page and its JSON API as one Starlette app."""

from __future__ import annotations

import logging
import math

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..secrets import Secret
from ..state.store import StateStore
from . import api, pages
from .auth import AccessToken, Sessions, Throttle, TokenGate, access_token, check_strength
from .jobs import SyncJobs
from .params import BadParameter
from .redact import Redactor
from .site import HERE, NO_STORE, Site, site_of, template_environment

log = logging.getLogger("dossiersync.web")

#: the page's own scripts and styles only; no frame may embed it
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_json(status_code: int, error: str, detail: str | None = None) -> JSONResponse:
    body: dict[str, str | None] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


async def unauthorized(request: Request) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="dossiersync"'}
    if _is_api(request):
        response: Response = _error_json(401, "unauthorized", "send Authorization: Bearer <token>")
    else:
        site = site_of(request)
        response = site.html(request, "unauthorized.html", {}, status_code=401)
    response.headers.update(headers)
    return response


async def too_many_attempts(request: Request, wait: float) -> Response:
    """429: this address sent too many wrong tokens; its next one is looked at later."""
    seconds = max(1, math.ceil(wait))
    detail = f"too many wrong tokens from this address: try again in {seconds} s"
    if _is_api(request):
        response: Response = _error_json(429, "too many attempts", detail)
    else:
        site = site_of(request)
        context = {"heading": "429", "text": detail}
        response = site.html(request, "error.html", context, status_code=429)
    response.headers["Retry-After"] = str(seconds)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    site = site_of(request)
    if _is_api(request):
        error = {404: "not found", 405: "method not allowed", 409: "conflict"}.get(
            exc.status_code, "refused"
        )
        return site.json({"error": error, "detail": exc.detail}, status_code=exc.status_code)
    t = site.translator(request)
    if exc.status_code == 403:
        return pages.forbidden(site, request)
    if exc.status_code == 404:
        heading, text = t("notfound.title"), t("notfound.text")
    else:
        heading, text = str(exc.status_code), str(exc.detail)
    context = {"heading": heading, "text": text}
    return site.html(request, "error.html", context, status_code=exc.status_code)


async def bad_parameter(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadParameter)
    site = site_of(request)
    if _is_api(request):
        return site.json({"error": "bad parameter", "detail": str(exc)}, status_code=400)
    return site.html(request, "error.html", {"heading": "400", "text": str(exc)}, status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if _is_api(request):
        return _error_json(500, "internal error", "see the service log")
    return Response("internal error: see the service log", status_code=500, media_type="text/plain")


def create_app(
    config: Config,
    store: StateStore,
    *,
    token: AccessToken | Secret | None = None,
    jobs: SyncJobs | None = None,
    scheduled: bool = False,
    throttle: Throttle | None = None,
) -> Starlette:
    """The status page and its JSON API for this configuration and state store.

    ``token`` defaults to :func:`access_token` (``web.token``, else the token file next
    to the configuration, created on first use).  ``jobs`` lets a host process share
    the registry of page-started syncs with its own schedule (see ``SyncJobs.claim``).
    ``scheduled`` says that this process runs the service's schedule (``dossiersync
    run``); without it the page shows no next scheduled run, as none will happen here.
    ``throttle`` counts wrong tokens per client address (:class:`Throttle`'s defaults).
    """
    if token is None:
        token = access_token(config)
    secret = token.secret if isinstance(token, AccessToken) else token
    check_strength(secret)
    sessions = Sessions(
        secret,
        idle_seconds=config.web.session_idle_minutes * 60,
        max_seconds=config.web.session_max_hours * 3600,
    )
    site = Site(
        config=config,
        store=store,
        sessions=sessions,
        jobs=jobs or SyncJobs(config, store),
        redact=Redactor(config, secret),
        templates=template_environment(),
        scheduled=scheduled,
    )
    app = Starlette(
        routes=[
            *api.ROUTES,
            *pages.ROUTES,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                TokenGate,
                sessions=sessions,
                refuse=unauthorized,
                wait=too_many_attempts,
                throttle=throttle or Throttle(),
            ),
        ],
        exception_handlers={
            HTTPException: http_error,
            BadParameter: bad_parameter,
            500: server_error,
        },
    )
    app.state.site = site
    return app
