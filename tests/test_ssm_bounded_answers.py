"""Bounded answers: against a hostile local server (a real HTTP server on 127.0.0.1), the
client reads no answer past ``max_response_bytes``, no request past
``request_deadline`` however the answer is dripped, and quotes no more than a few kB of
a server's text in an error; the journal bounds what it stores whatever the plugin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dossiersync.config import load
from dossiersync.errors import ConfigError, SsmRefused, SsmUnavailable
from dossiersync.journal import MAX_TEXT, add_event, open_incident, start_run, utcnow
from dossiersync.plugins.sales_management import SalesManagementClient
from dossiersync.plugins.sales_management.client import MAX_ERROR_TEXT, MAX_RESPONSE_BYTES
from dossiersync.runner import ssm_client
from dossiersync.state import Dossier, Event, Incident, StateStore

from support.bulk_proxy import BulkProxy
from support.hostile_http import Connection, HostileServer, Request
from support.workspace import Workspace

MB = 1024 * 1024
#: what a local socket pair may hold between the server's writes and the client's reads
SOCKET_SLACK = 16 * MB


def client(server: HostileServer, **options: Any) -> SalesManagementClient:
    options.setdefault("max_requests_per_second", 0)
    options.setdefault("backoff_base", 0.01)
    options.setdefault("max_retries", 0)
    return SalesManagementClient(server.url, "pub-key", "priv-key", **options)


def endless_page(connection: Connection, total: int, *, announce: bool) -> None:
    """A JSON list of ``total`` bytes of accounts, sent as fast as the client reads."""
    record = json.dumps({"id": 1, "extId": "X:1", "name": "A" * 1000}).encode()
    headers = {"Content-Type": "application/json"}
    headers.update({"Content-Length": str(total)} if announce else {"Connection": "close"})
    if not connection.head(200, headers) or not connection.send(b"["):
        return
    sent = 1
    chunk = b",".join([record] * 64) + b","
    while sent < total - len(chunk):
        if not connection.send(chunk):
            return
        sent += len(chunk)
    connection.send(record + b"]")


@pytest.mark.parametrize("announce", [False, True])
def test_a_50_mb_page_is_not_read_past_the_cap(announce: bool) -> None:
    """The page is refused with an error naming the request; the server could send
    about the cap and what the sockets hold, never the 50 MB (nor, announced, more than
    its headers)."""

    def answer(request: Request, connection: Connection) -> None:
        endless_page(connection, 50 * MB, announce=announce)

    with HostileServer(answer) as server, client(server) as api:
        with pytest.raises(SsmUnavailable) as caught:
            list(api.list_changed("accounts"))
        (connection,) = server.answered("/api/v4/accounts")
        time.sleep(0.2)  # the server's last write fails once the client has closed
    said = str(caught.value)
    assert said.startswith("GET /accounts: answer larger than max_response_bytes = 33554432")
    assert "pub-key" not in said and "priv-key" not in said and "hostile-session" not in said
    assert connection.closed_by_client
    if announce:
        assert "announced 52428800 bytes" in said
        assert connection.sent < SOCKET_SLACK
    else:
        assert "reading stopped at" in said
        assert MAX_RESPONSE_BYTES < connection.sent < MAX_RESPONSE_BYTES + SOCKET_SLACK
    assert not caught.value.may_have_acted


def test_the_cap_is_the_clients_setting() -> None:
    def answer(request: Request, connection: Connection) -> None:
        endless_page(connection, 50 * MB, announce=False)

    with HostileServer(answer) as server, client(server, max_response_bytes=2 * MB) as api:
        with pytest.raises(SsmUnavailable, match="max_response_bytes = 2097152"):
            api.get("accounts", 1)
        (connection,) = server.answered("/api/v4/accounts/1")
    assert connection.sent < 2 * MB + SOCKET_SLACK


def drip(connection: Connection, server: HostileServer, head: bool = False) -> None:
    """An answer of 100 bytes announced, one byte a second (its headers too if ``head``)."""
    body = b'[{"id": 1}]'.ljust(100)
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body
    if not head:
        connection.send(whole[: whole.index(b"\r\n\r\n") + 4])
        whole = body
    for byte in whole:
        if server.stopped or not connection.send(bytes([byte])):
            return
        time.sleep(1.0)


@pytest.mark.parametrize("head", [False, True])
def test_an_answer_dripped_a_byte_a_second_ends_at_the_deadline(head: bool) -> None:
    """timeout = 3 s bounds each read, which a drip never exceeds; the request fails at
    its 1.5 s deadline, its headers dripped or its body, named in the error."""
    with HostileServer(lambda r, c: drip(c, server, head)) as server:
        with client(server, timeout=3.0, request_deadline=1.5) as api:
            started = time.monotonic()
            with pytest.raises(SsmUnavailable) as caught:
                list(api.list_changed("accounts"))
            elapsed = time.monotonic() - started
    assert str(caught.value).startswith(
        "GET http://127.0.0.1:"
    ) and "/api/v4/accounts: not answered in full within request_deadline = 1.5 s after 1 " in (
        str(caught.value)
    )
    assert 1.4 < elapsed < 2.9, elapsed  # the deadline, not the 100 s of the drip


def test_a_deadline_passed_is_retried_as_a_timeout_and_a_create_may_have_acted() -> None:
    with HostileServer(lambda r, c: drip(c, server)) as server:
        with client(server, timeout=3.0, request_deadline=0.5, max_retries=2) as api:
            with pytest.raises(SsmUnavailable) as listing:
                api.get("accounts", 1)
            with pytest.raises(SsmUnavailable) as creating:
                api.create("accounts", {"name": "A", "extId": "X:1"})
    assert "after 3 attempt(s)" in str(listing.value)
    assert len(server.answered("/api/v4/accounts/1")) == 3  # a read is retried
    assert len(server.answered("/api/v4/accounts")) == 1  # a create is not
    assert creating.value.may_have_acted and not listing.value.may_have_acted


def huge_message(connection: Connection, status: int = 400) -> None:
    connection.json(status, {"Message": "Missing required field 'name' " + "x" * (5 * MB)})


def test_a_5_mb_error_text_is_cut_to_a_few_kb() -> None:
    with HostileServer(lambda r, c: huge_message(c)) as server, client(server) as api:
        with pytest.raises(SsmRefused) as caught:
            api.update("accounts", 7, {"name": ""})
    said = str(caught.value)
    assert said.startswith("PUT /accounts/7 refused (HTTP 400): Missing required field 'name'")
    assert len(said) < 2 * MAX_ERROR_TEXT
    assert said.endswith(f"({5 * MB + 30 - MAX_ERROR_TEXT} characters cut)")
    assert caught.value.answer is not None and len(caught.value.answer) < MAX_ERROR_TEXT + 50


def test_a_5_mb_bulk_item_text_is_cut_to_a_few_kb() -> None:
    def answer(request: Request, connection: Connection) -> None:
        items = request.json()
        text = "Missing required field 'name' " + "y" * (5 * MB)
        connection.json(200, [{"guid": i["guid"], "Message": text} for i in items])

    with HostileServer(answer) as server, client(server) as api:
        results = api.bulk_create("accounts", [{"name": "", "extId": "X:1"}])
    error = results[0].error
    assert isinstance(error, SsmRefused)
    assert "Missing required field 'name'" in str(error)
    assert len(str(error)) < 2 * MAX_ERROR_TEXT


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with store.session() as s:
        s.add(Dossier(id="a", name="A", created_at=utcnow()))
    yield store
    store.dispose()


def test_the_journal_bounds_what_any_plugin_gives_it(store: StateStore) -> None:
    """A cause of 5 MB from any plugin: the incident, its detail and the event keep at
    most ``MAX_TEXT`` characters and say how many were cut."""
    huge = "refused: " + "z" * (5 * MB)
    with store.session() as s:
        run = start_run(s, "a", "clients", "sage_to_ssm", "manual", False)
        for _ in range(3):
            open_incident(
                s,
                "a",
                entity="clients",
                record_key="C1",
                direction="sage_to_ssm",
                kind="refused_by_ssm",
                message=huge,
                detail={"kind": "refused_by_ssm", "reason": huge, "params": {"n": 1}},
            )
        add_event(s, run, "C1", "failed", huge)
    with store.session() as s:
        incident = s.scalars(select(Incident)).one()
        event = s.scalars(select(Event)).one()
        assert incident.occurrences == 3
        for text in (incident.message, incident.detail["reason"], event.detail):
            assert text.startswith("refused: zzz") and len(text) < MAX_TEXT + 50
            assert text.endswith(f"({len(huge) - MAX_TEXT} characters cut)")
        assert incident.detail["params"] == {"n": 1}


@pytest.mark.ssm_refusals
def test_a_sync_answered_5_mb_error_texts_stores_a_few_kb_per_incident(
    workspace: Workspace,
) -> None:
    """Every account refused with a 5 MB text (five a bulk call, 25 MB an answer): the
    sync reports them, and the incidents (``incidents --json``) and the state store stay
    small."""

    def refuse(method: str, items: list[dict[str, Any]], forward: Any) -> list[dict[str, Any]]:
        text = "Missing required field 'name' " + "w" * (5 * MB)
        return [{"guid": i["guid"], "statusCode": 400, "Message": text} for i in items]

    with BulkProxy(workspace.simulator.url, refuse) as proxy:
        workspace.sync_settings["batch_size"] = 5
        workspace.add_dossier("nord", clients=10, seed=1)
        text = workspace.config_path.read_text(encoding="utf-8")
        workspace.config_path.write_text(text.replace(workspace.simulator.url, proxy.url))
        workspace.cli("dossiers", "activate", "nord")
        workspace.cli("sync", "--json", expect=1)
        incidents = workspace.cli("incidents", "--json").stdout
    assert len(json.loads(incidents)) == 10
    assert len(incidents) < 10 * 6 * MAX_ERROR_TEXT
    assert (workspace.root / "state.db").stat().st_size < 2 * MB


CONFIG = """
[implementation]
name = "Acme group"
api_url = "{url}"
public_key = "pub-key"
private_key = "priv-key"
timeout_seconds = 3
{bounds}
[dossiers.acme]
name = "Acme"
connection = "DRIVER={{SQLite3}};Database=/srv/acme.db"
"""


def test_the_bounds_are_read_from_the_implementation_configuration(tmp_path: Path) -> None:
    """``request_deadline_seconds`` and ``max_response_bytes`` reach the client: a page
    over 2 MB and a drip past 1.5 s fail as configured; the defaults are 32 MB and 120 s;
    a cap under 1 MB is refused by the schema."""

    def answer(request: Request, connection: Connection) -> None:
        if request.path.startswith("/api/v4/accounts/1"):
            drip(connection, server)
        else:
            endless_page(connection, 50 * MB, announce=False)

    path = tmp_path / "dossiersync.toml"
    with HostileServer(answer) as server:
        bounds = "max_response_bytes = 2097152\nrequest_deadline_seconds = 1.5\nmax_retries = 0"
        path.write_text(CONFIG.format(url=server.url, bounds=bounds), encoding="utf-8")
        with ssm_client(load(path)) as api:
            with pytest.raises(SsmUnavailable, match="max_response_bytes = 2097152"):
                list(api.list_changed("accounts"))
            with pytest.raises(SsmUnavailable, match=r"request_deadline = 1\.5 s"):
                api.get("accounts", 1)
    path.write_text(CONFIG.format(url=server.url, bounds=""), encoding="utf-8")
    with ssm_client(load(path)) as api:
        assert (api.max_response_bytes, api.request_deadline) == (32 * MB, 120.0)
    path.write_text(CONFIG.format(url=server.url, bounds="max_response_bytes = 1000"))
    with pytest.raises(ConfigError, match="max_response_bytes"):
        load(path)


def test_errors_and_repr_never_show_a_password_written_into_the_api_url() -> None:
    with HostileServer(lambda r, c: drip(c, server)) as server:
        url = server.url.replace("http://", "http://someone:url-password@")
        api = SalesManagementClient(url, "pub-key", "priv-key", request_deadline=0.3, max_retries=0)
        with api, pytest.raises(SsmUnavailable) as caught:
            api.get("accounts", 1)
    for said in (str(caught.value), repr(api)):
        assert "url-password" not in said and "someone" not in said
    assert str(caught.value).startswith(f"GET {server.url}/accounts/1: not answered in full")
