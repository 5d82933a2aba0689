"""When each dossier syncs next, and what is syncing now.

The service (``dossiersync run``) syncs an active dossier every ``interval_seconds`` (its
own, else ``service.interval_seconds``) after its last pass started, and a dossier that
never synced at once.  The page estimates the next run from the journal: the start of
the dossier's latest pass (its runs that started within one interval of the newest one)
plus the interval.  An inactive dossier has no next run.  A run still marked
``running`` is live only while the dossier's lease is held; otherwise its process ended
without closing it (killed, crashed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..config import Config
from ..journal import iso_utc, utcnow
from ..state.models import Lease
from ..state.store import StateStore
from ..vocabulary import DossierState, RunOutcome


def leases(store: StateStore) -> dict[str, str]:
    """Holder (``host:pid/thread``) of each dossier whose sync lease is held now."""
    now = utcnow()
    with store.session() as s:
        rows = s.scalars(select(Lease).where(Lease.expires_at > now))
        return {lease.dossier_id: lease.holder for lease in rows}


def interval_seconds(config: Config, dossier_id: str) -> float:
    dossier = config.dossiers.get(dossier_id)
    if dossier is not None and dossier.interval_seconds:
        return float(dossier.interval_seconds)
    return float(config.service.interval_seconds)


def _parse(value: str | None) -> datetime | None:
    # the reports say UTC with a Z; the schedule reckons in naive UTC, as utcnow()
    return datetime.fromisoformat(value).replace(tzinfo=None) if value else None


def schedule(
    config: Config, status: list[dict[str, Any]], held: dict[str, str], *, here: bool = False
) -> list[dict[str, Any]]:
    """Per dossier of ``status`` (as built by ``reports.status``): next run and live runs.

    ``here``: this process runs the service's schedule; else ``next_run_at`` is only
    when the service would sync the dossier, were one running.
    """
    now = utcnow()
    out = []
    for dossier in status:
        runs = [r for e in dossier["entities"] for r in e["last_runs"]]
        every = interval_seconds(config, dossier["id"])
        starts = [t for t in (_parse(r["started_at"]) for r in runs) if t is not None]
        ends = [t for t in (_parse(r["finished_at"]) for r in runs) if t is not None]
        pass_start = None
        if starts:
            newest = max(starts)
            pass_start = min(t for t in starts if t > newest - timedelta(seconds=every))
        active = dossier["state"] == DossierState.ACTIVE
        next_run = pass_start + timedelta(seconds=every) if active and pass_start else None
        holder = held.get(dossier["id"])
        running = [r for r in runs if r["outcome"] == RunOutcome.RUNNING]
        out.append(
            {
                "dossier_id": dossier["id"],
                "state": dossier["state"],
                "interval_seconds": every,
                "last_started_at": iso_utc(pass_start),
                "last_finished_at": iso_utc(max(ends) if ends else None),
                "next_run_at": iso_utc(next_run),
                "scheduled_here": here,
                # due: the service's next cycle syncs it (never synced, or its time passed)
                "due": active and (next_run is None or next_run <= now),
                "synced_by": holder,
                "running_runs": [r["run_id"] for r in running if holder is not None],
                "interrupted_runs": [r["run_id"] for r in running if holder is None],
            }
        )
    return out
