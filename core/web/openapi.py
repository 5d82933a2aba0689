"""The OpenAPI 3 document of the JSON API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from .. import __version__

MAX_ID = 2**31 - 1
DOSSIER_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "description": "UTC, ISO 8601 to the second, with Z"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


COUNTS = _object({name: INTEGER for name in (
    "read", "created", "updated", "deleted", "unchanged", "pending", "refused", "failed"
)})  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": STRING, "detail": _nullable(STRING)}, ["error"]),
    "Dossier": _object(
        {
            "id": STRING,
            "name": STRING,
            "state": {"type": "string", "enum": ["new", "active", "inactive"]},
            "origin": STRING,
            "entities": {"type": "array", "items": STRING},
            "in_configuration": BOOLEAN,
            "linked_records": INTEGER,
            "open_incidents": INTEGER,
            "needs_full_sync": BOOLEAN,
            "previously_synced": _nullable(BOOLEAN),
            "records_in_ssm": _nullable(INTEGER),
            "reachable": _nullable(BOOLEAN),
            "source_error": _nullable(STRING),
        },
        ["id", "name", "state", "origin", "entities", "in_configuration"],
    ),
    "Counts": COUNTS,
    "Run": _object(
        {
            "run_id": INTEGER,
            "dossier_id": STRING,
            "entity": STRING,
            "direction": STRING,
            "trigger": STRING,
            "full": BOOLEAN,
            "started_at": _nullable(TIME),
            "finished_at": _nullable(TIME),
            "duration_seconds": _nullable({"type": "number"}),
            "outcome": {
                "type": "string",
                "description": "succeeded, partial, failed, or running while it runs",
            },
            "message": _nullable(STRING),
            "counts": _ref("Counts"),
            "holder": _nullable(
                {"type": "string", "description": "who made the run: host:pid/thread"}
            ),
        }
    ),
    "EntityStatus": _object(
        {
            "entity": STRING,
            "records": _object(
                {
                    name: INTEGER
                    for name in ("synced", "pending", "pending_review", "error", "deleted")
                }
            ),
            "open_incidents": INTEGER,
            "last_runs": {"type": "array", "items": _ref("Run")},
        }
    ),
    "DossierStatus": _object(
        {
            "id": STRING,
            "name": STRING,
            "state": STRING,
            "needs_full_sync": BOOLEAN,
            "open_incidents": INTEGER,
            "synced_by": _nullable(
                {"type": "string", "description": "lease holder host:pid/thread, now"}
            ),
            "entities": {"type": "array", "items": _ref("EntityStatus")},
        }
    ),
    "Schedule": _object(
        {
            "dossier_id": STRING,
            "state": STRING,
            "interval_seconds": {"type": "number"},
            "last_started_at": _nullable(TIME),
            "last_finished_at": _nullable(TIME),
            "next_run_at": _nullable(TIME),
            "scheduled_here": {
                "type": "boolean",
                "description": "this process runs the service's schedule (dossiersync run)",
            },
            "due": BOOLEAN,
            "synced_by": _nullable({"type": "string", "description": "lease holder host:pid"}),
            "running_runs": {"type": "array", "items": INTEGER},
            "interrupted_runs": {"type": "array", "items": INTEGER},
        }
    ),
    "Event": _object(
        {
            "event_id": INTEGER,
            "run_id": INTEGER,
            "entity": STRING,
            "record_key": STRING,
            "action": STRING,
            "detail": _nullable(STRING),
            "at": _nullable(TIME),
        }
    ),
    "Incident": _object(
        {
            "incident_id": INTEGER,
            "dossier_id": STRING,
            "entity": _nullable(STRING),
            "record_key": _nullable(STRING),
            "direction": _nullable(STRING),
            "kind": STRING,
            "field": _nullable(STRING),
            "message": STRING,
            "detail": _nullable(
                {
                    "type": "object",
                    "description": "what the message says, as data: kind, record (Sage key, "
                    "SSM id), the rule an invalid field breaks; null for older incidents",
                }
            ),
            "state": {"type": "string", "enum": ["open", "resolved"]},
            "occurrences": INTEGER,
            "first_seen": _nullable(TIME),
            "last_seen": _nullable(TIME),
            "resolved_at": _nullable(TIME),
        }
    ),
    "Record": _object(
        {
            "dossier_id": STRING,
            "entity": STRING,
            "sage_key": _nullable(STRING),
            "ssm_id": _nullable(INTEGER),
            "ext_id": _nullable(STRING),
            "origin": STRING,
            "label": STRING,
            "error": _nullable(STRING),
            "deleted": BOOLEAN,
            "updated_at": _nullable(TIME),
        }
    ),
    "SyncRun": _object(
        {
            "id": INTEGER,
            "dossier_id": STRING,
            "entity": STRING,
            "direction": STRING,
            "trigger": STRING,
            "full": BOOLEAN,
            "started_at": STRING,
            "finished_at": _nullable(STRING),
            "outcome": STRING,
            "message": _nullable(STRING),
            "counts": _ref("Counts"),
            "holder": _nullable(
                {"type": "string", "description": "who made the run: host:pid/thread"}
            ),
        }
    ),
    "SyncJob": _object(
        {
            "job_id": INTEGER,
            "dossier_id": STRING,
            "entities": _nullable({"type": "array", "items": STRING}),
            "reason": {"type": "string", "enum": ["sync_now", "retry"]},
            "running": BOOLEAN,
            "started_at": TIME,
            "finished_at": _nullable(TIME),
            "runs": {"type": "array", "items": _ref("SyncRun")},
            "ok": _nullable(BOOLEAN),
            "skipped": _nullable(STRING),
            "error": _nullable(STRING),
            "outcome": _nullable(
                {"type": "string", "description": "succeeded, partial or failed, once finished"}
            ),
            "synced": {"type": "integer", "description": "records created, updated or deleted"},
            "not_synced": {"type": "integer", "description": "records refused or failed"},
            "message": _nullable({"type": "string", "description": "why it failed"}),
        }
    ),
    "HealthDay": _object(
        {
            "day": {"type": "string", "description": "UTC date, ISO 8601"},
            **{
                name: INTEGER
                for name in (
                    "runs",
                    "succeeded",
                    "partial",
                    "interrupted",
                    "failed",
                    "running",
                    "records",
                    "not_synced",
                )
            },
        }
    ),
    "HealthRun": _object(
        {
            "run_id": INTEGER,
            "entity": STRING,
            "direction": STRING,
            "started_at": TIME,
            "outcome": STRING,
            "records": {"type": "integer", "description": "created, updated or deleted"},
            "not_synced": {"type": "integer", "description": "refused or failed"},
        }
    ),
    "Health": _object(
        {
            "dossier_id": STRING,
            "days": {"type": "array", "items": _ref("HealthDay")},
            "runs": {"type": "array", "items": _ref("HealthRun"), "description": "oldest first"},
            "latency_seconds": _nullable(
                {"type": "number", "description": "change latency, when measured"}
            ),
        }
    ),
    "SyncJobAnswer": _object({"job": _nullable(_ref("SyncJob"))}),
    "PreviewWrite": _object(
        {
            "side": {"type": "string", "enum": ["ssm", "sage"]},
            "action": {"type": "string", "enum": ["create", "update", "delete"]},
            "target": STRING,
            "key": _nullable(STRING),
            "id": _nullable(INTEGER),
            "fields": {"type": "object"},
            "changes": {
                "type": "object",
                "additionalProperties": _object({"before": {}, "after": {}}),
            },
        },
        ["side", "action", "target", "key", "id"],
    ),
    "PreviewStep": _object(
        {
            "entity": STRING,
            "direction": STRING,
            "outcome": STRING,
            "message": _nullable(STRING),
            "counts": {"type": "object", "additionalProperties": INTEGER},
            "records": {
                "type": "array",
                "items": _object(
                    {
                        "key": STRING,
                        "action": STRING,
                        "detail": STRING,
                        "writes": {"type": "array", "items": _ref("PreviewWrite")},
                    },
                    ["key", "action"],
                ),
            },
            "writes": {"type": "array", "items": _ref("PreviewWrite")},
        }
    ),
    "Preview": _object(
        {
            "dossier_id": STRING,
            "skipped": _nullable(STRING),
            "error": _nullable(STRING),
            "entities": {"type": "array", "items": _ref("PreviewStep")},
        }
    ),
    "RetryResult": _object(
        {
            "incident_id": INTEGER,
            "retried_by_key": BOOLEAN,
            "job": _nullable(_ref("SyncJob")),
            "busy": _nullable(STRING),
        }
    ),
    "Session": _object(
        {
            "authenticated_by": {"type": "string", "enum": ["bearer", "cookie"]},
            "csrf_token": _nullable(STRING),
            "language": {"type": "string", "enum": ["en", "fr"]},
        }
    ),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


ERROR = _ref("Error")
RESPONSES = {
    "400": _json(ERROR, "a parameter is not valid"),
    "401": _json(ERROR, "no token, or a wrong one"),
}
NOT_FOUND = {"404": _json(ERROR, "no such dossier, run or incident")}
REFUSED = {
    "403": _json(ERROR, "cookie session without its CSRF token (X-CSRF-Token)"),
    "409": _json(ERROR, "the dossier is not in a state that allows it"),
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


DOSSIER_FILTER = _query(
    "dossier",
    {"type": "string", "pattern": "^(all|[A-Za-z0-9_-]{1,32})$"},
    "one dossier id, or all (the default)",
)
DOSSIER_PATH = _path("dossier_id", DOSSIER_ID)
ID_PATH = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _get(
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    *,
    found: bool = False,
    operation_id: str,
) -> dict[str, Any]:
    responses = {"200": ok, **RESPONSES, **(NOT_FOUND if found else {})}
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters or [],
        "responses": responses,
    }


def _post(
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]],
    *,
    operation_id: str,
    status: str = "200",
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [
            *parameters,
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": False,
                "schema": STRING,
                "description": "required with a cookie session, not with a bearer token",
            },
        ],
        "responses": {status: ok, **RESPONSES, **NOT_FOUND, **REFUSED},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 description of every ``/api/`` route."""
    limit = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
    offset = {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}
    since = _query("since", TIME, "only runs started at or after this UTC time")
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": _get(
                "This document",
                _json({"type": "object"}, "the OpenAPI document"),
                operation_id="openapi",
            )
        },
        "/api/session": {
            "get": _get(
                "How this request is authenticated, and the CSRF token of a cookie session",
                _json(_ref("Session"), "the session"),
                operation_id="session",
            )
        },
        "/api/dossiers": {
            "get": _get(
                "Every dossier of the group: proposed, active, inactive (dossiers discover)",
                _json(_list("Dossier"), "the dossiers"),
                operation_id="listDossiers",
            )
        },
        "/api/dossiers/{dossier_id}/activate": {
            "post": _post(
                "Attach the dossier to the implementation and activate it",
                _json(_ref("Dossier"), "the dossier, now active"),
                [DOSSIER_PATH],
                operation_id="activateDossier",
            )
        },
        "/api/dossiers/{dossier_id}/deactivate": {
            "post": _post(
                "Stop syncing the dossier; its data stays in Sales Management",
                _json(_ref("Dossier"), "the dossier, now inactive"),
                [DOSSIER_PATH],
                operation_id="deactivateDossier",
            )
        },
        "/api/dossiers/{dossier_id}/sync": {
            "get": _get(
                "The latest sync started through the page or the API for this dossier",
                _json(_ref("SyncJobAnswer"), "the latest sync, or null"),
                [DOSSIER_PATH],
                found=True,
                operation_id="latestSync",
            ),
            "post": _post(
                "Sync the dossier now, in the background",
                _json(_ref("SyncJob"), "the sync, started"),
                [
                    DOSSIER_PATH,
                    _query(
                        "entity",
                        {"type": "array", "items": STRING},
                        "only these entities (repeat the parameter)",
                    ),
                ],
                operation_id="syncDossier",
                status="202",
            ),
        },
        "/api/dossiers/{dossier_id}/preview": {
            "post": _post(
                "What the next sync of the dossier would do, per entity and direction, "
                "record by record; writes nothing anywhere (sync --dry-run)",
                _json(_ref("Preview"), "the preview"),
                [
                    DOSSIER_PATH,
                    _query(
                        "entity",
                        {"type": "array", "items": STRING},
                        "only these entities (repeat the parameter)",
                    ),
                ],
                operation_id="previewDossier",
            ),
        },
        "/api/status": {
            "get": _get(
                "Per dossier and entity: last run per direction, records per sync label, "
                "open incidents (status)",
                _json(_list("DossierStatus"), "the status"),
                [DOSSIER_FILTER],
                found=True,
                operation_id="status",
            )
        },
        "/api/schedule": {
            "get": _get(
                "Per dossier: next scheduled run and the runs in progress",
                _json(_list("Schedule"), "the schedule"),
                [DOSSIER_FILTER],
                found=True,
                operation_id="schedule",
            )
        },
        "/api/dossiers/{dossier_id}/journal": {
            "get": _get(
                "The dossier's journal, newest first (journal)",
                _json(_list("Run"), "runs"),
                [
                    DOSSIER_PATH,
                    _query("limit", limit, "runs per page"),
                    _query("offset", offset, "runs to skip"),
                    since,
                ],
                found=True,
                operation_id="journal",
            )
        },
        "/api/dossiers/{dossier_id}/health": {
            "get": _get(
                "The dossier's runs per day (last 14 days) and records per run (last 30)",
                _json(_ref("Health"), "what the status page draws"),
                [DOSSIER_PATH],
                found=True,
                operation_id="health",
            )
        },
        "/api/dossiers/{dossier_id}/journal.csv": {
            "get": _get(
                "The dossier's journal as CSV, newest first",
                {
                    "description": "one line per run",
                    "content": {"text/csv": {"schema": STRING}},
                },
                [DOSSIER_PATH, since],
                found=True,
                operation_id="journalCsv",
            )
        },
        "/api/dossiers/{dossier_id}/runs/{run_id}": {
            "get": _get(
                "One run of the dossier's journal",
                _json(_ref("Run"), "the run"),
                [DOSSIER_PATH, _path("run_id", ID_PATH)],
                found=True,
                operation_id="run",
            )
        },
        "/api/dossiers/{dossier_id}/runs/{run_id}/events": {
            "get": _get(
                "The per-record events of one run (journal --run)",
                _json(_list("Event"), "events"),
                [DOSSIER_PATH, _path("run_id", ID_PATH)],
                found=True,
                operation_id="runEvents",
            )
        },
        "/api/dossiers/{dossier_id}/records": {
            "get": _get(
                "Linked records with their sync label (records)",
                _json(_list("Record"), "records"),
                [
                    DOSSIER_PATH,
                    _query("entity", STRING, "only this entity"),
                    _query(
                        "label",
                        {
                            "type": "string",
                            "enum": ["synced", "pending", "pending_review", "error"],
                        },
                        "only this sync label",
                    ),
                    _query("limit", {**limit, "maximum": 100_000, "default": 1000}, "at most"),
                ],
                found=True,
                operation_id="records",
            )
        },
        "/api/incidents": {
            "get": _get(
                "Incidents, filtered (incidents)",
                _json(_list("Incident"), "incidents"),
                [
                    DOSSIER_FILTER,
                    _query(
                        "state",
                        {"type": "string", "enum": ["open", "resolved", "all"], "default": "all"},
                        "open, resolved or all",
                    ),
                    _query("entity", STRING, "only this entity"),
                    _query("kind", STRING, "only this kind"),
                ],
                found=True,
                operation_id="incidents",
            )
        },
        "/api/incidents/{incident_id}": {
            "get": _get(
                "One incident",
                _json(_ref("Incident"), "the incident"),
                [_path("incident_id", ID_PATH)],
                found=True,
                operation_id="incident",
            )
        },
        "/api/incidents/{incident_id}/retry": {
            "post": _post(
                "Retry now: mark the record for retry by key and sync its dossier and entity",
                _json(_ref("RetryResult"), "what was done"),
                [_path("incident_id", ID_PATH)],
                operation_id="retryIncident",
                status="202",
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "dossiersync status API",
            "version": __version__,
            "description": (
                "The data of the dossiersync status page: the same as the command line's "
                "--json output. Every call needs the access token."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerToken": {"type": "http", "scheme": "bearer"}},
        },
    }
