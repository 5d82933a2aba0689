"""The status page and its API, tried as a person on the same host or network would:
connection strings, the token's strength and guessing it, sessions, echoes of what the
request chose (docs/security.md).

The app runs over a state store filled by real syncs (SQLite3 ODBC dossiers, the SSM
simulator), driven through Starlette's test client, or served by uvicorn for what
depends on the network (the client's address).
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from dossiersync.config import load
from dossiersync.errors import ConfigError
from dossiersync.secrets import Secret
from dossiersync.state.models import Incident, Run
from dossiersync.state.store import StateStore
from dossiersync.web import Throttle, create_app, serve_in_thread

from support.workspace import Workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette prefers httpx2 for its test client
    from starlette.testclient import TestClient

TOKEN = "security-suite-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ODBC_USER = "sage-operator"
ODBC_PASSWORD = "odbc-Secret-42"


def configure(workspace: Workspace, web: str = "") -> None:
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n{web}'
    workspace.write_config()


def open_app(workspace: Workspace) -> tuple[StateStore, Starlette]:
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    return store, create_app(config, store)


def every_get(app: Starlette, dossier_id: str) -> list[str]:
    """Every GET route's path, its parameters filled in."""
    values = {"{dossier_id}": dossier_id, "{run_id}": "1", "{incident_id}": "1"}
    out = []
    for route in app.routes:
        if isinstance(route, Route) and "GET" in (route.methods or ()):
            path = route.path
            for name, value in values.items():
                path = path.replace(name, value)
            out.append(path)
        elif isinstance(route, Mount):
            out.append(route.path + "/app.css")
    return out


