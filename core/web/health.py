"""How a dossier's recent syncs went, in figures the status page draws.

From the journal: the dossier's runs per day over the last ``DAYS`` days (UTC) by
outcome, and what each of its last ``RUNS`` runs did: records synced (created, updated,
deleted) and not synced (refused, failed: each has an incident).  A run still marked
``running`` is running while the dossier's sync lease is held, else interrupted (its
process ended without closing it, as in ``schedule``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any

from sqlalchemy import select

from ..journal import iso_utc, utcnow
from ..state.models import Latency, Run
from ..state.store import StateStore
from ..vocabulary import RunOutcome

DAYS = 14
RUNS = 30
#: bottom to top in a day's bar
OUTCOMES = (
    RunOutcome.SUCCEEDED,
    RunOutcome.PARTIAL,
    RunOutcome.INTERRUPTED,
    RunOutcome.FAILED,
    RunOutcome.RUNNING,
)


@dataclass
class Day:
    """One day's runs of a dossier, by outcome, and the records they synced."""

    day: str
    succeeded: int = 0
    partial: int = 0
    interrupted: int = 0
    failed: int = 0
    running: int = 0
    records: int = 0
    not_synced: int = 0

    @property
    def runs(self) -> int:
        return sum(getattr(self, outcome) for outcome in OUTCOMES)


@dataclass
class RunMark:
    """One run, as a mark of the records-per-run picture."""

    run_id: int
    entity: str
    direction: str
    started_at: str
    outcome: str
    records: int
    not_synced: int


@dataclass
class Health:
    dossier_id: str
    days: list[Day]
    runs: list[RunMark]  # oldest first
    #: seconds from a change in one system to its write in the other; None until measured
    latency_seconds: float | None = None
    totals: Day = field(init=False)

    def __post_init__(self) -> None:
        self.totals = Day(f"{self.days[0].day}/{self.days[-1].day}" if self.days else "")
        for day in self.days:
            for name in (*OUTCOMES, "records", "not_synced"):
                setattr(self.totals, name, getattr(self.totals, name) + getattr(day, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dossier_id": self.dossier_id,
            "days": [asdict(d) | {"runs": d.runs} for d in self.days],
            "runs": [asdict(r) for r in self.runs],
            "latency_seconds": self.latency_seconds,
        }


def _outcome(outcome: str, held: bool) -> str:
    if outcome == RunOutcome.RUNNING and not held:
        return RunOutcome.INTERRUPTED
    return outcome if outcome in OUTCOMES else RunOutcome.FAILED


def dossier_health(
    store: StateStore, dossier_id: str, *, held: bool, today: date | None = None
) -> Health:
    """The dossier's last ``DAYS`` days and ``RUNS`` runs; ``held``: its lease is held."""
    today = today or utcnow().date()
    first = today - timedelta(days=DAYS - 1)
    dates = [first + timedelta(days=i) for i in range(DAYS)]
    days = {d: Day(d.isoformat()) for d in dates}
    columns = (
        Run.id,
        Run.entity,
        Run.direction,
        Run.started_at,
        Run.outcome,
        Run.created + Run.updated + Run.deleted,
        Run.refused + Run.failed,
    )
    with store.session() as s:
        recent = s.execute(
            select(*columns).where(
                Run.dossier_id == dossier_id, Run.started_at >= datetime.combine(first, time())
            )
        ).all()
        last = s.execute(
            select(*columns).where(Run.dossier_id == dossier_id).order_by(Run.id.desc()).limit(RUNS)
        ).all()
    for _id, _entity, _direction, started_at, outcome, records, not_synced in recent:
        day = days.get(started_at.date())
        if day is None:  # started after today (a clock set back)
            continue
        name = _outcome(outcome, held)
        setattr(day, name, getattr(day, name) + 1)
        day.records += int(records or 0)
        day.not_synced += int(not_synced or 0)
    marks = [
        RunMark(
            run_id=run_id,
            entity=entity,
            direction=direction,
            started_at=iso_utc(started_at) or "",
            outcome=_outcome(outcome, held),
            records=int(records or 0),
            not_synced=int(not_synced or 0),
        )
        for run_id, entity, direction, started_at, outcome, records, not_synced in reversed(last)
    ]
    return Health(dossier_id, list(days.values()), marks, latency_seconds(store, dossier_id))


def latency_seconds(store: StateStore, dossier_id: str) -> float | None:
    """How long a change took to reach the other side, median over the last hour, both
    sides together (None until the service's probes have synced one)."""
    since = utcnow() - timedelta(hours=1)
    with store.session() as s:
        seconds = sorted(
            s.scalars(
                select(Latency.seconds).where(
                    Latency.dossier_id == dossier_id, Latency.synced_at >= since
                )
            )
        )
    return round(median(seconds), 1) if seconds else None
