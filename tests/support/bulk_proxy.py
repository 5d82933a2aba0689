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
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from support.local_proxy import HOP, LocalProxy

Items = list[dict[str, Any]]
Forward = Callable[[Items], Items]
BulkHandler = Callable[[str, Items, Forward], Any]


class BulkProxy(LocalProxy):
    """``with BulkProxy(simulator.url, bulk) as proxy:`` — ``proxy.url`` is the API URL."""

    def __init__(self, upstream: str, bulk: BulkHandler) -> None:
        super().__init__(upstream, timeout=30)
        self.bulk = bulk
        self.bulk_calls = 0
        self._lock = threading.Lock()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP}

        def send(content: bytes) -> httpx.Response:
            return self._http.request(
                handler.command, self.upstream_url(handler.path), headers=headers, content=content
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
