"""The status page and its API, tried as a person on the same host or network would:
connection strings, the token's strength and guessing it, sessions, echoes of what the
request chose (docs/security.md).

The app runs over a state store filled by real syncs (SQLite3 ODBC dossiers, the SSM
simulator), driven through Starlette's test client, or served by uvicorn for what
depends on the network (the client's address).
"""

from __future__ import annotations

import re
import time
import warnings
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from dossiersync.config import load
from dossiersync.state.models import Incident, Run
from dossiersync.state.store import StateStore
from dossiersync.web import create_app

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
