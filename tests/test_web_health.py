"""The status page's pictures of each dossier's health, against the journal of real syncs.

Real syncs (SQLite3 ODBC dossiers, the SSM simulator) fill the journal; the page is read
through Starlette's test client and its inline SVG checked figure by figure.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from dossiersync.config import load
from dossiersync.journal import finish_run, start_run, utcnow
from dossiersync.lease import acquire, release
from dossiersync.state.models import Dossier, Run
from dossiersync.state.store import StateStore
from dossiersync.web import create_app
from dossiersync.web.charts import PLOT_HEIGHT, records_per_run, runs_per_day
from dossiersync.web.health import DAYS, RUNS, dossier_health
from dossiersync.web.i18n import Translator

from support.workspace import Workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "web-token-for-tests-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ATTRIBUTE = re.compile(r'(data-[\w-]+)="([^"]*)"')


def figure(page: str, chart: str, dossier_id: str) -> str:
    """The markup of one dossier's chart."""
    found = re.search(
        rf'<figure class="chart" data-chart="{chart}" data-dossier="{dossier_id}".*?</figure>',
        page,
        re.S,
    )
    assert found, (chart, dossier_id)
    return found.group(0)


def marks(markup: str, key: str) -> list[dict[str, str]]:
    """The data- attributes of each ``<g>`` of a chart having ``key``."""
    groups = [dict(ATTRIBUTE.findall(g)) for g in re.findall(r"<g ([^>]*)>", markup)]
    return [g for g in groups if key in g]


def records(run: dict[str, Any]) -> int:
    return int(sum(run["counts"][n] for n in ("created", "updated", "deleted")))


def not_synced(run: dict[str, Any]) -> int:
    return int(run["counts"]["refused"] + run["counts"]["failed"])


def synced_three_ways(workspace: Workspace) -> None:
    """nord: a sync that succeeded three days ago, then a partial one, then a failed one;
    sud: one sync that succeeded."""
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.add_dossier("sud", clients=3, seed=2)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    three_days = timedelta(days=3)
    with store.session() as s:  # the journal as if that first sync ran three days ago
        for run in s.scalars(select(Run).where(Run.dossier_id == "nord")):
            run.started_at -= three_days
            run.finished_at = run.finished_at and run.finished_at - three_days
    store.dispose()
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00004'",
    )
    workspace.sync("--dossier", "nord", expect=1)
    workspace.dossiers["nord"]["path"].rename(workspace.root / "moved.db")
    workspace.sync("--dossier", "nord", expect=1)


def test_charts_draw_each_dossiers_runs_per_day_and_records_per_run(
    workspace: Workspace,
) -> None:
    synced_three_ways(workspace)
    config = load(workspace.config_path)
    app = create_app(config, StateStore(config.state_url))
    client = TestClient(app, headers=BEARER)
    page = client.get("/").text
    journal = workspace.cli_json("journal", "--dossier", "nord")
    outcomes = Counter((r["started_at"][:10], r["outcome"]) for r in journal)
    today = utcnow().date()
    three_days_ago = (today - timedelta(days=3)).isoformat()
    assert outcomes[(three_days_ago, "succeeded")] >= 1
    assert outcomes[(today.isoformat(), "partial")] >= 1
    assert outcomes[(today.isoformat(), "failed")] >= 1

    # runs per day: one bar for each of the last days, with the journal's figures
    runs = figure(page, "runs", "nord")
    days = marks(runs, "data-day")
    assert [d["data-day"] for d in days] == [
        (today - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)
    ]
    for day in days:
        mine = [r for r in journal if r["started_at"][:10] == day["data-day"]]
        for outcome in ("succeeded", "partial", "failed", "interrupted"):
            assert int(day[f"data-{outcome}"]) == outcomes[(day["data-day"], outcome)], day
        assert int(day["data-runs"]) == len(mine)
        assert int(day["data-records"]) == sum(records(r) for r in mine), day
        assert int(day["data-not-synced"]) == sum(not_synced(r) for r in mine), day
    by_day = {d["data-day"]: d for d in days}
    assert int(by_day[three_days_ago]["data-records"]) == 6  # the six clients created
    assert int(by_day[today.isoformat()]["data-not-synced"]) >= 1  # the invalid client

    # the busiest day fills the plot; each outcome has its own colour; an empty day a line
    busiest = max(days, key=lambda d: int(d["data-runs"]))
    bar = re.search(rf'<g data-day="{busiest["data-day"]}".*?</g>', runs, re.S)
    assert bar
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"', bar.group(0))]
    assert abs(sum(heights) - PLOT_HEIGHT) < 0.1
    today_bar = re.search(rf'<g data-day="{today.isoformat()}".*?</g>', runs, re.S)
    assert today_bar
    assert "bar-partial" in today_bar.group(0) and "bar-failed" in today_bar.group(0)
    assert 'class="bar bar-empty"' in runs

    # in words for those who do not see it: the totals, and each day's
    total = len(journal)
    succeeded = sum(1 for r in journal if r["outcome"] == "succeeded")
    assert f"Runs over the last {DAYS} days: {total} — {succeeded} succeeded" in runs
    assert f"<title>{three_days_ago}: {outcomes[(three_days_ago, 'succeeded')]} run(s)" in runs

    # records per run: one mark per run, oldest first, with its records and outcome
    per_run = marks(figure(page, "records", "nord"), "data-run")
    assert [int(m["data-run"]) for m in per_run] == [r["run_id"] for r in reversed(journal)]
    for mark, run in zip(per_run, reversed(journal), strict=True):
        assert mark["data-outcome"] == run["outcome"]
        assert int(mark["data-records"]) == records(run)
        assert int(mark["data-not-synced"]) == not_synced(run)

    # sud: its own charts, one succeeded sync today
    (sud_today,) = [
        d for d in marks(figure(page, "runs", "sud"), "data-day") if d["data-runs"] != "0"
    ]
    assert sud_today["data-day"] == today.isoformat()
    assert sud_today["data-succeeded"] == sud_today["data-runs"]
    assert int(sud_today["data-records"]) == 3

    # no change latency measured yet: nothing drawn for it
    assert 'data-figure="latency"' not in page

    # the API serves the same figures
    health = client.get("/api/dossiers/nord/health").json()
    assert [d["day"] for d in health["days"]] == [d["data-day"] for d in days]
    for served, drawn in zip(health["days"], days, strict=True):
        for name in ("runs", "succeeded", "partial", "failed", "records", "not_synced"):
            assert str(served[name]) == drawn[f"data-{name.replace('_', '-')}"], (served, name)
    assert [r["run_id"] for r in health["runs"]] == [int(m["data-run"]) for m in per_run]
    assert health["latency_seconds"] is None
    assert client.get("/api/dossiers/nowhere/health").status_code == 404


