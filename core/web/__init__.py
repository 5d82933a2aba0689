"""The sync status page and its JSON API, served by the host process.

- :func:`create_app` builds the Starlette app for a configuration and a state store;
- :func:`serve` serves it in the foreground (``dossiersync serve``);
- :func:`serve_in_thread` serves it beside other work (``dossiersync run``) and returns
  a :class:`WebServer` whose ``stop()`` ends it.
"""

from __future__ import annotations

from .app import create_app
from .auth import AccessToken, Throttle, access_token, token_path
from .jobs import SyncBusy, SyncJob, SyncJobs
from .server import WebServer, announcement, serve, serve_in_thread

__all__ = [
    "AccessToken",
    "SyncBusy",
    "SyncJob",
    "SyncJobs",
    "Throttle",
    "WebServer",
    "access_token",
    "announcement",
    "create_app",
    "serve",
    "serve_in_thread",
    "token_path",
]
