"""Read-only views of the state: status, journal, incidents (for the CLI and pages)."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import func, select

from .config import Config
from .dossiers import views
from .journal import COUNTS, iso_utc, run_json, utcnow
from .state.models import Event, Incident, Latency, Lease, Link, Run, Watch
from .state.store import StateStore
from .vocabulary import DossierState


def run_dict(run: Run) -> dict[str, Any]:
    return run_json(
        run_id=run.id,
        dossier_id=run.dossier_id,
        entity=run.entity,
        direction=run.direction,
        trigger=run.trigger,
        full=run.full,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,
        message=run.message,
        counts={name: getattr(run, name) for name in COUNTS},
        holder=run.holder,
    )


def status(
    config: Config, store: StateStore, dossier_id: str | None = None
) -> list[dict[str, Any]]:
    """Per dossier (active and inactive): state, who syncs it now (``synced_by``: the
    lease holder ``host:pid/thread``, or None), last run per entity and direction (each
    with the ``holder`` that made it), records per sync label, open incidents."""
    out = []
    now = utcnow()
    with store.session() as s:
        # who syncs each dossier now: this process, another, or a worker of any machine
        held = {
            lease.dossier_id: lease.holder
            for lease in s.scalars(select(Lease).where(Lease.expires_at > now))
        }
    for view in views(config, store):
        if dossier_id and view.id != dossier_id:
            continue
        if view.state == DossierState.NEW and not dossier_id:
            continue
        with store.session() as s:
            labels: dict[str, dict[str, int]] = {}
            for entity, label, n in s.execute(
                select(Link.entity, Link.label, func.count())
                .where(Link.dossier_id == view.id, Link.deleted.is_(False))
                .group_by(Link.entity, Link.label)
            ):
                labels.setdefault(entity, {})[label] = int(n)
            deleted = dict(
                s.execute(
                    select(Link.entity, func.count())
                    .where(Link.dossier_id == view.id, Link.deleted.is_(True))
                    .group_by(Link.entity)
                ).all()
            )
            last_ids = s.execute(
                select(func.max(Run.id))
                .where(Run.dossier_id == view.id)
                .group_by(Run.entity, Run.direction)
            ).scalars()
            last_runs = [
                run_dict(r) for r in s.scalars(select(Run).where(Run.id.in_(list(last_ids))))
            ]
            open_incidents = dict(
                s.execute(
                    select(Incident.entity, func.count())
                    .where(Incident.dossier_id == view.id, Incident.state == "open")
                    .group_by(Incident.entity)
                ).all()
            )
        entities = sorted(set(view.entities) | set(labels) | {r["entity"] for r in last_runs})
        per_entity = []
        for name in entities:
            counts = labels.get(name, {})
            per_entity.append(
                {
                    "entity": name,
                    "records": {
                        "synced": counts.get("synced", 0),
                        "pending": counts.get("pending", 0),
                        "pending_review": counts.get("pending_review", 0),
                        "error": counts.get("error", 0),
                        "deleted": int(deleted.get(name, 0)),
                    },
                    "open_incidents": int(open_incidents.get(name, 0)),
                    "last_runs": sorted(
                        (r for r in last_runs if r["entity"] == name),
                        key=lambda r: r["direction"],
                    ),
                }
            )
        out.append(
            {
                "id": view.id,
                "name": view.name,
                "state": view.state,
                "needs_full_sync": view.needs_full_sync,
                "open_incidents": view.open_incidents,
                "synced_by": held.get(view.id),
                "changes": changes(store, view.id),
                "entities": per_entity,
            }
        )
    return out


def changes(store: StateStore, dossier_id: str) -> dict[str, dict[str, Any]]:
    """Per side (``sage``, ``ssm``): what the service's change probes saw — probes made,
    the last one, the last change seen — and how long a change took to be written on
    the other side (median over the last hour, and how many changes it covers)."""
    since = utcnow() - timedelta(hours=1)
    out: dict[str, dict[str, Any]] = {}
    with store.session() as s:
        watched = {
            w.side: w for w in s.scalars(select(Watch).where(Watch.dossier_id == dossier_id))
        }
        for side in ("sage", "ssm"):
            row = watched.get(side)
            seconds = sorted(
                s.scalars(
                    select(Latency.seconds).where(
                        Latency.dossier_id == dossier_id,
                        Latency.side == side,
                        Latency.synced_at >= since,
                    )
                )
            )
            out[side] = {
                "probes": row.probes if row else 0,
                "last_probe_at": iso_utc(row.last_probe_at) if row else None,
                "last_change_at": iso_utc(row.last_change_at) if row else None,
                "latency_p50_seconds": round(median(seconds), 1) if seconds else None,
                "latency_samples": len(seconds),
            }
    return out


def journal(
    store: StateStore,
    dossier_id: str,
    *,
    run_id: int | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The dossier's runs, newest first; with ``run_id``, that run's per-record events."""
    with store.session() as s:
        if run_id is not None:
            events = s.scalars(
                select(Event)
                .where(Event.run_id == run_id, Event.dossier_id == dossier_id)
                .order_by(Event.id)
            )
            return [
                {
                    "event_id": e.id,
                    "run_id": e.run_id,
                    "entity": e.entity,
                    "record_key": e.record_key,
                    "action": e.action,
                    "detail": e.detail,
                    "at": iso_utc(e.at),
                }
                for e in events
            ]
        stmt = select(Run).where(Run.dossier_id == dossier_id)
        if since is not None:
            stmt = stmt.where(Run.started_at >= since)
        runs = s.scalars(stmt.order_by(Run.id.desc()).limit(limit))
        return [run_dict(r) for r in runs]