def test_charts_speak_french(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()
    config = load(workspace.config_path)
    app = create_app(config, StateStore(config.state_url))
    client = TestClient(app, headers={**BEARER, "Accept-Language": "fr"})
    runs = figure(client.get("/").text, "runs", "nord")
    assert "Synchronisations par jour" in runs
    assert f"Synchronisations des {DAYS} derniers jours" in runs
    assert "aujourd’hui" in runs


def test_a_measured_change_latency_is_shown(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.activate_all()
    workspace.sync()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    health = dossier_health(store, "nord", held=False)
    health.latency_seconds = 42.04
    app = create_app(config, store, token=None)
    markup = app.state.site.templates.get_template("health.html").render(
        t=Translator("en"),
        d={"id": "nord"},
        card={
            "health": health,
            "runs_chart": runs_per_day(health.days),
            "records_chart": records_per_run(health.runs, RUNS),
        },
    )
    assert 'data-figure="latency" data-seconds="42.04"' in markup
    assert "Change latency: 42.0 s" in markup


def test_a_run_left_running_counts_as_running_while_its_lease_is_held_else_interrupted(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    app = create_app(config, store)
    api = TestClient(app, headers=BEARER)
    holder = acquire(store, "nord", 60, holder="elsewhere:4242")
    with store.session() as s:
        run = start_run(s, "nord", "clients", "sage_to_ssm", "schedule", False)
    today = utcnow().date().isoformat()

    def today_and_run() -> tuple[dict[str, str], dict[str, str]]:
        page = api.get("/?dossier=nord").text
        (day,) = [
            d for d in marks(figure(page, "runs", "nord"), "data-day") if d["data-day"] == today
        ]
        last = marks(figure(page, "records", "nord"), "data-run")[-1]
        assert last["data-run"] == str(run.id)
        return day, last

    day, last = today_and_run()
    assert (day["data-running"], day["data-interrupted"], last["data-outcome"]) == (
        "1",
        "0",
        "running",
    )
    release(store, "nord", holder)  # its process went away without ending the run
    day, last = today_and_run()
    assert (day["data-running"], day["data-interrupted"], last["data-outcome"]) == (
        "0",
        "1",
        "interrupted",
    )


def test_health_reads_the_journal_on_both_state_backends(state_url: str) -> None:
    store = StateStore(state_url)
    with store.session() as s:
        s.add(Dossier(id="nord", name="nord", state="active", created_at=utcnow()))
    outcomes = [("succeeded", 4, 0), ("partial", 2, 1), ("failed", 0, 0)]
    with store.session() as s:
        for outcome, created, refused in outcomes:
            run = start_run(s, "nord", "clients", "sage_to_ssm", "schedule", False)
            run.outcome = outcome
            run.counts.update(created=created, refused=refused)
            finish_run(s, run)
        old = start_run(s, "nord", "clients", "sage_to_ssm", "schedule", False)
        old.outcome = "succeeded"
        finish_run(s, old)
    with store.session() as s:  # that last run, as if it ran three days ago
        moved = s.get(Run, old.id)
        assert moved is not None
        moved.started_at -= timedelta(days=3)
    health = dossier_health(store, "nord", held=False)
    today, earlier = health.days[-1], health.days[-4]
    assert (today.succeeded, today.partial, today.failed) == (1, 1, 1)
    assert (today.records, today.not_synced) == (6, 1)
    assert (
        earlier.succeeded == 1 and earlier.day == (utcnow().date() - timedelta(days=3)).isoformat()
    )
    assert [r.outcome for r in health.runs] == ["succeeded", "partial", "failed", "succeeded"]
    assert health.totals.runs == 4
    store.dispose()
