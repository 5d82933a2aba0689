"""The status page: server-rendered HTML, one view per section.

Sections: status, journal (with a run's events and the CSV export), incidents, set-up.
Every state change is a POSTed form carrying the session's CSRF token, answered by a
redirect (or, to deactivate, first by a confirmation page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..dossiers import activate, deactivate
from ..errors import DossierSyncError
from ..reports import status
from ..vocabulary import DossierState, IncidentKind
from . import params
from .api import MAX_EXPORT, csv_response
from .auth import SESSION_COOKIE, auth_of
from .charts import records_per_run, runs_per_day
from .health import RUNS, dossier_health
from .i18n import Translator
from .jobs import DossierInactive, SyncBusy, retry_incident
from .queries import (
    INCIDENT_STATES,
    dossier_list,
    find_incident,
    find_run,
    incident_list,
    journal_page,
    run_events,
)
from .schedule import leases, schedule
from .site import Site, site_of

PAGE_SIZE = 25
MAX_EVENTS_SHOWN = 1000
LABELS = ("synced", "pending", "pending_review", "error", "deleted")
KINDS = (
    IncidentKind.INVALID_RECORD,
    IncidentKind.REFUSED_BY_SSM,
    IncidentKind.SAGE_WRITE_FAILED,
    IncidentKind.RUN_FAILED,
    IncidentKind.MASS_DELETION_REFUSED,
)
NOTICES = {
    "sync.started",
    "setup.activated",
    "setup.deactivated",
    "setup.unchanged",
    "incidents.retried",
    "incidents.retry_marked",
}
ERROR_NOTICES = {"sync.busy", "error.inactive"}
#: notices about one dossier, or about one or more, named after the ``|``
NEED_DOSSIER = {"sync.started", "sync.busy", "error.inactive"}
NEED_DOSSIERS = {"setup.activated", "setup.deactivated"}


# -- shared ------------------------------------------------------------------------------


def _selected(request: Request, dossiers: list[dict[str, Any]]) -> str:
    value = params.text(request, "dossier") or "all"
    if value != "all" and value not in {d["id"] for d in dossiers}:
        raise HTTPException(404, f"no dossier {params.echo(value)}")
    return value


def _messages(t: Translator, request: Request, known: set[str]) -> tuple[list[str], list[str]]:
    """Notices and errors named in the query string after a redirect: known ones only, and
    about known dossiers only (anyone can send a link; it must not make the page say a
    text of its choosing)."""
    notices, errors = [], []
    for item in request.query_params.getlist("notice")[:5]:
        key, _, about = item.partition("|")
        ids = list(dict.fromkeys(about.split(","))) if about else []
        if any(i not in known for i in ids):
            continue
        if (key in NEED_DOSSIER and len(ids) != 1) or (key in NEED_DOSSIERS and not ids):
            continue
        if key in NOTICES:
            notices.append(t(key, dossier=about, ids=", ".join(ids)))
        elif key in ERROR_NOTICES:
            errors.append(t(key, dossier=about, ids=", ".join(ids)))
    return notices, errors


def _context(
    site: Site,
    request: Request,
    section: str,
    dossiers: list[dict[str, Any]],
    selected: str = "all",
    *,
    group_action: str = "/",
    group_keep: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    names = {d["id"]: d["name"] for d in dossiers}
    notices, errors = _messages(site.translator(request), request, set(names))
    return {
        "section": section,
        "dossiers": dossiers,
        "selected": selected,
        "selected_name": names.get(selected, selected),
        "group_action": group_action,
        "group_keep": group_keep or [],
        "notices": notices,
        "errors": errors,
    }


def _redirect(path: str, query: list[tuple[str, str]]) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


def forbidden(site: Site, request: Request) -> Response:
    t = site.translator(request)
    return site.html(
        request,
        "error.html",
        {"heading": t("forbidden.title"), "text": t("forbidden.text")},
        status_code=403,
    )


async def _form(request: Request) -> tuple[Site, FormData, bool]:
    """The posted form, and whether it carries this session's CSRF token."""
    site = site_of(request)
    form = await request.form()
    token = form.get("csrf_token")
    return site, form, site.csrf_ok(request, token if isinstance(token, str) else None)