def wait_for_sync(client: TestClient, dossier_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/dossiers/{dossier_id}/sync").json()["job"]
        if job and not job["running"]:
            return job
        time.sleep(0.05)
    raise AssertionError(f"the sync of {dossier_id} did not end")


# -- connection strings ---------------------------------------------------------------------


def test_no_page_or_api_answer_shows_a_connection_string(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=3, seed=1)
    gone = workspace.add_dossier("dos3", clients=3, seed=3)
    configure(workspace)
    workspace.activate_all()
    gone.unlink()  # its source fails: every message about it names the source
    text = workspace.config_path.read_text(encoding="utf-8")
    text = text.replace(f"Database={gone}", f"Database={gone};UID={ODBC_USER};PWD={ODBC_PASSWORD}")
    workspace.config_path.write_text(text, encoding="utf-8")
    workspace.sync(expect=1)
    # what an earlier version journaled, under an earlier configuration, quoted it whole
    old = "DRIVER={SQLite3};Database=/srv/sage/ancien dossier.db;UID=ancien;PWD=***;NoCreat=1"
    store = StateStore(workspace.state_url)
    now = datetime(2026, 12, 1, 12, 0)
    with store.session() as s:
        said = f"cannot connect to the ODBC data source {old}: refused"
        s.add(Run(dossier_id="dos3", entity="clients", direction="sage_to_ssm",
                  trigger="schedule", started_at=now, finished_at=now, outcome="failed",
                  message=said))  # fmt: skip
        s.add(Incident(dossier_id="dos3", entity=None, kind="run_failed", first_seen=now,
                       last_seen=now, message=said, state="open"))  # fmt: skip
    store.dispose()

    store, app = open_app(workspace)
    client = TestClient(app, headers=BEARER)
    assert client.post("/api/dossiers/dos3/sync").status_code == 202
    job = wait_for_sync(client, "dos3")
    assert job["outcome"] == "failed" and "(driver SQLite3)" in job["message"]

    incidents = client.get("/api/incidents").json()
    paths = every_get(app, "dos3")
    paths += [f"/incidents/{i['incident_id']}" for i in incidents]
    paths += ["/?dossier=dos3", "/journal?dossier=dos3", "/journal.csv?dossier=dos3"]
    paths += ["/incidents?state=all", "/setup", "/api/dossiers"]
    runs = client.get("/api/dossiers/dos3/journal").json()
    paths += [f"/journal/{r['run_id']}?dossier=dos3" for r in runs]
    shown = {path: client.get(path) for path in paths}
    assert shown["/api/dossiers"].status_code == 200
    said = " ".join(a.text for a in shown.values())
    assert "(driver SQLite3)" in said and "cannot connect" in said
    for path, answer in shown.items():
        assert answer.status_code in (200, 404), path
        for never in (str(gone), "ancien", ODBC_USER, ODBC_PASSWORD, "/srv/sage"):
            assert never not in answer.text, (path, never)
        assert not re.search(r"(?i)(driver|database|uid|pwd)\s*=", answer.text), path
    store.dispose()


# -- the token: its strength, and guessing it --------------------------------------------


def serve(workspace: Workspace) -> subprocess.CompletedProcess[str]:
    """``dossiersync serve`` as a user runs it, expected to refuse to start."""
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path)]
    try:
        return subprocess.run(
            [*command, "serve", "--port", "0"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the page was served")


def test_a_short_token_is_refused_at_start_however_it_is_given(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.extra_config = '[web]\ntoken = "env:DOSSIERSYNC_WEB_TOKEN"\n'
    workspace.write_config()
    monkeypatch.setenv("DOSSIERSYNC_WEB_TOKEN", "a")
    served = serve(workspace)
    assert served.returncode == 2, served.stderr
    said = served.stderr
    assert "web.token" in said and "env:DOSSIERSYNC_WEB_TOKEN" in said and "32" in said
    assert "has 1 characters" in said
    assert not (workspace.root / "state.db").exists()  # refused before anything was made

    token_file = workspace.root / "web-token"
    token_file.write_text("x" * 31 + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    configure_token = f'[web]\ntoken = "file:{token_file}"\n'
    workspace.extra_config = configure_token
    workspace.write_config()
    with pytest.raises(ConfigError, match=r"web\.token: the token read from file:.* has 31"):
        load(workspace.config_path)

    # a host process giving its own token is held to the same rule
    monkeypatch.setenv("DOSSIERSYNC_WEB_TOKEN", TOKEN)
    workspace.extra_config = '[web]\ntoken = "env:DOSSIERSYNC_WEB_TOKEN"\n'
    workspace.write_config()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    with pytest.raises(ConfigError, match="fewer than 32 characters"):
        create_app(config, store, token=Secret("a" * 31))
    app = create_app(config, store)
    assert TestClient(app, headers=BEARER).get("/api/status").status_code == 200
    assert TestClient(app, headers={"Authorization": "Bearer a"}).get("/").status_code == 401
    store.dispose()


def test_wrong_tokens_are_throttled_per_address_and_the_right_one_opens_after(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    app = create_app(config, store, throttle=Throttle(allowed=3, window=60, first_wait=1))
    here = ("192.0.2.7", 40000)
    attacker = TestClient(app, client=here, follow_redirects=False)
    browser = TestClient(app, client=here, follow_redirects=False)
    assert browser.get(f"/?token={TOKEN}").status_code == 303  # a session opened before
    neighbour = TestClient(app, client=("192.0.2.8", 40000), headers=BEARER)
    wrong = {"Authorization": "Bearer " + "w" * 40}

    assert [attacker.get("/api/status", headers=wrong).status_code for _ in range(3)] == [401] * 3
    # the address waits: even the right token is not looked at, on the API as on the page
    refused = attacker.get("/api/status", headers=BEARER)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "too many attempts"
    page = attacker.get(f"/?token={TOKEN}")
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "set-cookie" not in page.headers
    assert neighbour.get("/api/status").status_code == 200  # another address: not slowed
    assert browser.get("/api/status").status_code == 200  # an open session goes on

    time.sleep(1.1)
    assert attacker.get("/api/status", headers=wrong).status_code == 401
    again = attacker.get("/api/status", headers=wrong)
    assert again.status_code == 429 and again.headers["retry-after"] == "2"  # it grows

    time.sleep(2.1)
    assert attacker.get("/api/status", headers=BEARER).status_code == 200  # a success opens
    # and forgets: the allowance starts again
    assert [attacker.get("/api/status", headers=wrong).status_code for _ in range(3)] == [401] * 3
    assert attacker.get("/api/status", headers=wrong).status_code == 429
    store.dispose()


def test_a_forwarding_header_does_not_escape_the_throttle(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    with serve_in_thread(config, store, port=0) as server:
        url = server.url + "api/status"
        codes = [
            httpx.get(
                url, headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.9.8.{n}"}
            ).status_code
            for n in range(12)
        ]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        # the connection's own address counts: another one of this machine is not slowed
        elsewhere = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with elsewhere:
            assert elsewhere.get(url, headers=BEARER).status_code == 200
    store.dispose()


# -- sessions ------------------------------------------------------------------------------


def signed_in(app: Starlette) -> TestClient:
    """A browser: the page opened with ?token= once, then its session cookie."""
    client = TestClient(app, follow_redirects=False)
    answer = client.get(f"/?token={TOKEN}")
    assert answer.status_code == 303
    return client


def with_cookie_of(app: Starlette, client: TestClient) -> TestClient:
    """Another client holding a copy of ``client``'s session cookie (a stolen one)."""
    copy = TestClient(app, follow_redirects=False)
    copy.cookies.set("dossiersync_session", client.cookies["dossiersync_session"])
    return copy


def test_sign_out_ends_the_session_on_the_server(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    store, app = open_app(workspace)
    browser = signed_in(app)
    stolen = with_cookie_of(app, browser)
    assert stolen.get("/api/status").status_code == 200
    csrf = browser.get("/api/session").json()["csrf_token"]
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    # the cookie's copy opens nothing any more, on the page or the API
    assert stolen.get("/api/status").status_code == 401
    assert stolen.get("/").status_code == 401
    # nor does one of the process before (its sessions ended with it)
    other = signed_in(app)
    _, restarted = open_app(workspace)
    assert with_cookie_of(restarted, other).get("/api/status").status_code == 401
    store.dispose()


def test_a_session_ends_when_idle_and_after_its_longest_life(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace, "session_idle_minutes = 0.02\nsession_max_hours = 1\n")  # 1.2 s
    workspace.activate_all()
    store, app = open_app(workspace)
    browser = signed_in(app)
    assert "max-age=3600" in browser.get(f"/?token={TOKEN}").headers["set-cookie"].lower()
    for _ in range(4):  # used every half second: it stays open past the idle limit
        time.sleep(0.5)
        assert browser.get("/api/status").status_code == 200
    time.sleep(1.5)
    assert browser.get("/api/status").status_code == 401
    assert browser.get("/").status_code == 401  # the page asks for the token again

    configure(workspace, "session_idle_minutes = 1\nsession_max_hours = 0.0005\n")  # 1.8 s
    store.dispose()
    store, app = open_app(workspace)
    # a copy of the cookie, kept past its Max-Age: the server ends the session itself
    stolen = with_cookie_of(app, signed_in(app))
    opened = time.monotonic()
    codes = []
    while time.monotonic() - opened < 3:
        codes.append((time.monotonic() - opened, stolen.get("/api/status").status_code))
        time.sleep(0.3)
    assert all(code == 200 for at, code in codes if at < 1.6), codes
    assert all(code == 401 for at, code in codes if at > 2.0), codes
    store.dispose()


# -- echoes ----------------------------------------------------------------------------------


def test_what_the_request_chose_is_echoed_cut_short(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    store, app = open_app(workspace)
    api = TestClient(app, headers=BEARER)
    chosen = "Z" * 60_000  # near the longest address httpx sends
    for path in (f"/api/dossiers/{chosen}/journal", f"/api/status?dossier={chosen[:150]}"):
        answer = api.get(path)
        assert answer.status_code == 404, path
        assert len(answer.content) < 300 and "Z" * 41 not in answer.text, path
        assert answer.json()["detail"].startswith("no dossier ZZZ")
    refused = api.post(f"/api/dossiers/nord/preview?entity={chosen}")
    assert refused.status_code == 400 and len(refused.content) < 300
    bad_entities = "&".join(f"entity=e{n}{'Y' * 30}" for n in range(50))
    refused = api.post(f"/api/dossiers/nord/sync?{bad_entities}")
    assert refused.status_code == 400 and len(refused.content) < 300
    # the sign-in form does not send a long address back either
    anonymous = TestClient(app).get("/" + chosen)
    assert anonymous.status_code == 401 and "Z" * 201 not in anonymous.text
    store.dispose()


def test_a_notice_in_the_address_says_only_what_the_page_itself_would(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    store, app = open_app(workspace)
    page = TestClient(app, headers=BEARER)
    lure = "Call 01 23 45 67 89 to restore your account"
    for notice in (
        f"sync.busy|{lure}",
        f"sync.started|nord,{lure}",
        f"setup.activated|nord,{lure}",
        f"setup.deactivated|{'x' * 150}",
        f"no.such.notice|{lure}",
        "sync.busy|",
    ):
        shown = page.get("/", params={"notice": notice})
        assert shown.status_code == 200, notice
        assert lure not in shown.text and "x" * 150 not in shown.text, notice
        assert 'class="notice' not in shown.text and 'class="error' not in shown.text, notice
    # the notices the page's own redirects carry are still said
    assert "nord is already being synced." in page.get("/?notice=sync.busy|nord").text
    assert "Activated: nord." in page.get("/setup?notice=setup.activated|nord").text
    assert "Nothing changed." in page.get("/setup?notice=setup.unchanged|").text
    store.dispose()


def test_serve_with_a_bad_address_makes_nothing_before_refusing(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    for bind in ("256.1.1.1", "not an address", "-bad-.example"):
        workspace.extra_config = f'[web]\nbind = "{bind}"\n'  # no token: one would be made
        workspace.write_config()
        served = serve(workspace)
        assert served.returncode == 2, (bind, served.stderr)
        assert "web.bind" in served.stderr and bind in served.stderr
        made = sorted(p.name for p in workspace.root.iterdir())
        assert made == ["dossiersync.toml", "nord.db"], (bind, made)


def test_serve_on_a_busy_port_or_a_bad_bind_option_makes_nothing(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path)]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = str(busy.getsockname()[1])
        for options in (["--port", taken], ["--bind", "256.1.1.1", "--port", "0"]):
            served = subprocess.run(
                [*command, "serve", *options], capture_output=True, text=True, timeout=60
            )
            assert served.returncode == 2, (options, served.stderr)
            assert "cannot serve the status page" in served.stderr
            made = sorted(p.name for p in workspace.root.iterdir())
            assert made == ["dossiersync.toml", "nord.db"], (options, made)


# -- what held already: kept so by these --------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


def test_sage_text_and_dossier_names_are_shown_as_text(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = ?, CT_Intitule = ? WHERE CT_Num = 'CL00002'",
        (f"x{SCRIPT}@", SCRIPT),
    )
    configure(workspace)
    text = workspace.config_path.read_text(encoding="utf-8")
    text = text.replace('name = "Dossier nord"', f'name = "{SCRIPT}"')
    workspace.config_path.write_text(text, encoding="utf-8")
    workspace.activate_all()
    workspace.sync(expect=1)  # the client's address is refused: an incident quotes it
    store, app = open_app(workspace)
    client = TestClient(app, headers=BEARER)
    incidents = client.get("/api/incidents").json()
    assert any(SCRIPT in str(i["message"]) for i in incidents)  # the data, as it is
    runs = client.get("/api/dossiers/nord/journal").json()
    pages = [p for p in every_get(app, "nord") if not p.startswith(("/api/", "/static/"))]
    pages += ["/?dossier=nord", "/incidents?dossier=nord&state=all", "/setup"]
    pages += [f"/incidents/{i['incident_id']}" for i in incidents]
    pages += [f"/journal/{r['run_id']}?dossier=nord" for r in runs]
    escaped = 0
    for path in pages:
        page = client.get(path)
        assert page.status_code in (200, 404), path
        assert "<script>alert" not in page.text, path
        escaped += "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert escaped >= 5
    store.dispose()


def test_other_sites_can_neither_read_nor_post(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    store, app = open_app(workspace)
    evil = {"Origin": "http://evil.example"}
    api = TestClient(app, headers={**BEARER, **evil}, follow_redirects=False)
    anonymous = TestClient(app, headers=evil, follow_redirects=False)
    answers = [api.get(path) for path in every_get(app, "nord")]
    answers += [anonymous.get("/"), anonymous.get("/api/status"), api.get("/no/such")]
    answers.append(
        anonymous.options("/api/status", headers={"Access-Control-Request-Method": "POST"})
    )
    for answer in answers:
        assert not any(h.startswith("access-control-") for h in answer.headers), answer.url
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"

    # every state change posted under a browser session needs the session's CSRF token
    browser = signed_in(app)
    posts = [
        route.path.replace("{dossier_id}", "nord").replace("{incident_id}", "1")
        for route in app.routes
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]
    assert len(posts) >= 9
    for path in posts:
        for refused in (
            browser.post(path, data={"shown": "nord", "confirm": "yes"}, headers=evil),
            browser.post(path, data={"csrf_token": "forged"}, headers={"X-CSRF-Token": "x"}),
        ):
            assert refused.status_code in (403, 404), (path, refused.status_code)
    assert workspace.cli_json("dossiers", "list")[0]["state"] == "active"
    assert browser.get("/api/dossiers/nord/sync").json() == {"job": None}  # none started
    assert browser.get("/api/status").status_code == 200  # and the session still open
    store.dispose()


def test_the_journal_csv_of_the_page_runs_no_formula(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    configure(workspace)
    workspace.activate_all()
    store = StateStore(workspace.state_url)
    now = datetime(2026, 12, 1, 12, 0)
    formulas = ["=1+cmd|'/C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    with store.session() as s:
        for formula in formulas:
            s.add(Run(dossier_id="nord", entity=formula, direction="sage_to_ssm",
                      trigger="schedule", started_at=now, finished_at=now, outcome="failed",
                      message=formula))  # fmt: skip
    store.dispose()
    store, app = open_app(workspace)
    client = signed_in(app)
    for path in ("/journal.csv?dossier=nord", "/api/dossiers/nord/journal.csv"):
        rows = list(csv.reader(io.StringIO(client.get(path).content.decode("utf-8-sig"))))
        cells = [cell for row in rows[1:] for cell in row]
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
        assert sum(cell == "'" + f for cell in cells for f in formulas) == 2 * len(formulas)
    store.dispose()
