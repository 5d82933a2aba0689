"""The JSON API under ``/api/``: the data of the command line's ``--json`` output.

Each handler is a plain function (Starlette runs it in its thread pool) reading
through ``reports``, ``dossiers`` and ``queries``.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..dossiers import activate, deactivate
from ..errors import DossierSyncError
from ..reports import LABELS, records, status
from ..vocabulary import DossierState
from . import params
from .answers import (
    DossierFilter,
    DossierSchema,
    DossierStatusSchema,
    EntitiesQuery,
    EventSchema,
    HealthSchema,
    IncidentSchema,
    IncidentsQuery,
    JournalQuery,
    PreviewSchema,
    RecordSchema,
    RecordsQuery,
    RetryResultSchema,
    RunSchema,
    ScheduleSchema,
    SessionSchema,
    SinceQuery,
    SyncJobAnswerSchema,
    SyncJobSchema,
)
from .auth import auth_of
from .health import dossier_health
from .jobs import DossierInactive, SyncBusy, retry_incident
from .openapi import document, operation
from .queries import (
    INCIDENT_STATES,
    dossier_list,
    find_incident,
    find_run,
    incident_list,
    journal_export,
    journal_page,
    run_events,
)
from .schedule import leases, schedule
from .site import NO_STORE, Site, site_of

MAX_EXPORT = 100_000


def _dossiers(site: Site) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in dossier_list(site.config, site.store)}


def _known(site: Site, dossier_id: str) -> dict[str, Any]:
    dossier = _dossiers(site).get(dossier_id)
    if dossier is None:
        raise HTTPException(404, f"no dossier {params.echo(dossier_id)}")
    return dossier


def _filter(site: Site, request: Request) -> str | None:
    """The ``dossier`` query parameter: None for all, else a known dossier id."""
    value = params.text(request, "dossier")
    if value is None or value == "all":
        return None
    _known(site, value)
    return value


def _path_id(request: Request, name: str) -> int:
    try:
        return params.bounded_int(name, request.path_params[name])
    except params.BadParameter:
        raise HTTPException(404, f"no such {name.removesuffix('_id')}") from None


def _refuse_without_csrf(site: Site, request: Request) -> None:
    if not site.csrf_ok(request, request.headers.get("x-csrf-token")):
        raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")


@operation("get", "openapi", "This document", {"type": "object"}, "the OpenAPI document")
def openapi(request: Request) -> Response:
    return JSONResponse(document(ROUTES), headers=NO_STORE)


@operation(
    "get",
    "session",
    "How this request is authenticated, and the CSRF token of a cookie session",
    SessionSchema,
    "the session",
)
def session(request: Request) -> Response:
    site = site_of(request)
    auth = auth_of(request)
    return site.json(
        {
            "authenticated_by": auth.by,
            "csrf_token": site.sessions.csrf_token(auth),
            "language": site.translator(request).language,
        }
    )


@operation(
    "get",
    "listDossiers",
    "Every dossier of the group: proposed, active, inactive (dossiers discover)",
    DossierSchema(many=True),
    "the dossiers",
)
def dossiers(request: Request) -> Response:
    site = site_of(request)
    # as `dossiers discover`: each Sage source is opened once to say whether it is reachable
    return site.json(dossier_list(site.config, site.store, site.records_in_ssm(), probe=True))


def _change(request: Request, action: str) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    _refuse_without_csrf(site, request)
    change = activate if action == "activate" else deactivate
    try:
        (view,) = change(site.config, site.store, [dossier_id])
    except DossierSyncError as exc:
        raise HTTPException(409, str(exc)) from None
    return site.json(view.as_dict())


@operation(
    "post",
    "activateDossier",
    "Attach the dossier to the implementation and activate it",
    DossierSchema,
    "the dossier, now active",
)
def activate_dossier(request: Request) -> Response:
    return _change(request, "activate")


@operation(
    "post",
    "deactivateDossier",
    "Stop syncing the dossier; its data stays in Sales Management",
    DossierSchema,
    "the dossier, now inactive",
)
def deactivate_dossier(request: Request) -> Response:
    return _change(request, "deactivate")


@operation(
    "get",
    "latestSync",
    "The latest sync started through the page or the API for this dossier",
    SyncJobAnswerSchema,
    "the latest sync, or null",
    found=True,
)
@operation(
    "post",
    "syncDossier",
    "Sync the dossier now, in the background",
    SyncJobSchema,
    "the sync, started",
    status=202,
    query=EntitiesQuery,
)
def sync_dossier(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    dossier = _known(site, dossier_id)
    if request.method == "GET":
        job = site.jobs.latest(dossier_id)
        return site.json({"job": job.as_dict() if job else None})
    _refuse_without_csrf(site, request)
    entities = request.query_params.getlist("entity") or None
    if dossier["state"] != DossierState.ACTIVE:
        raise HTTPException(409, f"dossier {dossier_id} is not active: activate it first")
    unknown = sorted(set(entities or ()) - set(dossier["entities"]))
    if unknown:
        said = ", ".join(params.echo(e) for e in unknown[:5])
        raise params.BadParameter("entity", f"not enabled for this dossier: {params.echo(said)}")
    try:
        job = site.jobs.start(dossier_id, entities)
    except SyncBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return site.json(job.as_dict(), status_code=202)


@operation(
    "post",
    "previewDossier",
    "What the next sync of the dossier would do, per entity and direction, "
    "record by record; writes nothing anywhere (sync --dry-run)",
    PreviewSchema,
    "the preview",
    query=EntitiesQuery,
)
def preview_dossier(request: Request) -> Response:
    """What the next sync of the dossier would do (``sync --dry-run --json``); writes nothing."""
    from ..preview import preview

    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    dossier = _known(site, dossier_id)
    _refuse_without_csrf(site, request)
    if dossier["state"] != DossierState.ACTIVE:
        raise HTTPException(409, f"dossier {dossier_id} is not active: activate it first")
    entities = request.query_params.getlist("entity") or None
    unknown = sorted(set(entities or ()) - set(dossier["entities"]))
    if unknown:
        said = ", ".join(params.echo(e) for e in unknown[:5])
        raise params.BadParameter("entity", f"not enabled for this dossier: {params.echo(said)}")
    (found,) = preview(site.config, site.store, [dossier_id], entities)
    return site.json(found.as_dict())


@operation(
    "get",
    "status",
    "Per dossier and entity: last run per direction, records per sync label, "
    "open incidents (status)",
    DossierStatusSchema(many=True),
    "the status",
    query=DossierFilter,
    found=True,
)
def status_view(request: Request) -> Response:
    site = site_of(request)
    return site.json(status(site.config, site.store, _filter(site, request)))


@operation(
    "get",
    "schedule",
    "Per dossier: next scheduled run and the runs in progress",
    ScheduleSchema(many=True),
    "the schedule",
    query=DossierFilter,
    found=True,
)
def schedule_view(request: Request) -> Response:
    site = site_of(request)
    data = status(site.config, site.store, _filter(site, request))
    return site.json(schedule(site.config, data, leases(site.store), here=site.scheduled))


@operation(
    "get",
    "journal",
    "The dossier's journal, newest first (journal)",
    RunSchema(many=True),
    "runs",
    query=JournalQuery,
    found=True,
)
def journal_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    limit = params.integer(request, "limit", 50, 1, 1000)
    offset = params.integer(request, "offset", 0, 0, 1_000_000)
    since = params.timestamp(request, "since")
    runs, _more = journal_page(site.store, [dossier_id], offset=offset, limit=limit, since=since)
    return site.json(runs)


@operation(
    "get",
    "health",
    "The dossier's runs per day (last 14 days) and records per run (last 30)",
    HealthSchema,
    "what the status page draws",
    found=True,
)
def health_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    held = dossier_id in leases(site.store)
    return site.json(dossier_health(site.store, dossier_id, held=held).as_dict())


@operation(
    "get",
    "journalCsv",
    "The dossier's journal as CSV, newest first",
    {"type": "string"},
    "one line per run",
    query=SinceQuery,
    found=True,
    media_type="text/csv",
)
def journal_csv_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    since = params.timestamp(request, "since")
    runs, _more = journal_page(site.store, [dossier_id], offset=0, limit=MAX_EXPORT, since=since)
    return csv_response(site, runs, dossier_id)


def csv_response(site: Site, runs: list[dict[str, Any]], name: str) -> Response:
    body = journal_export(site.redact(runs))
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="journal-{name}.csv"',
        },
    )


@operation("get", "run", "One run of the dossier's journal", RunSchema, "the run", found=True)
def run_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    run = find_run(site.store, dossier_id, _path_id(request, "run_id"))
    if run is None:
        raise HTTPException(404, "no such run in this dossier's journal")
    return site.json(run)


@operation(
    "get",
    "runEvents",
    "The per-record events of one run (journal --run)",
    EventSchema(many=True),
    "events",
    found=True,
)
def run_events_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    run_id = _path_id(request, "run_id")
    if find_run(site.store, dossier_id, run_id) is None:
        raise HTTPException(404, "no such run in this dossier's journal")
    return site.json(run_events(site.store, dossier_id, run_id))


@operation(
    "get",
    "records",
    "Linked records with their sync label (records)",
    RecordSchema(many=True),
    "records",
    query=RecordsQuery,
    found=True,
)
def records_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    entity = params.text(request, "entity")
    label = request.query_params.get("label") or None
    if label is not None and label not in LABELS:
        raise params.BadParameter("label", f"must be one of {', '.join(LABELS)}")
    limit = params.integer(request, "limit", 1000, 1, 100_000)
    return site.json(records(site.store, dossier_id, entity=entity, label=label, limit=limit))


@operation(
    "get",
    "incidents",
    "Incidents, filtered (incidents)",
    IncidentSchema(many=True),
    "incidents",
    query=IncidentsQuery,
    found=True,
)
def incidents_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = _filter(site, request)
    state = params.choice(request, "state", INCIDENT_STATES, "all")
    data = incident_list(
        site.store,
        dossier_id,
        state=state,
        entity=params.text(request, "entity"),
        kind=params.text(request, "kind"),
    )
    return site.json(data)


def _incident(site: Site, request: Request) -> dict[str, Any]:
    incident = find_incident(site.store, _path_id(request, "incident_id"))
    if incident is None:
        raise HTTPException(404, "no such incident")
    return incident


@operation("get", "incident", "One incident", IncidentSchema, "the incident", found=True)
def incident_view(request: Request) -> Response:
    site = site_of(request)
    return site.json(_incident(site, request))


@operation(
    "post",
    "retryIncident",
    "Retry now: mark the record for retry by key and sync its dossier and entity",
    RetryResultSchema,
    "what was done",
    status=202,
)
def retry_view(request: Request) -> Response:
    site = site_of(request)
    incident = _incident(site, request)
    _refuse_without_csrf(site, request)
    try:
        result = retry_incident(site.config, site.store, site.jobs, incident)
    except DossierInactive as exc:
        raise HTTPException(409, str(exc)) from None
    return site.json(result, status_code=202)


ROUTES = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/session", session, methods=["GET"]),
    Route("/api/dossiers", dossiers, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/activate", activate_dossier, methods=["POST"]),
    Route("/api/dossiers/{dossier_id}/deactivate", deactivate_dossier, methods=["POST"]),
    Route("/api/dossiers/{dossier_id}/sync", sync_dossier, methods=["GET", "POST"]),
    Route("/api/dossiers/{dossier_id}/preview", preview_dossier, methods=["POST"]),
    Route("/api/dossiers/{dossier_id}/journal", journal_view, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/journal.csv", journal_csv_view, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/health", health_view, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/runs/{run_id}", run_view, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/runs/{run_id}/events", run_events_view, methods=["GET"]),
    Route("/api/dossiers/{dossier_id}/records", records_view, methods=["GET"]),
    Route("/api/status", status_view, methods=["GET"]),
    Route("/api/schedule", schedule_view, methods=["GET"]),
    Route("/api/incidents", incidents_view, methods=["GET"]),
    Route("/api/incidents/{incident_id}", incident_view, methods=["GET"]),
    Route("/api/incidents/{incident_id}/retry", retry_view, methods=["POST"]),
]