def _strings(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60, 1)
    return str(int(minutes)) if minutes == int(minutes) else str(minutes)


# -- status --------------------------------------------------------------------------------


def status_page(request: Request) -> Response:
    site = site_of(request)
    dossiers = dossier_list(site.config, site.store)
    selected = _selected(request, dossiers)
    data = status(site.config, site.store, None if selected == "all" else selected)
    plans = schedule(site.config, data, leases(site.store), here=site.scheduled)
    planned = {s["dossier_id"]: s for s in plans}
    cards: list[dict[str, Any]] = []
    for d in data:
        job = site.jobs.latest(d["id"])
        plan = planned[d["id"]]
        health = dossier_health(site.store, d["id"], held=plan["synced_by"] is not None)
        cards.append(
            {
                "status": d,
                "schedule": plan,
                "job": job.as_dict() if job else None,
                "every_minutes": _minutes(plan["interval_seconds"]),
                "health": health,
                "runs_chart": runs_per_day(health.days),
                "records_chart": records_per_run(health.runs, RUNS),
            }
        )
    refresh = any(c["schedule"]["synced_by"] or (c["job"] and c["job"]["running"]) for c in cards)
    context = _context(site, request, "status", dossiers, selected)
    context.update(cards=cards, labels=LABELS, refresh=refresh)
    return site.html(request, "status.html", context)


async def sync_now(request: Request) -> Response:
    site, form, csrf_ok = await _form(request)
    if not csrf_ok:
        return forbidden(site, request)
    dossier_id = request.path_params["dossier_id"]
    back = "/setup" if form.get("back") == "setup" else "/"
    query = [] if back == "/setup" else [("dossier", dossier_id)]
    dossiers = await run_in_threadpool(dossier_list, site.config, site.store)
    dossier = next((d for d in dossiers if d["id"] == dossier_id), None)
    if dossier is None:
        raise HTTPException(404, f"no dossier {params.echo(dossier_id)}")
    if dossier["state"] != DossierState.ACTIVE:
        return _redirect(back, [*query, ("notice", f"error.inactive|{dossier_id}")])
    try:
        await run_in_threadpool(site.jobs.start, dossier_id)
    except SyncBusy:
        return _redirect(back, [*query, ("notice", f"sync.busy|{dossier_id}")])
    return _redirect(back, [*query, ("notice", f"sync.started|{dossier_id}")])


async def preview_page(request: Request) -> Response:
    """What the next sync of a dossier would do, written nowhere (``sync --dry-run``)."""
    from ..preview import preview

    site, form, csrf_ok = await _form(request)
    if not csrf_ok:
        return forbidden(site, request)
    dossier_id = request.path_params["dossier_id"]
    dossiers = await run_in_threadpool(dossier_list, site.config, site.store)
    dossier = next((d for d in dossiers if d["id"] == dossier_id), None)
    if dossier is None:
        raise HTTPException(404, f"no dossier {params.echo(dossier_id)}")
    if dossier["state"] != DossierState.ACTIVE:
        return _redirect("/", [("dossier", dossier_id), ("notice", f"error.inactive|{dossier_id}")])
    (found,) = await run_in_threadpool(preview, site.config, site.store, [dossier_id])
    context = _context(site, request, "status", dossiers, dossier_id)
    context.update(preview=found.as_dict())
    return site.html(request, "preview.html", context)


# -- journal -------------------------------------------------------------------------------


def _journal_ids(dossiers: list[dict[str, Any]], selected: str) -> list[str]:
    if selected != "all":
        return [selected]
    return [d["id"] for d in dossiers if d["state"] != DossierState.NEW]


