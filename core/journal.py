"""Per-dossier journal (runs and per-record events) and incidents."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .state.models import Incident, Run
from .state.store import PENDING_EVENTS, after_commit
from .vocabulary import RunOutcome

COUNTS = (
    "read",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "pending",
    "refused",
    "failed",
)
#: the most characters a journaled text keeps (a run's message, an event's detail, an
#: incident's message and the cause in its detail): a cause quoted from another system
#: (an API's error text, a driver's) can be megabytes, and is stored with every occurrence
MAX_TEXT = 4000


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} characters cut)"


def _bounded_detail(value: Any) -> Any:
    """An incident's detail with every text in it bounded."""
    if isinstance(value, str):
        return bounded(value)
    if isinstance(value, dict):
        return {k: _bounded_detail(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded_detail(v) for v in value]
    return value


def utcnow() -> datetime:
    """Naive UTC timestamp (the state store keeps UTC without zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(value: datetime | None) -> str | None:
    """A stored (naive UTC) timestamp as every output shows it: ISO 8601 to the second,
    with ``Z`` (``2026-11-28T06:47:02Z``)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def run_json(
    *,
    run_id: int,
    dossier_id: str,
    entity: str,
    direction: str,
    trigger: str,
    full: bool,
    started_at: datetime,
    finished_at: datetime | None,
    outcome: str,
    message: str | None,
    counts: dict[str, int],
    holder: str | None = None,
) -> dict[str, Any]:
    """One run as ``sync --json``, ``journal --json`` and ``status --json`` show it."""
    duration = (
        round((finished_at - started_at).total_seconds(), 3) if finished_at is not None else None
    )
    return {
        "run_id": run_id,
        "dossier_id": dossier_id,
        "entity": entity,
        "direction": direction,
        "trigger": trigger,
        "full": full,
        "started_at": iso_utc(started_at),
        "finished_at": iso_utc(finished_at),
        "duration_seconds": duration,
        "outcome": outcome,
        "message": message,
        "counts": {name: int(counts.get(name) or 0) for name in COUNTS},
        "holder": holder,
    }


@dataclass
class RunRecord:
    """What a running sync process has done so far."""

    id: int
    dossier_id: str
    entity: str
    direction: str
    trigger: str
    full: bool
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = RunOutcome.RUNNING
    message: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    #: how many records the pass expects to read, when it knows at little cost (the Sage
    #: rows changed since the cursor): what progress is measured against; not journaled
    total: int | None = None
    #: who makes the run: ``host:pid/thread`` (the lease holder)
    holder: str | None = None
    #: once finished: how many runs of this dossier x entity x direction failed in a row,
    #: this one included (0 when it did not fail), read from the journal
    failed_in_a_row: int = 0

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def as_dict(self) -> dict[str, Any]:
        return run_json(
            run_id=self.id,
            dossier_id=self.dossier_id,
            entity=self.entity,
            direction=self.direction,
            trigger=self.trigger,
            full=self.full,
            started_at=self.started_at,
            finished_at=self.finished_at,
            outcome=self.outcome,
            message=self.message,
            counts=self.counts,
            holder=self.holder,
        )


def holder_name() -> str:
    """This process and thread, ``host:pid/thread``: who makes a run, and who holds a
    dossier's lease (two threads never share one)."""
    return f"{socket.gethostname()}:{os.getpid()}/{threading.get_native_id()}"


def start_run(
    session: Session, dossier_id: str, entity: str, direction: str, trigger: str, full: bool
) -> RunRecord:
    holder = holder_name()
    run = Run(
        dossier_id=dossier_id,
        entity=entity,
        direction=direction,
        trigger=trigger,
        full=full,
        started_at=utcnow(),
        outcome=RunOutcome.RUNNING,
        holder=holder,
    )
    session.add(run)
    session.commit()
    return RunRecord(
        id=run.id,
        dossier_id=dossier_id,
        entity=entity,
        direction=direction,
        trigger=trigger,
        full=full,
        started_at=run.started_at,
        holder=holder,
    )


def finish_run(session: Session, record: RunRecord) -> None:
    """Journal how a run ended, and count the runs failed in a row with it."""
    record.finished_at = utcnow()
    session.execute(
        update(Run)
        .where(Run.id == record.id)
        .values(
            finished_at=record.finished_at,
            outcome=record.outcome,
            message=None if record.message is None else bounded(record.message),
            **record.counts,
        )
    )
    record.failed_in_a_row = (
        failed_in_a_row(session, record) if record.outcome == RunOutcome.FAILED else 0
    )
    session.commit()


def failed_in_a_row(session: Session, record: RunRecord) -> int:
    """How many runs of the record's dossier x entity x direction failed since the last
    one that ran to its end (``succeeded`` or ``partial``); interrupted runs do not count
    and do not break the streak."""
    same = (
        Run.dossier_id == record.dossier_id,
        Run.entity == record.entity,
        Run.direction == record.direction,
    )
    last_done = session.scalar(
        select(func.max(Run.id)).where(
            *same, Run.outcome.in_((RunOutcome.SUCCEEDED, RunOutcome.PARTIAL))
        )
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(Run)
            .where(*same, Run.outcome == RunOutcome.FAILED, Run.id > (last_done or 0))
        )
        or 0
    )


