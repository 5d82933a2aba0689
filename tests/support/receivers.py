"""Local receivers for what the connector sends out: a webhook endpoint (HTTP) and a mail
server (SMTP, aiosmtpd), each on a free port of 127.0.0.1, keeping what they receive."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Webhook:
    """What an HTTP endpoint received: one (path, JSON body) per POST."""

    url: str
    posts: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 204


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    received: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received.posts.append((self.path, json.loads(body)))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received = Webhook(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """What an SMTP server received, and with which login."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def smtp_receiver(username: str, password: str) -> Iterator[Mailbox]:
    """An SMTP server accepting mail from ``username`` logged in with ``password``."""
    mailbox = Mailbox(port=free_port())

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, secret = data.login.decode(), data.password.decode()
            mailbox.logins.append((login, secret))
            if (login, secret) == (username, password):
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    # login without TLS: on 127.0.0.1, on purpose (aiosmtpd warns of it)
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=authenticate,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
