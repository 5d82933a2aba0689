"""A fault proxy: a real HTTP server on 127.0.0.1 between the connector and the SSM
simulator, failing a seeded share of the requests the way a remote API does.

Every request to the API (not the simulator's ``/_simulator`` back door) draws from a
``random.Random(seed)``: with probability ``rate`` it meets one fault, chosen evenly
among :data:`FAULTS`:

- ``500_before``: answered 500, never forwarded (the server did not act);
- ``500_after``: forwarded, the server acted, then answered 500 instead of its answer;
- ``429``: answered 429 with ``Retry-After``, never forwarded;
- ``401``: the session expires: answered 401, and every later request with the same
  session key too (a new login gets a new key). Never on the login itself, nor on a
  session's first requests (a server does not expire a session it just opened);
- ``reset``: the connection is reset (TCP RST), before or after the request was
  forwarded (a coin decides);
- ``hold``: forwarded, then the answer is held past the client's timeout.

What it did is counted in :attr:`FaultProxy.counts` (by fault, plus ``requests``).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

import httpx

from support.local_proxy import HOP, LocalProxy

FAULTS = ("500_before", "500_after", "429", "401", "reset", "hold")
#: requests a session serves before it may expire
SESSION_GRACE = 5


class FaultProxy(LocalProxy):
    """``with FaultProxy(upstream, rate=0.2, seed=1) as proxy:`` — ``proxy.url`` replaces
    the simulator's URL in the connector's configuration."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float,
        seed: int,
        hold_seconds: float = 3.5,
        retry_after: str = "1",
        faults: tuple[str, ...] = FAULTS,
    ) -> None:
        super().__init__(upstream, timeout=120)
        self.rate = rate
        self.hold_seconds = hold_seconds
        self.retry_after = retry_after
        self.faults = faults
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._served: Counter[str] = Counter()  # requests per session key
        self._expired: set[str] = set()

    # -- one request -------------------------------------------------------------------

    def draw(self, path: str, session: str | None) -> str | None:
        """The fault this request meets, if any (seeded, one draw per request)."""
        with self._lock:
            self.counts["requests"] += 1
            if session is not None:
                self._served[session] += 1
                if session in self._expired:
                    return "expired"
            if self._random.random() >= self.rate:
                return None
            fault = self._random.choice(self.faults)
            if fault == "401":
                if session is None or self._served[session] <= SESSION_GRACE:
                    return None
                self._expired.add(session)
            if fault == "reset":
                fault = self._random.choice(("reset_before", "reset_after"))
            self.counts[fault] += 1
            return fault

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path
        session = handler.headers.get("X-Session-Key")
        fault = None if "/_simulator" in path else self.draw(path, session)
        if fault in ("401", "expired"):
            self.answer(handler, 401, b'{"Message": "session expired"}')
            return
        if fault == "500_before":
            self.answer(handler, 500, b'{"Message": "internal error"}')
            return
        if fault == "429":
            self.answer(handler, 429, b'{"Message": "too many requests"}', self.retry_after)
            return
        if fault == "reset_before":
            self.reset(handler)
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP}
        upstream = self._http.request(
            handler.command, self.upstream_url(path), headers=headers, content=body
        )
        if fault == "500_after":
            self.answer(handler, 500, b'{"Message": "internal error"}')
            return
        if fault == "reset_after":
            self.reset(handler)
            return
        if fault == "hold":
            time.sleep(self.hold_seconds)
        try:
            self.answer(handler, upstream.status_code, upstream.content, None, upstream.headers)
        except OSError:
            handler.close_connection = True  # the client gave up waiting

    @staticmethod
    def answer(
        handler: BaseHTTPRequestHandler,
        status: int,
        content: bytes,
        retry_after: str | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            if name.lower() not in HOP and name.lower() not in ("date", "server"):
                handler.send_header(name, value)
        if headers is None:
            handler.send_header("Content-Type", "application/json")
        if retry_after is not None:
            handler.send_header("Retry-After", retry_after)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
        handler.wfile.flush()

    @staticmethod
    def reset(handler: BaseHTTPRequestHandler) -> None:
        """Close the connection with a TCP RST (SO_LINGER 0), no answer."""
        sock: socket.socket = handler.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True
        sock.close()