def incidents(
    store: StateStore,
    dossier_id: str | None = None,
    *,
    state: str | None = None,
    entity: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    """Incidents, filtered by dossier, state (``open_only`` = state open), entity, kind."""
    if open_only:
        state = "open"
    with store.session() as s:
        stmt = select(Incident)
        if dossier_id:
            stmt = stmt.where(Incident.dossier_id == dossier_id)
        if state:
            stmt = stmt.where(Incident.state == state)
        if kind:
            stmt = stmt.where(Incident.kind == kind)
        if entity:
            stmt = stmt.where(Incident.entity == entity)
        return [
            {
                "incident_id": i.id,
                "dossier_id": i.dossier_id,
                "entity": i.entity,
                "record_key": i.record_key,
                "direction": i.direction,
                "kind": i.kind,
                "field": i.field,
                "message": i.message,
                "detail": i.detail,
                "state": i.state,
                "occurrences": i.occurrences,
                "first_seen": iso_utc(i.first_seen),
                "last_seen": iso_utc(i.last_seen),
                "resolved_at": iso_utc(i.resolved_at),
            }
            for i in s.scalars(stmt.order_by(Incident.id))
        ]


LABELS = ("synced", "pending", "pending_review", "error")


def records(
    store: StateStore,
    dossier_id: str,
    *,
    entity: str | None = None,
    label: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Linked records of a dossier with their sync label (and error message)."""
    with store.session() as s:
        stmt = select(Link).where(Link.dossier_id == dossier_id)
        if entity:
            stmt = stmt.where(Link.entity == entity)
        if label:
            stmt = stmt.where(Link.label == label)
        stmt = stmt.order_by(Link.entity, Link.sage_key).limit(limit)
        return [
            {
                "dossier_id": link.dossier_id,
                "entity": link.entity,
                "sage_key": link.sage_key,
                "ssm_id": link.ssm_id,
                "ext_id": link.ext_id,
                "origin": link.origin,
                "label": link.label,
                "error": link.last_error,
                "deleted": link.deleted,
                "updated_at": iso_utc(link.updated_at),
            }
            for link in s.scalars(stmt)
        ]


JOURNAL_COLUMNS = (
    "run_id",
    "dossier_id",
    "entity",
    "direction",
    "trigger",
    "full",
    "started_at",
    "finished_at",
    "duration_seconds",
    "outcome",
    "message",
)


def journal_csv(rows: list[dict[str, Any]]) -> str:
    """Runs (or one run's events) as CSV, counts flattened into columns; a text cell a
    spreadsheet would run as a formula is quoted (Sage keys and SSM texts are data)."""
    import csv
    import io

    from .display import spreadsheet_cell as cell

    out = io.StringIO()
    if rows and "event_id" in rows[0]:
        events = csv.DictWriter(out, fieldnames=list(rows[0]))
        events.writeheader()
        events.writerows({k: cell(v) for k, v in row.items()} for row in rows)
        return out.getvalue()
    writer = csv.writer(out)
    writer.writerow([*JOURNAL_COLUMNS, *COUNTS, "holder"])
    for row in rows:
        writer.writerow(
            [cell(row[c]) for c in JOURNAL_COLUMNS]
            + [row["counts"][c] for c in COUNTS]
            + [cell(row.get("holder"))]
        )
    return out.getvalue()
