"""A real HTTP server on 127.0.0.1 between a client and the SSM simulator that lets a test
say what the client gets for a bulk call: a server answering in its own way, or lying.

Every request is forwarded as it came, except ``POST|PUT /{resource}/bulk``: its items go
to ``bulk(method, items, forward)``, which forwards what it wants to the simulator
(``forward(items)`` returns the simulator's answers, one per item forwarded) and returns
the JSON the client gets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Items = list[dict[str, Any]]
Forward = Callable[[Items], Items]
BulkHandler = Callable[[str, Items, Forward], Any]
#: request headers not forwarded (hop by hop, or recomputed)
HOP = {"host", "connection", "keep-alive", "content-length", "transfer-encoding"}


class BulkProxy:
    """``with BulkProxy(simulator.url, bulk) as proxy:`` — ``proxy.url`` is the API URL."""

    def __init__(self, upstream: str, bulk: BulkHandler) -> None:
        self.upstream = httpx.URL(upstream.rstrip("/"))
        self.bulk = bulk
        self.bulk_calls = 0
        self._http = httpx.Client(timeout=30)
        self._lock = threading.Lock()
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

            do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}{self.upstream.path}"

    def __enter__(self) -> BulkProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP}
        target = f"{self.upstream.scheme}://{self.upstream.host}:{self.upstream.port}"

        def send(content: bytes) -> httpx.Response:
            return self._http.request(
                handler.command, target + handler.path, headers=headers, content=content
            )

        if handler.path.split("?")[0].endswith("/bulk"):
            with self._lock:
                self.bulk_calls += 1

            def forward(items: Items) -> Items:
                if not items:
                    return []
                answers: Items = send(json.dumps(items).encode()).json()
                return answers

            answer = self.bulk(handler.command, json.loads(body), forward)
            self.answer(handler, 200, json.dumps(answer).encode())
            return
        upstream = send(body)
        self.answer(handler, upstream.status_code, upstream.content)

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, status: int, content: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
