"""The status page's HTTP side: access, the JSON API against the CLI, CSRF, export, secrets.

A real state store filled by real syncs (SQLite3 ODBC dossiers, the SSM simulator),
the app driven through Starlette's test client; schemathesis fuzzes the OpenAPI
document's operations in-process.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from dossiersync.config import Config, load
from dossiersync.journal import start_run
from dossiersync.lease import acquire, release
from dossiersync.plugins.sales_management.simulator.process import running_simulator
from dossiersync.state.store import StateStore
from dossiersync.web import access_token, create_app, serve_in_thread, token_path
from dossiersync.web.api import ROUTES
from dossiersync.web.openapi import document

from support.workspace import Workspace

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "web-token-for-tests-0123456789abcdef"
ODBC_PASSWORD = "odbc-Secret-42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def with_odbc_password(workspace: Workspace) -> None:
    """Give every dossier's connection string a password (the SQLite driver ignores it)."""
    text = workspace.config_path.read_text(encoding="utf-8")
    text = re.sub(r'(Database=[^"]+)"', rf'\1;PWD={ODBC_PASSWORD}"', text)
    workspace.config_path.write_text(text, encoding="utf-8")


def build_group(workspace: Workspace) -> None:
    """Three dossiers synced, one invalid client in nord, one unreachable dossier (est)."""
    workspace.add_dossier("nord", clients=12, seed=1)
    workspace.add_dossier("sud", clients=8, seed=2)
    workspace.add_dossier("ouest", clients=6, seed=3)
    workspace.add_dossier("est", clients=3, seed=4)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00006'"
    )
    workspace.activate_all()
    workspace.dossiers["est"]["path"] = workspace.root / "missing" / "est.db"
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    with_odbc_password(workspace)
    workspace.sync(expect=1)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One synced dossier group shared by the read-only tests of this module."""
    root = tmp_path_factory.mktemp("web-group")
    with running_simulator(str(root / "ssm.sqlite")) as simulator:
        env = pytest.MonkeyPatch()
        env.setenv("SSM_PUBLIC_KEY", simulator.public_key)
        env.setenv("SSM_PRIVATE_KEY", simulator.private_key)
        workspace = Workspace(root, simulator)
        build_group(workspace)
        yield workspace
        env.undo()


def open_app(workspace: Workspace) -> tuple[Config, StateStore, Starlette]:
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    return config, store, create_app(config, store)


@pytest.fixture(scope="module")
def app(group: Workspace) -> Starlette:
    return open_app(group)[2]


@pytest.fixture
def api(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, headers=BEARER) as client:
        yield client


def browser(app: Starlette) -> TestClient:
    """A client that logs in as a browser does: ?token= once, then the session cookie."""
    client = TestClient(app, follow_redirects=False)
    answer = client.get(f"/?token={TOKEN}")
    assert answer.status_code == 303
    return client


def csrf_of(client: TestClient) -> str:
    token = client.get("/api/session").json()["csrf_token"]
    assert token
    return str(token)


def every_route(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route, path parameters filled in."""
    out = []
    values = {"{dossier_id}": "nord", "{run_id}": "1", "{incident_id}": "1"}
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(("GET", route.path + "/app.css"))
            continue
        assert isinstance(route, Route)
        path = route.path
        for name, value in values.items():
            path = path.replace(name, value)
        out.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return out


def states(workspace: Workspace) -> dict[str, str]:
    return {d["id"]: d["state"] for d in workspace.cli_json("dossiers", "list")}


