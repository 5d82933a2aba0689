"""Serving the page with uvicorn: in the foreground (``dossiersync serve``) or in a
thread of a host process (``dossiersync run``)."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from starlette.applications import Starlette

from ..config import Config
from ..errors import ConfigError
from ..lang import said
from ..state.store import StateStore
from .app import create_app
from .auth import AccessToken, access_token
from .jobs import SyncJobs

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def announcement(url: str, token: AccessToken) -> list[str]:
    """What to print at start: the address, and the token only the time it was made.

    The lines are printed on the terminal by the command line, in its language (its
    catalogue, not the page's): said, they stay English where they are kept."""
    if token.created:
        return [
            said("Status page: {url}?token={token}", url=url, token=token.secret.reveal()),
            said(
                "(token generated and kept in {path}, readable by its owner only; it is "
                "printed this once)",
                path=str(token.path),
            ),
        ]
    where = (
        said("web.token in the configuration")
        if token.source == "configuration"
        else str(token.path)
    )
    return [
        said(
            "Status page: {url} (open it with ?token=<token>; the token is in {where})",
            url=url,
            where=where,
        )
    ]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            said(
                "cannot serve the status page on {host}:{port}: {error}; change web.bind / "
                "web.port (or --bind / --port)",
                host=host,
                port=port,
                error=exc.strerror,
            )
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class WebServer:
    """The page served by uvicorn in a background thread; ``stop()`` ends it."""

    app: Starlette
    host: str
    port: int
    token: AccessToken
    server: Any = field(repr=False)
    thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    def announcement(self) -> list[str]:
        return announcement(self.url, self.token)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.app.state.site.jobs.stop(timeout)
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _uvicorn_server(app: Starlette) -> Any:
    import uvicorn

    # no forwarding header is trusted: the client address wrong tokens are counted by
    # would otherwise be whatever a client on this machine writes in X-Forwarded-For
    config = uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False)
    return uvicorn.Server(config)


def serve_in_thread(
    config: Config,
    store: StateStore,
    *,
    bind: str | None = None,
    port: int | None = None,
    jobs: SyncJobs | None = None,
    token: AccessToken | None = None,
    scheduled: bool = False,
) -> WebServer:
    """Start serving in a daemon thread; returns once the server accepts connections.

    ``port=0`` takes a free port (``WebServer.port`` tells which).  Printing the
    address is left to the caller: ``WebServer.announcement()`` gives the lines.
    ``scheduled``: the caller runs the service's schedule (see :func:`create_app`).
    """
    host = bind or config.web.bind
    # the address first: a bad one is said before the token file is made
    sock = _bind(host, config.web.port if port is None else port)
    try:
        token = token or access_token(config)
        app = create_app(config, store, token=token, jobs=jobs, scheduled=scheduled)
    except BaseException:
        sock.close()
        raise
    server = _uvicorn_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dossiersync-web", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()
        raise ConfigError(said("the status page did not start on {host}", host=host))
    return WebServer(app, host, int(sock.getsockname()[1]), token, server, thread)


def serve(
    config: Config,
    store: StateStore | Callable[[], StateStore],
    *,
    bind: str | None = None,
    port: int | None = None,
    echo: Callable[[str], None] = _stderr,
) -> None:
    """Serve the page in the foreground until interrupted (Ctrl-C, SIGTERM).

    ``store`` may be given as a function that opens it: it is then opened once the
    address is taken, so that a bad or busy address creates no state file."""
    host = bind or config.web.bind
    # the address first: a bad one is said before the token file or the store is made
    sock = _bind(host, config.web.port if port is None else port)
    try:
        token = access_token(config)
        app = create_app(config, store if isinstance(store, StateStore) else store(), token=token)
    except BaseException:
        sock.close()
        raise
    previous = None
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully, then raises the signal again: end quietly. Set
        # before the address is said: a SIGTERM sent as soon as it is read (before
        # uvicorn takes the signals) ends the command too
        previous = signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        for line in announcement(_url(host, int(sock.getsockname()[1])), token):
            echo(line)
        server = _uvicorn_server(app)
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        app.state.site.jobs.stop(STOP_TIMEOUT)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
