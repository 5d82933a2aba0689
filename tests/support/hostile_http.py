"""A hostile HTTP server on 127.0.0.1: it logs a client in as the Sales Management API
does, then answers every other request the way a test says, byte by byte if need be.

``answer(request, connection)`` gets the parsed request and a ``Connection`` to write
raw bytes to (``send`` counts them and says whether the client is still reading); it may
drip, send far more than announced, or never finish. The server counts what it sent on
each connection, so a test can tell where the client stopped reading.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BASE_PATH = "/api/v4"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Connection:
    sock: socket.socket
    #: bytes sent on this connection, answers of every request on it included
    sent: int = 0
    #: whether the client closed or reset the connection while it was being written to
    closed_by_client: bool = False
    #: the path of the request answered on it (login aside)
    path: str | None = None

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client stopped reading (closed, reset)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed_by_client = True
            return False
        self.sent += len(data)
        return True

    def head(self, status: int, headers: dict[str, str] | None = None) -> bool:
        lines = [f"HTTP/1.1 {status} X"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def json(self, status: int, value: Any) -> bool:
        body = json.dumps(value).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        return self.head(status, headers) and self.send(body)


Answer = Callable[[Request, Connection], None]


@dataclass
class HostileServer:
    """``with HostileServer(answer) as server:`` — ``server.url`` is the API's base URL."""

    answer: Answer
    connections: list[Connection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}{BASE_PATH}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for connection in self.connections:
                connection.sock.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def answered(self, path: str) -> list[Connection]:
        """The connections that carried a request to ``path`` (login aside)."""
        with self._lock:
            return [c for c in self.connections if c.path == path]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(sock)
            with self._lock:
                self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        reader = connection.sock.makefile("rb")
        try:
            while not self._stop.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                if request.path.endswith("/login"):
                    connection.json(200, {"token": "hostile-session"})
                    continue
                connection.path = request.path.split("?")[0]
                self.answer(request, connection)
                return  # one request per connection past the login: the answer may be torn
        except OSError:
            return
        finally:
            reader.close()
            connection.sock.close()


def _read_request(reader: Any) -> Request | None:
    line = reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline().decode("latin-1").strip()
        if not raw:
            break
        name, _, value = raw.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0") or 0))
    return Request(method, target, headers, body)
