"""A real HTTP server on 127.0.0.1 in front of the SSM simulator: the base of the test
proxies (the fault proxy, the bulk-answer proxy), each deciding in ``handle`` what the
client gets for a request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import httpx

#: request headers not forwarded (hop by hop, or recomputed)
HOP = {"host", "connection", "keep-alive", "content-length", "transfer-encoding"}


class LocalProxy:
    """``with Proxy(upstream) as proxy:`` — ``proxy.url`` replaces the upstream API URL."""

    def __init__(self, upstream: str, *, timeout: float) -> None:
        self.upstream = upstream.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in two writes: without TCP_NODELAY the body waits
            # for the client's delayed ACK (40 ms a request)
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy.handle(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        base = httpx.URL(self.upstream)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{base.path}".rstrip("/")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def upstream_url(self, path: str) -> str:
        """The upstream address of a request made to ``path`` (with its query)."""
        base = httpx.URL(self.upstream)
        return f"{base.scheme}://{base.host}:{base.port}{path}"