def wait_for_sync(client: TestClient, dossier_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/dossiers/{dossier_id}/sync").json()["job"]
        if job and not job["running"]:
            return job
        time.sleep(0.05)
    raise AssertionError(f"the sync of {dossier_id} did not end")


# -- access ----------------------------------------------------------------------------------


def test_every_route_answers_401_without_the_token(app: Starlette, group: Workspace) -> None:
    routes = every_route(app)
    assert len(routes) > 20
    anonymous = TestClient(app, follow_redirects=False)
    for n, (method, path) in enumerate(
        [*routes, ("GET", "/no/such/page"), ("GET", "/api/no/such")]
    ):
        # each wrong token from an address of its own: ten from one are answered 429
        # (tests/security/test_web.py)
        wrong = TestClient(
            app, headers={"Authorization": "Bearer not-the-token"}, client=(f"192.0.2.{n}", 1)
        )
        for client in (anonymous, wrong):
            answer = client.request(method, path)
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    guesser = TestClient(app, follow_redirects=False, client=("198.51.100.1", 1))
    assert guesser.get(f"/?token={TOKEN}x").status_code == 401
    assert guesser.get(f"/api/status?token={TOKEN}").status_code == 401
    anonymous.cookies.set("dossiersync_session", "forged.0000")
    assert anonymous.get("/").status_code == 401
    assert states(group)["nord"] == "active"  # the refused POSTs changed nothing


def test_token_in_the_address_logs_a_browser_in(app: Starlette) -> None:
    client = TestClient(app, follow_redirects=False)
    answer = client.get(f"/journal?token={TOKEN}&dossier=nord")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/journal?dossier=nord"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert TOKEN not in answer.headers["set-cookie"]
    page = client.get("/journal?dossier=nord")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/api/session").json()["authenticated_by"] == "cookie"


def test_generated_token_is_kept_owner_only_and_printed_once(group: Workspace) -> None:
    config_path = group.root / "no-token.toml"
    text = group.config_path.read_text(encoding="utf-8").split("[web]")[0]
    config_path.write_text(text, encoding="utf-8")
    config = load(config_path)
    first = access_token(config)
    assert first.created and first.path == token_path(config)
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = access_token(config)
    assert not again.created and again.secret == first.secret

    # the command prints the token only when it makes it
    first.path.unlink()
    lines = [serve_first_line(group, config_path) for _ in range(2)]
    token = token_path(config).read_text(encoding="utf-8").strip()
    assert f"?token={token}" in lines[0]
    assert token not in lines[1] and str(token_path(config)) in lines[1]


def serve_first_line(workspace: Workspace, config_path: Path) -> str:
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(config_path), "serve"]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url, line
        answer = httpx.get(
            f"{url.group(0)}api/status", headers={"Authorization": "Bearer wrong-token"}
        )
        assert answer.status_code == 401
        return line
    finally:
        process.terminate()
        process.wait(10)