class Action(StrEnum):
    """What a run did to one record: a journal event's ``action``."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    FAILED = "failed"
    PENDING = "pending"
    KEPT = "kept"
    CONFLICT = "conflict"
    UNCHANGED = "unchanged"
    DROPPED = "dropped"


def add_event(
    session: Session, run: RunRecord, record_key: str, action: str, detail: str | None = None
) -> None:
    """Journal what a run did to one record.

    A pass journals every record it reads: the events are written together, in one
    multi-row insert, when the session next flushes or commits (see
    ``dossiersync.state.store``), not one ORM object at a time.
    """
    pending = session.info.get(PENDING_EVENTS)
    if pending is None:
        session.connection()  # the transaction these events belong to (a rollback drops them)
        pending = session.info[PENDING_EVENTS] = []
    pending.append(
        {
            "run_id": run.id,
            "dossier_id": run.dossier_id,
            "entity": run.entity,
            "record_key": record_key[:240],
            "action": action,
            "detail": None if detail is None else bounded(detail),
            "at": utcnow(),
        }
    )


@dataclass(frozen=True)
class IncidentRecord:
    """One occurrence of an incident, as the hooks are told of it."""

    id: int
    dossier_id: str
    entity: str | None
    record_key: str | None
    direction: str | None
    kind: str
    #: what is wrong and what to do, in words (English), secrets removed
    message: str
    field: str | None
    #: 1 when the incident was just opened, then one more each time it recurs while open;
    #: an incident resolved and seen again is a new one (a new id, counting from 1)
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    run_id: int | None


def _count_incident(
    session: Session,
    dossier_id: str,
    *,
    entity: str | None,
    record_key: str | None,
    direction: str | None,
    kind: str,
    message: str,
    field_name: str | None,
    run_id: int | None,
    detail: dict[str, Any] | None,
) -> tuple[Incident, bool]:
    now = utcnow()
    message, detail = bounded(message), _bounded_detail(detail)
    existing = session.scalars(
        select(Incident).where(
            Incident.dossier_id == dossier_id,
            Incident.entity.is_(None) if entity is None else Incident.entity == entity,
            Incident.record_key.is_(None)
            if record_key is None
            else Incident.record_key == record_key,
            Incident.direction.is_(None) if direction is None else Incident.direction == direction,
            Incident.kind == kind,
            Incident.state == "open",
        )
    ).first()
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen = now
        existing.message = message
        existing.field = field_name
        existing.detail = detail
        existing.last_run_id = run_id
        return existing, False
    row = Incident(
        dossier_id=dossier_id,
        entity=entity,
        record_key=record_key,
        direction=direction,
        kind=kind,
        field=field_name,
        message=message,
        detail=detail,
        first_seen=now,
        last_seen=now,
        occurrences=1,
        state="open",
        last_run_id=run_id,
    )
    session.add(row)
    return row, True


def open_incident(
    session: Session,
    dossier_id: str,
    *,
    entity: str | None,
    record_key: str | None,
    direction: str | None,
    kind: str,
    message: str,
    field_name: str | None = None,
    run_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Open an incident, or count one more occurrence of the same open one.

    ``message`` is the English text; ``detail`` the notice it was written from
    (``dossiersync.messages.Notice``), from which the page writes it in French.
    Returns True when a new incident was opened.  No hook is told: a sync records its
    incidents with :func:`record_incident`.
    """
    _row, opened = _count_incident(
        session,
        dossier_id,
        entity=entity,
        record_key=record_key,
        direction=direction,
        kind=kind,
        message=message,
        field_name=field_name,
        run_id=run_id,
        detail=detail,
    )
    return opened


def record_incident(
    session: Session,
    hooks: Any,
    dossier_id: str,
    *,
    entity: str | None,
    record_key: str | None,
    direction: str | None,
    kind: str,
    message: str,
    field_name: str | None = None,
    run_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Open an incident or count one more occurrence of it (as :func:`open_incident`),
    and tell the plugins once the session commits it (never if it is rolled back):
    ``dossiersync_incident_occurred`` every time, ``dossiersync_incident_opened`` when it
    is new.  ``hooks`` is the dossier's hook caller (``registry.dossier_hooks``).
    """
    message = bounded(message)
    row, opened = _count_incident(
        session,
        dossier_id,
        entity=entity,
        record_key=record_key,
        direction=direction,
        kind=kind,
        message=message,
        field_name=field_name,
        run_id=run_id,
        detail=detail,
    )
    # what this occurrence is, now: the row may count more before the commit
    occurrences, first_seen, last_seen = row.occurrences, row.first_seen, row.last_seen

    def tell() -> None:
        incident = IncidentRecord(
            id=row.id,  # known once committed (sessions do not expire on commit)
            dossier_id=dossier_id,
            entity=entity,
            record_key=record_key,
            direction=direction,
            kind=kind,
            message=message,
            field=field_name,
            occurrences=occurrences,
            first_seen=first_seen,
            last_seen=last_seen,
            run_id=run_id,
        )
        if opened:
            hooks.dossiersync_incident_opened(
                dossier=dossier_id,
                entity=entity,
                record_key=record_key,
                kind=kind,
                message=message,
                direction=direction,
                incident_id=incident.id,
            )
        hooks.dossiersync_incident_occurred(incident=incident)

    after_commit(session, tell)


def resolve_incidents(
    session: Session,
    dossier_id: str,
    entity: str | None,
    *,
    record_keys: list[str] | None = None,
    direction: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> int:
    """Close the open incidents of these records (or of the run when keys is None)."""
    stmt = update(Incident).where(
        Incident.dossier_id == dossier_id,
        Incident.state == "open",
    )
    if entity is not None:
        stmt = stmt.where(Incident.entity == entity)
    if record_keys is not None:
        if not record_keys:
            return 0
        stmt = stmt.where(Incident.record_key.in_(record_keys))
    else:
        stmt = stmt.where(Incident.record_key.is_(None))
    if direction is not None:
        stmt = stmt.where(Incident.direction == direction)
    if kinds is not None:
        stmt = stmt.where(Incident.kind.in_(kinds))
    result = session.execute(
        stmt.values(state="resolved", resolved_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)
