"""What every handler of the page and the API shares, kept on ``app.state.site``."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from ..config import Config
from ..errors import DossierSyncError
from ..messages import incident_text
from ..state.store import StateStore
from .auth import Sessions, auth_of
from .i18n import Translator, choose_language
from .jobs import SyncJobs
from .redact import Redactor

log = logging.getLogger("dossiersync.web")

HERE = Path(__file__).parent
NO_STORE = {"Cache-Control": "no-store"}
#: how long the count of each dossier's records in Sales Management is reused
SSM_COUNTS_SECONDS = 60.0
#: the longest request path an HTML answer repeats (the sign-in form's action)
MAX_PATH_SHOWN = 200


@dataclass
class Site:
    config: Config
    store: StateStore
    sessions: Sessions
    jobs: SyncJobs
    redact: Redactor
    templates: Environment
    #: this process runs the service's schedule (``dossiersync run``), not the page alone
    scheduled: bool = False
    _ssm_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ssm_counts: tuple[float, dict[str, int] | None] | None = field(default=None, repr=False)

    def records_in_ssm(self) -> dict[str, int] | None:
        """Records per dossier in Sales Management (how dossiers synced before are found),
        asked at most once a minute; None when Sales Management cannot be asked."""
        from ..dossiers import records_in_ssm
        from ..runner import ssm_client

        with self._ssm_lock:
            now = time.monotonic()
            if self._ssm_counts is not None and now - self._ssm_counts[0] < SSM_COUNTS_SECONDS:
                return self._ssm_counts[1]
            counts: dict[str, int] | None
            try:
                with ssm_client(self.config, max_retries=1) as client:
                    counts = records_in_ssm(self.config, client)
            except DossierSyncError as exc:
                log.warning("Sales Management not asked for earlier dossiers: %s", exc)
                counts = None
            self._ssm_counts = (now, counts)
            return counts

    def json(self, data: Any, status_code: int = 200) -> JSONResponse:
        return JSONResponse(self.redact(data), status_code=status_code, headers=NO_STORE)

    def translator(self, request: Request) -> Translator:
        return Translator(
            choose_language(self.config.web.language, request.headers.get("accept-language"))
        )

    def html(
        self, request: Request, template: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        t = self.translator(request)
        auth = request.scope.get("state", {}).get("auth")
        values = {
            "t": t,
            "lang": t.language,
            "implementation": self.config.implementation.name,
            "csrf_token": self.sessions.csrf_token(auth) if auth else None,
            "signed_in": auth is not None and auth.by == "cookie",
            # one leading slash: a form action never becomes a protocol-relative address;
            # an address longer than any of the page's is not sent back
            "path": "/" + request.url.path.lstrip("/")[:MAX_PATH_SHOWN],
            **self.redact(context),
        }
        body = self.templates.get_template(template).render(values)
        return HTMLResponse(body, status_code=status_code, headers=NO_STORE)

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        return self.sessions.csrf_ok(auth_of(request), submitted)


def site_of(request: Request) -> Site:
    site = request.app.state.site
    assert isinstance(site, Site)
    return site


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["incident_text"] = incident_text
    return env


def when(value: str | None) -> str:
    """A stored UTC timestamp (ISO) as ``2024-05-01 10:15:03``; ``—`` for none."""
    if not value:
        return "—"
    return value.replace("T", " ")[:19]
