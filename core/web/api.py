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
from . import params
from .auth import auth_of
from .health import dossier_health
from .jobs import DossierInactive, SyncBusy, retry_incident
from .openapi import document
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
from .redact import redact
from .schedule import leases, schedule
from .site import NO_STORE, Site, site_of

MAX_EXPORT = 100_000


def _dossiers(site: Site) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in dossier_list(site.config, site.store)}


def _known(site: Site, dossier_id: str) -> dict[str, Any]:
    dossier = _dossiers(site).get(dossier_id)
    if dossier is None:
        raise HTTPException(404, f"no dossier {dossier_id}")
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


def openapi(request: Request) -> Response:
    return JSONResponse(document(), headers=NO_STORE)


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


def activate_dossier(request: Request) -> Response:
    return _change(request, "activate")


def deactivate_dossier(request: Request) -> Response:
    return _change(request, "deactivate")


def sync_dossier(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    dossier = _known(site, dossier_id)
    if request.method == "GET":
        job = site.jobs.latest(dossier_id)
        return site.json({"job": job.as_dict() if job else None})
    _refuse_without_csrf(site, request)
    entities = request.query_params.getlist("entity") or None
    if dossier["state"] != "active":
        raise HTTPException(409, f"dossier {dossier_id} is not active: activate it first")
    unknown = sorted(set(entities or ()) - set(dossier["entities"]))
    if unknown:
        raise params.BadParameter("entity", f"not enabled for this dossier: {', '.join(unknown)}")
    try:
        job = site.jobs.start(dossier_id, entities)
    except SyncBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return site.json(job.as_dict(), status_code=202)


def preview_dossier(request: Request) -> Response:
    """What the next sync of the dossier would do (``sync --dry-run --json``); writes nothing."""
    from ..preview import preview

    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    dossier = _known(site, dossier_id)
    _refuse_without_csrf(site, request)
    if dossier["state"] != "active":
        raise HTTPException(409, f"dossier {dossier_id} is not active: activate it first")
    entities = request.query_params.getlist("entity") or None
    unknown = sorted(set(entities or ()) - set(dossier["entities"]))
    if unknown:
        raise params.BadParameter("entity", f"not enabled for this dossier: {', '.join(unknown)}")
    (found,) = preview(site.config, site.store, [dossier_id], entities)
    return site.json(found.as_dict())


def status_view(request: Request) -> Response:
    site = site_of(request)
    return site.json(status(site.config, site.store, _filter(site, request)))


def schedule_view(request: Request) -> Response:
    site = site_of(request)
    data = status(site.config, site.store, _filter(site, request))
    return site.json(schedule(site.config, data, leases(site.store), here=site.scheduled))


def journal_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    limit = params.integer(request, "limit", 50, 1, 1000)
    offset = params.integer(request, "offset", 0, 0, 1_000_000)
    since = params.timestamp(request, "since")
    runs, _more = journal_page(site.store, [dossier_id], offset=offset, limit=limit, since=since)
    return site.json(runs)


def health_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    held = dossier_id in leases(site.store)
    return site.json(dossier_health(site.store, dossier_id, held=held).as_dict())


def journal_csv_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    since = params.timestamp(request, "since")
    runs, _more = journal_page(site.store, [dossier_id], offset=0, limit=MAX_EXPORT, since=since)
    return csv_response(site, runs, dossier_id)


def csv_response(site: Site, runs: list[dict[str, Any]], name: str) -> Response:
    body = journal_export(redact(runs, site.secrets))
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="journal-{name}.csv"',
        },
    )


def run_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    run = find_run(site.store, dossier_id, _path_id(request, "run_id"))
    if run is None:
        raise HTTPException(404, "no such run in this dossier's journal")
    return site.json(run)


def run_events_view(request: Request) -> Response:
    site = site_of(request)
    dossier_id = request.path_params["dossier_id"]
    _known(site, dossier_id)
    run_id = _path_id(request, "run_id")
    if find_run(site.store, dossier_id, run_id) is None:
        raise HTTPException(404, "no such run in this dossier's journal")
    return site.json(run_events(site.store, dossier_id, run_id))


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


def incident_view(request: Request) -> Response:
    site = site_of(request)
    return site.json(_incident(site, request))


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