def test_serve_in_thread_serves_until_stopped(group: Workspace) -> None:
    config = load(group.config_path)
    store = StateStore(config.state_url)
    server = serve_in_thread(config, store, port=0)
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "api/status", headers=BEARER).status_code == 200
        assert httpx.get(server.url + "api/status").status_code == 401
        assert not any(TOKEN in line for line in server.announcement())
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "api/status", headers=BEARER, timeout=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cli(workspace: Workspace, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A ``dossiersync`` command serving the page, and the page's address it printed."""
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path)]
    process = subprocess.Popen(
        [*command, *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found:
            return process, found.group(0)
    process.kill()
    raise AssertionError(f"{args} printed no address")


def stop_cli(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


def next_run_of(url: str) -> tuple[str, str, str]:
    """(data-scheduled-here, data-next-run, text) of nord's next scheduled run."""
    page = httpx.get(f"{url}?dossier=nord", headers=BEARER).text
    found = re.search(
        r'<dd data-next-run="([^"]*)" data-scheduled-here="(yes|no)">(.*?)</dd>', page, re.S
    )
    assert found, page
    return found.group(2), found.group(1), " ".join(found.group(3).split())


def test_serve_ends_on_a_sigterm_sent_as_soon_as_it_says_its_address(
    workspace: Workspace,
) -> None:
    """A supervisor or a script may stop the page the moment it is announced, before the
    server has taken the signals: the command ends all the same, with status 0."""
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    for _attempt in range(3):
        process, _url = start_cli(workspace, "serve", "--port", "0")
        stop_cli(process)  # at once
        assert process.returncode == 0


def test_page_served_alone_shows_no_next_scheduled_run(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\nport = {free_port()}\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()

    # dossiersync serve: nothing in this process syncs on a schedule, and the page says so
    process, url = start_cli(workspace, "serve")
    try:
        here, next_run, text = next_run_of(url)
        assert (here, next_run) == ("no", "")
        assert "no schedule runs in this process" in text
        assert httpx.get(f"{url}api/schedule", headers=BEARER).json()[0]["scheduled_here"] is False
        french = httpx.get(f"{url}?dossier=nord", headers={**BEARER, "Accept-Language": "fr"})
        assert "aucune planification ne tourne dans ce processus" in french.text
    finally:
        stop_cli(process)

    # dossiersync run: the service's schedule runs beside the page, which shows its next run
    process, url = start_cli(workspace, "run")
    try:
        here, next_run, text = next_run_of(url)
        assert here == "yes" and next_run and next_run[:10] in text
        assert "no schedule runs" not in text
        assert httpx.get(f"{url}api/schedule", headers=BEARER).json()[0]["scheduled_here"] is True
    finally:
        stop_cli(process)


# -- the same data as the CLI -----------------------------------------------------------


def test_api_answers_match_the_cli_json(api: TestClient, group: Workspace) -> None:
    assert api.get("/api/status").json() == group.cli_json("status")
    nord = api.get("/api/status?dossier=nord").json()
    assert nord == group.cli_json("status", "--dossier", "nord")
    assert nord[0]["entities"][0]["records"]["synced"] == 11
    assert nord[0]["entities"][0]["records"]["error"] == 1  # the invalid client
    # est is unreachable: discover says so, and exits 1
    assert api.get("/api/dossiers").json() == group.cli_json("dossiers", "discover", expect=1)

    journal = api.get("/api/dossiers/nord/journal").json()
    assert journal == group.cli_json("journal", "--dossier", "nord")
    run = journal[-1]
    assert api.get(f"/api/dossiers/nord/runs/{run['run_id']}").json() == run
    events = api.get(f"/api/dossiers/nord/runs/{run['run_id']}/events").json()
    assert events == group.cli_json("journal", "--dossier", "nord", "--run", str(run["run_id"]))
    assert {e["action"] for e in events} == {"created", "failed"}
    assert api.get(f"/api/dossiers/sud/runs/{run['run_id']}").status_code == 404

    assert api.get("/api/incidents?dossier=nord&state=open").json() == group.cli_json(
        "incidents", "--dossier", "nord", "--open"
    )
    assert api.get("/api/incidents").json() == group.cli_json("incidents")
    records = api.get("/api/dossiers/sud/records").json()
    assert records == group.cli_json("records", "--dossier", "sud")
    assert len(records) == 8


def test_api_filters_and_pages(api: TestClient) -> None:
    first, second = (
        api.get(f"/api/dossiers/nord/journal?limit=1&offset={n}").json() for n in (0, 1)
    )
    assert len(first) == len(second) == 1 and first[0]["run_id"] > second[0]["run_id"]
    kinds = {i["kind"] for i in api.get("/api/incidents?state=open").json()}
    assert kinds == {"invalid_record", "run_failed"}
    run_failed = api.get("/api/incidents?kind=run_failed").json()
    assert {i["dossier_id"] for i in run_failed} == {"est"}
    assert api.get("/api/incidents?state=resolved&dossier=nord").json() == []
    assert api.get("/api/incidents?entity=products").json() == []
    schedule = {s["dossier_id"]: s for s in api.get("/api/schedule").json()}
    assert schedule["nord"]["next_run_at"] > schedule["nord"]["last_started_at"]
    assert (
        schedule["nord"]["interval_seconds"] == 3600
    )  # the complete pass; changes in between come through the probes
    for bad in ("limit=0", "limit=x", "offset=-1", "since=yesterday"):
        answer = api.get(f"/api/dossiers/nord/journal?{bad}")
        assert answer.status_code == 400, bad
        assert answer.json()["error"] == "bad parameter"
    assert api.get("/api/status?dossier=nowhere").status_code == 404
    assert api.get("/api/incidents/99999").status_code == 404


def test_page_shows_the_cli_counts_in_the_chosen_language(app: Starlette, group: Workspace) -> None:
    client = TestClient(app, headers={**BEARER, "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    page = client.get("/?dossier=nord").text
    assert "État de synchronisation" in page and "Groupe de dossiers" in page
    records = group.cli_json("status", "--dossier", "nord")[0]["entities"][0]["records"]
    for label, count in records.items():
        assert f'data-label="{label}">{count}<' in page, label
    assert 'data-dossier="sud"' not in page  # only the chosen dossier
    english = TestClient(app, headers={**BEARER, "Accept-Language": "en-GB"}).get("/").text
    assert "Sync status" in english
    for dossier_id in ("nord", "sud", "ouest", "est"):
        assert f'<option value="{dossier_id}"' in english


def test_journal_exports_as_csv(app: Starlette, group: Workspace) -> None:
    client = browser(app)
    answer = client.get("/journal.csv?dossier=nord")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="journal-nord.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    journal = group.cli_json("journal", "--dossier", "nord")
    assert [int(r["run_id"]) for r in rows] == [r["run_id"] for r in journal]
    assert [int(r["created"]) for r in rows] == [r["counts"]["created"] for r in journal]
    api_csv = client.get("/api/dossiers/nord/journal.csv").content
    assert api_csv == answer.content


def test_no_secret_on_any_page_or_api_answer(app: Starlette, group: Workspace) -> None:
    client = browser(app)
    secrets = [TOKEN, ODBC_PASSWORD, group.simulator.private_key, group.simulator.public_key]
    incidents = client.get("/api/incidents").json()
    run_failed = next(i for i in incidents if i["kind"] == "run_failed")
    # the source named by its driver, never by its connection string (docs/security.md)
    assert "(driver SQLite3)" in run_failed["message"]
    assert "Database=" not in run_failed["message"]
    paths = [path for method, path in every_route(app) if method == "GET"]
    paths += [f"/incidents/{i['incident_id']}" for i in incidents]
    paths += ["/?dossier=est", "/journal?dossier=est", "/incidents?state=all", "/api/session"]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code in (200, 404), path
        for secret in secrets:
            assert secret not in answer.text, (path, secret)
            assert secret not in str(answer.headers), (path, secret)


# -- state changes ---------------------------------------------------------------------------


def test_deactivation_needs_the_csrf_token_and_a_confirmation(
    app: Starlette, group: Workspace
) -> None:
    client = browser(app)
    csrf = csrf_of(client)

    # wrong or missing CSRF token: 403, and nothing changes
    wrong = client.post("/api/dossiers/ouest/deactivate", headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert client.post("/api/dossiers/ouest/deactivate").status_code == 403
    form = {"shown": ["nord", "sud", "ouest"], "active": ["nord", "sud"], "confirm": "yes"}
    assert client.post("/setup", data={**form, "csrf_token": "nope"}).status_code == 403
    assert client.post("/setup", data=form).status_code == 403
    assert states(group)["ouest"] == "active"

    # unticking asks first, saying the data stays in Sales Management
    ask = client.post("/setup", data={**form, "confirm": "", "csrf_token": csrf})
    assert ask.status_code == 200 and "stays in Sales Management" in ask.text
    assert 'data-dossier="ouest"' in ask.text
    assert states(group)["ouest"] == "active"

    done = client.post("/setup", data={**form, "csrf_token": csrf})
    assert done.status_code == 303
    assert states(group)["ouest"] == "inactive"
    assert states(group)["nord"] == "active"
    assert "Deactivated: ouest" in client.get(done.headers["location"]).text

    # the API, with a cookie session and its token, or with the bearer token
    again = client.post("/api/dossiers/ouest/activate", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 200 and again.json()["state"] == "active"
    assert states(group)["ouest"] == "active"
    with TestClient(app, headers=BEARER) as api:
        assert api.post("/api/dossiers/ouest/deactivate").json()["state"] == "inactive"
        assert api.post("/api/dossiers/ouest/activate").json()["state"] == "active"
        assert api.post("/api/dossiers/nowhere/activate").status_code == 404


def test_sync_now_runs_in_the_background_one_at_a_time(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    config, store, app = open_app(workspace)
    api = TestClient(app, headers=BEARER)
    assert api.get("/api/dossiers/nord/sync").json() == {"job": None}

    # another process holds the dossier's lease: refused, naming it
    holder = acquire(store, "nord", 60, holder="elsewhere:4242")
    busy = api.post("/api/dossiers/nord/sync")
    assert busy.status_code == 409 and "elsewhere:4242" in busy.json()["detail"]
    release(store, "nord", holder)

    # the host process syncing it on schedule: refused too
    with app.state.site.jobs.claim("nord"):
        assert api.post("/api/dossiers/nord/sync").status_code == 409

    started = api.post("/api/dossiers/nord/sync")
    assert started.status_code == 202
    job = wait_for_sync(api, "nord")
    assert job["ok"] is True
    assert {r["direction"] for r in job["runs"]} == {"sage_to_ssm", "ssm_to_sage"}
    assert len(workspace.accounts("nord")) == 5
    status = workspace.cli_json("status", "--dossier", "nord")[0]
    assert status["entities"][0]["records"]["synced"] == 5


def job_line(page: str) -> tuple[str, str]:
    """(data-job-outcome, text) of the page's line about the latest sync it started."""
    found = re.search(
        r'<dd data-job="finished"[^>]*data-job-outcome="(\w+)"[^>]*>(.*?)</dd>', page, re.S
    )
    assert found, page
    return found.group(1), " ".join(re.sub(r"<[^>]+>", " ", found.group(2)).split())


def test_a_finished_sync_now_shows_its_outcome(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    config, store, app = open_app(workspace)
    client = browser(app)

    def sync_now() -> tuple[dict[str, Any], str]:
        answer = client.post("/dossiers/nord/sync", data={"csrf_token": csrf_of(client)})
        assert answer.status_code == 303
        job = wait_for_sync(client, "nord")
        return job, client.get("/?dossier=nord").text

    job, page = sync_now()
    assert job["outcome"] == "succeeded" and job["synced"] == 5
    outcome, text = job_line(page)
    assert outcome == "succeeded" and "succeeded 5 record(s) created, updated or deleted." in text

    # an invalid client: partial, saying how many records were not synced
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'",
    )
    job, page = sync_now()
    assert job["outcome"] == "partial" and job["not_synced"] == 1
    outcome, text = job_line(page)
    assert outcome == "partial" and "1 record(s) not synced: see the incidents" in text
    assert 'data-not-synced="1"' in page

    # the dossier cannot be opened: failed, with the reason
    workspace.dossiers["nord"]["path"].rename(workspace.root / "elsewhere.db")
    job, page = sync_now()
    assert job["outcome"] == "failed" and job["message"]
    outcome, text = job_line(page)
    assert outcome == "failed" and job["message"][:40] in html.unescape(text)
    french = TestClient(app, headers={**BEARER, "Accept-Language": "fr"}).get("/?dossier=nord")
    assert "échec" in job_line(french.text)[1]


def test_retry_now_resyncs_the_record_and_closes_its_incident(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00003'"
    )
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync(expect=1)
    config, store, app = open_app(workspace)
    client = browser(app)
    (incident,) = client.get("/api/incidents?state=open").json()
    assert incident["record_key"] == "CL00003"
    page = client.get(f"/incidents/{incident['incident_id']}").text
    assert "pas-une-adresse" in page or "email" in page
    assert 'id="retry"' in page

    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'contact@exemple.fr', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00003'",
    )
    refused = client.post(f"/incidents/{incident['incident_id']}/retry", data={"csrf_token": "x"})
    assert refused.status_code == 403
    answer = client.post(
        f"/incidents/{incident['incident_id']}/retry", data={"csrf_token": csrf_of(client)}
    )
    assert answer.status_code == 303
    job = wait_for_sync(client, "nord")
    assert job["reason"] == "retry" and job["entities"] == ["clients"]
    assert workspace.cli_json("incidents", "--dossier", "nord", "--open") == []
    assert workspace.account("nord:CL00003")["email"] == "contact@exemple.fr"


def test_a_run_in_progress_shows_as_running_while_its_lease_is_held(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=4, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()
    config, store, app = open_app(workspace)
    holder = acquire(store, "nord", 60, holder="elsewhere:4242")
    with store.session() as s:
        run = start_run(s, "nord", "clients", "sage_to_ssm", "schedule", False)
    api = TestClient(app, headers=BEARER)
    (plan,) = api.get("/api/schedule?dossier=nord").json()
    assert plan["running_runs"] == [run.id] and plan["synced_by"] == "elsewhere:4242"
    page = api.get("/?dossier=nord").text
    assert 'data-outcome="running"' in page and 'data-refresh="3"' in page
    assert "being synced by elsewhere:4242" in page

    release(store, "nord", holder)  # its process went away without ending the run
    (plan,) = api.get("/api/schedule?dossier=nord").json()
    assert plan["running_runs"] == [] and plan["interrupted_runs"] == [run.id]
    page = api.get("/?dossier=nord").text
    assert "interrupted" in page and "data-refresh" not in page


# -- fuzzing -------------------------------------------------------------------------------


def test_openapi_document_describes_every_api_route(app: Starlette) -> None:
    doc = document(ROUTES)
    assert doc["openapi"].startswith("3.")
    served = {
        (method.lower(), path.replace("{", "").replace("}", ""))
        for method, path in (
            (m, r.path) for r in app.routes if isinstance(r, Route) for m in r.methods or ()
        )
        if path.startswith("/api/") and method != "HEAD"
    }
    described = {
        (method, path.replace("{", "").replace("}", ""))
        for path, item in doc["paths"].items()
        for method in item
    }
    assert served == described


def test_fuzzed_api_calls_never_fail_on_the_server(app: Starlette) -> None:
    # reads only: the state-changing operations are tested above, on purpose
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=BEARER).include(
        method="GET"
    )
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()
        if "{dossier_id}" in operation.path:
            # random ids only reach the 404; a real one takes the rest of the request further
            real = operation.as_strategy(path_parameters={"dossier_id": "nord"})
            strategy = st.one_of(real, strategy)

        @given(case=strategy)
        @settings(
            max_examples=15,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=BEARER, checks=checks)

        call()
        tried += 1
    paths = document(ROUTES)["paths"]
    assert tried == len([m for item in paths.values() for m in item if m == "get"])
