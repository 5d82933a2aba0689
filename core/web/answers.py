"""The shapes of the JSON API's answers and parameters, as marshmallow schemas.

They only describe: handlers answer the dicts of ``reports``, ``queries`` and
``dossiers``, and ``openapi.py`` turns these schemas into the OpenAPI document's
components (apispec's marshmallow plugin; a class ``RunSchema`` is the component
``Run``). Every field of an answer is required unless declared ``optional``; a
``null`` value is allowed only where ``null=True``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from .params import MAX_ID

TIME = "UTC, ISO 8601 to the second, with Z"
DOSSIER_ID = r"^[A-Za-z0-9_-]{1,32}$"
LABELS = ["synced", "pending", "pending_review", "error"]


def _options(null: bool, optional: bool, doc: str | None) -> dict[str, Any]:
    return {
        "required": not optional,
        "allow_none": null,
        "metadata": {"description": doc} if doc else {},
    }


def string(
    *, null: bool = False, optional: bool = False, doc: str | None = None, **more: Any
) -> fields.String:
    return fields.String(**_options(null, optional, doc), **more)


def one_of(choices: list[str], *, null: bool = False, doc: str | None = None) -> fields.String:
    return string(null=null, doc=doc, validate=validate.OneOf(choices))


def time(*, null: bool = False) -> fields.String:
    return string(null=null, doc=TIME)


def integer(
    *, null: bool = False, optional: bool = False, doc: str | None = None
) -> fields.Integer:
    return fields.Integer(**_options(null, optional, doc))


def number(*, null: bool = False, doc: str | None = None) -> fields.Float:
    return fields.Float(**_options(null, False, doc))


def boolean(
    *, null: bool = False, optional: bool = False, doc: str | None = None
) -> fields.Boolean:
    return fields.Boolean(**_options(null, optional, doc))


def nested(schema: type[Schema], *, null: bool = False) -> fields.Nested:
    return fields.Nested(schema, **_options(null, False, None))


def listing(item: fields.Field, *, null: bool = False, doc: str | None = None) -> fields.List:
    return fields.List(item, **_options(null, False, doc))


def mapping(
    values: fields.Field | None = None, *, null: bool = False, doc: str | None = None
) -> fields.Dict:
    return fields.Dict(values=values, **_options(null, False, doc))


def _counts(name: str, names: tuple[str, ...]) -> type[Schema]:
    return Answer.from_dict({n: integer() for n in names}, name=name)


class Answer(Schema):
    """An object of an answer: the fields it declares, more allowed."""

    class Meta:
        unknown = EXCLUDE


class ErrorSchema(Answer):
    error = string()
    detail = string(null=True, optional=True)


class DossierSchema(Answer):
    id = string()
    name = string()
    state = one_of(["new", "active", "inactive"])
    origin = string()
    entities = listing(fields.String())
    in_configuration = boolean()
    linked_records = integer(optional=True)
    open_incidents = integer(optional=True)
    needs_full_sync = boolean(optional=True)
    previously_synced = boolean(null=True, optional=True)
    records_in_ssm = integer(null=True, optional=True)
    reachable = boolean(null=True, optional=True)
    source_error = string(null=True, optional=True)


CountsSchema = _counts(
    "Counts",
    ("read", "created", "updated", "deleted", "unchanged", "pending", "refused", "failed"),
)
RecordsByLabelSchema = _counts(
    "RecordsByLabel", ("synced", "pending", "pending_review", "error", "deleted")
)


class RunSchema(Answer):
    run_id = integer()
    dossier_id = string()
    entity = string()
    direction = string()
    trigger = string()
    full = boolean()
    started_at = time(null=True)
    finished_at = time(null=True)
    duration_seconds = number(null=True)
    outcome = string(doc="succeeded, partial, failed, or running while it runs")
    message = string(null=True)
    counts = nested(CountsSchema)
    holder = string(null=True, doc="who made the run: host:pid/thread")


class EntityStatusSchema(Answer):
    entity = string()
    records = nested(RecordsByLabelSchema)
    open_incidents = integer()
    last_runs = listing(fields.Nested(RunSchema))


class DossierStatusSchema(Answer):
    id = string()
    name = string()
    state = string()
    needs_full_sync = boolean()
    open_incidents = integer()
    synced_by = string(null=True, doc="lease holder host:pid/thread, now")
    entities = listing(fields.Nested(EntityStatusSchema))


class ScheduleSchema(Answer):
    dossier_id = string()
    state = string()
    interval_seconds = number()
    last_started_at = time(null=True)
    last_finished_at = time(null=True)
    next_run_at = time(null=True)
    scheduled_here = boolean(doc="this process runs the service's schedule (dossiersync run)")
    due = boolean()
    synced_by = string(null=True, doc="lease holder host:pid/thread")
    running_runs = listing(fields.Integer())
    interrupted_runs = listing(fields.Integer())


class EventSchema(Answer):
    event_id = integer()
    run_id = integer()
    entity = string()
    record_key = string()
    action = string()
    detail = string(null=True)
    at = time(null=True)


class IncidentSchema(Answer):
    incident_id = integer()
    dossier_id = string()
    entity = string(null=True)
    record_key = string(null=True)
    direction = string(null=True)
    kind = string()
    field = string(null=True)
    message = string()
    detail = mapping(
        null=True,
        doc="what the message says, as data: kind, record (Sage key, SSM id), the rule an "
        "invalid field breaks; null for older incidents",
    )
    state = one_of(["open", "resolved"])
    occurrences = integer()
    first_seen = time(null=True)
    last_seen = time(null=True)
    resolved_at = time(null=True)


class RecordSchema(Answer):
    dossier_id = string()
    entity = string()
    sage_key = string(null=True)
    ssm_id = integer(null=True)
    ext_id = string(null=True)
    origin = string()
    label = string()
    error = string(null=True)
    deleted = boolean()
    updated_at = time(null=True)


class SyncRunSchema(Answer):
    id = integer()
    dossier_id = string()
    entity = string()
    direction = string()
    trigger = string()
    full = boolean()
    started_at = string()
    finished_at = string(null=True)
    outcome = string()
    message = string(null=True)
    counts = nested(CountsSchema)


class SyncJobSchema(Answer):
    job_id = integer()
    dossier_id = string()
    entities = listing(fields.String(), null=True)
    reason = one_of(["sync_now", "retry"])
    running = boolean()
    started_at = time()
    finished_at = time(null=True)
    runs = listing(fields.Nested(SyncRunSchema))
    ok = boolean(null=True)
    skipped = string(null=True)
    error = string(null=True)
    outcome = string(null=True, doc="succeeded, partial or failed, once finished")
    synced = integer(doc="records created, updated or deleted")
    not_synced = integer(doc="records refused or failed")
    message = string(null=True, doc="why it failed")


HealthDaySchema = Answer.from_dict(
    {
        "day": string(doc="UTC date, ISO 8601"),
        **{
            name: integer()
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
    },
    name="HealthDay",
)


class HealthRunSchema(Answer):
    run_id = integer()
    entity = string()
    direction = string()
    started_at = time()
    outcome = string()
    records = integer(doc="created, updated or deleted")
    not_synced = integer(doc="refused or failed")


class HealthSchema(Answer):
    dossier_id = string()
    days = listing(fields.Nested(HealthDaySchema))
    runs = listing(fields.Nested(HealthRunSchema), doc="oldest first")
    latency_seconds = number(null=True, doc="change latency, when measured")


class SyncJobAnswerSchema(Answer):
    job = nested(SyncJobSchema, null=True)


class ChangeSchema(Answer):
    before = fields.Raw(required=True, allow_none=True)
    after = fields.Raw(required=True, allow_none=True)


class PreviewWriteSchema(Answer):
    side = one_of(["ssm", "sage"])
    action = one_of(["create", "update", "delete"])
    target = string()
    key = string(null=True)
    id = integer(null=True)
    fields_ = fields.Dict(data_key="fields")
    changes = fields.Dict(values=fields.Nested(ChangeSchema))


class PreviewRecordSchema(Answer):
    key = string()
    action = string()
    detail = fields.String()
    writes = fields.List(fields.Nested(PreviewWriteSchema))


class PreviewStepSchema(Answer):
    entity = string()
    direction = string()
    outcome = string()
    message = string(null=True)
    counts = mapping(fields.Integer())
    records = listing(fields.Nested(PreviewRecordSchema))
    writes = listing(fields.Nested(PreviewWriteSchema))


class PreviewSchema(Answer):
    dossier_id = string()
    skipped = string(null=True)
    error = string(null=True)
    entities = listing(fields.Nested(PreviewStepSchema))


class RetryResultSchema(Answer):
    incident_id = integer()
    retried_by_key = boolean()
    job = nested(SyncJobSchema, null=True)
    busy = string(null=True)


class SessionSchema(Answer):
    authenticated_by = one_of(["bearer", "cookie"])
    csrf_token = string(null=True)
    language = one_of(["en", "fr"])


# -- parameters -----------------------------------------------------------------------------


def query_text(doc: str) -> fields.String:
    return fields.String(metadata={"description": doc})


def query_int(default: int, minimum: int, maximum: int, doc: str) -> fields.Integer:
    return fields.Integer(
        load_default=default,
        validate=validate.Range(minimum, maximum),
        metadata={"description": doc},
    )


SINCE = fields.String(metadata={"description": "only runs started at or after this UTC time"})
ID = fields.Integer(validate=validate.Range(1, MAX_ID))


class DossierPath(Schema):
    dossier_id = fields.String(validate=validate.Regexp(DOSSIER_ID))


class DossierFilter(Schema):
    dossier = fields.String(
        validate=validate.Regexp(r"^(all|[A-Za-z0-9_-]{1,32})$"),
        metadata={"description": "one dossier id, or all (the default)"},
    )


class EntitiesQuery(Schema):
    entity = fields.List(
        fields.String(), metadata={"description": "only these entities (repeat the parameter)"}
    )


class JournalQuery(Schema):
    limit = query_int(50, 1, 1000, "runs per page")
    offset = query_int(0, 0, 1_000_000, "runs to skip")
    since = SINCE


class SinceQuery(Schema):
    since = SINCE


class RecordsQuery(Schema):
    entity = query_text("only this entity")
    label = fields.String(
        validate=validate.OneOf(LABELS), metadata={"description": "only this sync label"}
    )
    limit = query_int(1000, 1, 100_000, "at most")


class IncidentsQuery(DossierFilter):
    state = fields.String(
        load_default="all",
        validate=validate.OneOf(["open", "resolved", "all"]),
        metadata={"description": "open, resolved or all"},
    )
    entity = query_text("only this entity")
    kind = query_text("only this kind")


class CsrfHeader(Schema):
    csrf_token = fields.String(
        data_key="X-CSRF-Token",
        metadata={"description": "required with a cookie session, not with a bearer token"},
    )