def journal_list(request: Request) -> Response:
    site = site_of(request)
    dossiers = dossier_list(site.config, site.store)
    selected = _selected(request, dossiers)
    page = params.integer(request, "page", 1, 1, 100_000)
    runs, more = journal_page(
        site.store,
        _journal_ids(dossiers, selected),
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    context = _context(site, request, "journal", dossiers, selected, group_action="/journal")
    context.update(runs=runs, page=page, more=more)
    return site.html(request, "journal.html", context)


def journal_csv_page(request: Request) -> Response:
    site = site_of(request)
    dossiers = dossier_list(site.config, site.store)
    selected = _selected(request, dossiers)
    since = params.timestamp(request, "since")
    runs, _more = journal_page(
        site.store, _journal_ids(dossiers, selected), offset=0, limit=MAX_EXPORT, since=since
    )
    return csv_response(site, runs, selected)


def run_page(request: Request) -> Response:
    site = site_of(request)
    dossiers = dossier_list(site.config, site.store)
    selected = _selected(request, dossiers)
    try:
        run_id = params.bounded_int("run_id", request.path_params["run_id"])
    except params.BadParameter:
        raise HTTPException(404, "no such run") from None
    run = find_run(site.store, selected, run_id) if selected != "all" else None
    if run is None:
        raise HTTPException(404, "no such run in this dossier's journal")
    events = run_events(site.store, selected, run_id)
    context = _context(site, request, "journal", dossiers, selected, group_action="/journal")
    context.update(
        run=run,
        events=events[:MAX_EVENTS_SHOWN],
        truncated=len(events) > MAX_EVENTS_SHOWN,
    )
    return site.html(request, "run.html", context)


# -- incidents -------------------------------------------------------------------------------


def incidents_page(request: Request) -> Response:
    site = site_of(request)
    dossiers = dossier_list(site.config, site.store)
    selected = _selected(request, dossiers)
    state = params.choice(request, "state", INCIDENT_STATES, "open")
    entity = params.text(request, "entity")
    kind = params.text(request, "kind")
    dossier_id = None if selected == "all" else selected
    found = incident_list(site.store, dossier_id, state=state, entity=entity, kind=kind)
    found.sort(key=lambda i: (i["last_seen"] or "", i["incident_id"]), reverse=True)
    everything = incident_list(site.store, dossier_id)
    entities = sorted(
        {e for d in dossiers if dossier_id in (None, d["id"]) for e in d["entities"]}
        | {i["entity"] for i in everything if i["entity"]}
    )
    kinds = [*KINDS, *sorted({i["kind"] for i in everything} - set(KINDS))]
    context = _context(
        site,
        request,
        "incidents",
        dossiers,
        selected,
        group_action="/incidents",
        group_keep=[("state", state)],
    )
    context.update(
        incidents=found, state=state, entity=entity, kind=kind, entities=entities, kinds=kinds
    )
    return site.html(request, "incidents.html", context)


def _incident_or_404(site: Site, request: Request) -> dict[str, Any]:
    try:
        incident_id = params.bounded_int("incident_id", request.path_params["incident_id"])
    except params.BadParameter:
        raise HTTPException(404, "no such incident") from None
    incident = find_incident(site.store, incident_id)
    if incident is None:
        raise HTTPException(404, "no such incident")
    return incident


def incident_page(request: Request) -> Response:
    site = site_of(request)
    incident = _incident_or_404(site, request)
    dossiers = dossier_list(site.config, site.store)
    dossier = next((d for d in dossiers if d["id"] == incident["dossier_id"]), None)
    context = _context(
        site, request, "incidents", dossiers, incident["dossier_id"], group_action="/incidents"
    )
    context.update(
        incident=incident,
        dossier_name=dossier["name"] if dossier else incident["dossier_id"],
        dossier_state=dossier["state"] if dossier else DossierState.INACTIVE,
    )
    return site.html(request, "incident.html", context)


async def retry_now(request: Request) -> Response:
    site, _form_data, csrf_ok = await _form(request)
    if not csrf_ok:
        return forbidden(site, request)
    incident = await run_in_threadpool(_incident_or_404, site, request)
    back = f"/incidents/{incident['incident_id']}"
    try:
        result = await run_in_threadpool(
            retry_incident, site.config, site.store, site.jobs, incident
        )
    except DossierInactive:
        return _redirect(back, [("notice", f"error.inactive|{incident['dossier_id']}")])
    notices = []
    if result["job"] is not None:
        notices.append(("notice", "incidents.retried|"))
    else:
        notices.append(("notice", f"sync.busy|{incident['dossier_id']}"))
        if result["retried_by_key"]:
            notices.append(("notice", "incidents.retry_marked|"))
    return _redirect(back, notices)


# -- set-up ----------------------------------------------------------------------------------


def setup_page(request: Request) -> Response:
    from ..ssm_fields import view

    site = site_of(request)
    dossiers = dossier_list(site.config, site.store, site.records_in_ssm())
    context = _context(site, request, "setup", dossiers)
    context["status_fields"] = view(site.config, site.store)
    return site.html(request, "setup.html", context)


async def setup_save(request: Request) -> Response:
    site, form, csrf_ok = await _form(request)
    if not csrf_ok:
        return forbidden(site, request)
    shown = _strings(form, "shown")
    ticked = set(_strings(form, "active"))
    confirmed = form.get("confirm") == "yes"
    return await run_in_threadpool(_apply_setup, site, request, shown, ticked, confirmed)


def _apply_setup(
    site: Site, request: Request, shown: list[str], ticked: set[str], confirmed: bool
) -> Response:
    dossiers = dossier_list(site.config, site.store)
    by_id = {d["id"]: d for d in dossiers}
    shown = [i for i in dict.fromkeys(shown) if i in by_id]
    arriving = [i for i in shown if i in ticked and by_id[i]["state"] != DossierState.ACTIVE]
    leaving = [i for i in shown if i not in ticked and by_id[i]["state"] == DossierState.ACTIVE]
    if leaving and not confirmed:
        context = _context(site, request, "setup", dossiers)
        context.update(
            leaving=[by_id[i] for i in leaving],
            shown=shown,
            ticked=[i for i in shown if i in ticked],
        )
        return site.html(request, "confirm.html", context)
    try:
        if arriving:
            activate(site.config, site.store, arriving)
        if leaving:
            deactivate(site.config, site.store, leaving)
    except DossierSyncError as exc:
        context = _context(site, request, "setup", dossier_list(site.config, site.store))
        context["errors"] = [*context["errors"], str(exc)]
        return site.html(request, "setup.html", context, status_code=409)
    notices = []
    if arriving:
        notices.append(("notice", "setup.activated|" + ",".join(arriving)))
    if leaving:
        notices.append(("notice", "setup.deactivated|" + ",".join(leaving)))
    return _redirect("/setup", notices or [("notice", "setup.unchanged|")])


async def logout(request: Request) -> Response:
    site, _form_data, csrf_ok = await _form(request)
    if not csrf_ok:
        return forbidden(site, request)
    site.sessions.end(auth_of(request).session)  # a copy of the cookie opens nothing
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


ROUTES = [
    Route("/", status_page, methods=["GET"]),
    Route("/dossiers/{dossier_id}/sync", sync_now, methods=["POST"]),
    Route("/dossiers/{dossier_id}/preview", preview_page, methods=["POST"]),
    Route("/journal", journal_list, methods=["GET"]),
    Route("/journal.csv", journal_csv_page, methods=["GET"]),
    Route("/journal/{run_id}", run_page, methods=["GET"]),
    Route("/incidents", incidents_page, methods=["GET"]),
    Route("/incidents/{incident_id}", incident_page, methods=["GET"]),
    Route("/incidents/{incident_id}/retry", retry_now, methods=["POST"]),
    Route("/setup", setup_page, methods=["GET"]),
    Route("/setup", setup_save, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
