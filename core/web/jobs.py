"""Syncs started from the page: "sync now" for a dossier, "retry now" for a record.

Each runs ``runner.sync`` for one dossier in a thread of its own.  At most one runs per
dossier: the page refuses a second one while the first runs in this process, or while
another process (or the service's own schedule) holds the dossier's sync lease; the
lease itself refuses any sync that slips past that check.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..config import Config
from ..dossiers import views
from ..errors import DossierSyncError
from ..journal import RunRecord, iso_utc, utcnow
from ..secrets import scrub
from ..state.models import Link
from ..state.store import StateStore
from ..vocabulary import DossierState, RunOutcome
from .schedule import leases

log = logging.getLogger("dossiersync.web")


class SyncBusy(DossierSyncError):
    """The dossier is already being synced."""


class DossierInactive(DossierSyncError):
    """The dossier is not active: it is not synced."""


@dataclass
class SyncJob:
    """One sync started from the page, and what it has done so far."""

    id: int
    dossier_id: str
    entities: list[str] | None
    reason: str  # sync_now | retry
    started_at: datetime
    finished_at: datetime | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    ok: bool | None = None
    skipped: str | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def synced(self) -> int:
        """Records its runs created, updated or deleted."""
        return sum(r["counts"][n] for r in self.runs for n in ("created", "updated", "deleted"))

    @property
    def not_synced(self) -> int:
        """Records its runs refused or failed (each has an incident)."""
        return sum(r["counts"]["failed"] + r["counts"]["refused"] for r in self.runs)

    @property
    def outcome(self) -> str | None:
        """``succeeded``, ``partial`` (records not synced) or ``failed``; None while it runs."""
        if self.running:
            return None
        if self.error or self.skipped:
            return RunOutcome.FAILED
        outcomes = {r["outcome"] for r in self.runs}
        if outcomes - {RunOutcome.SUCCEEDED, RunOutcome.PARTIAL}:
            return RunOutcome.FAILED
        if RunOutcome.PARTIAL in outcomes or self.not_synced:
            return RunOutcome.PARTIAL
        return RunOutcome.SUCCEEDED

    @property
    def message(self) -> str | None:
        """Why it failed: the dossier's error, why it did not run, or its failed runs."""
        if self.error or self.skipped:
            return self.error or self.skipped
        failed = [
            r for r in self.runs if r["outcome"] not in (RunOutcome.SUCCEEDED, RunOutcome.PARTIAL)
        ]
        lines = [f"{r['entity']} ({r['outcome']}): {r['message'] or ''}" for r in failed]
        return "; ".join(line.rstrip(": ") for line in lines) or None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "dossier_id": self.dossier_id,
            "entities": self.entities,
            "reason": self.reason,
            "running": self.running,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "runs": list(self.runs),
            "ok": self.ok,
            "skipped": self.skipped,
            "error": self.error,
            "outcome": self.outcome,
            "synced": self.synced,
            "not_synced": self.not_synced,
            "message": self.message,
        }


SyncFunction = Callable[..., list[Any]]


class SyncJobs:
    """The syncs this process started on request, one per dossier at a time.

    A host process that also syncs on a schedule can wrap its own passes in
    :meth:`claim` so that the page never starts one alongside them.
    """

    def __init__(
        self, config: Config, store: StateStore, *, sync: SyncFunction | None = None
    ) -> None:
        if sync is None:
            from ..runner import sync as run_sync

            sync = run_sync
        self.config = config
        self.store = store
        self._sync = sync
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._latest: dict[str, SyncJob] = {}
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()

    @contextmanager
    def claim(self, dossier_id: str) -> Iterator[None]:
        """Hold ``dossier_id`` for one sync of this process; SyncBusy if already held."""
        self._take(dossier_id)
        try:
            yield
        finally:
            self._release(dossier_id)

    def _take(self, dossier_id: str) -> None:
        with self._lock:
            if dossier_id in self._busy:
                raise SyncBusy(f"dossier {dossier_id} is already being synced")
            self._busy.add(dossier_id)

    def _release(self, dossier_id: str) -> None:
        with self._lock:
            self._busy.discard(dossier_id)

    def busy(self, dossier_id: str) -> bool:
        with self._lock:
            return dossier_id in self._busy

    def latest(self, dossier_id: str) -> SyncJob | None:
        with self._lock:
            return self._latest.get(dossier_id)

    def start(
        self, dossier_id: str, entity_names: list[str] | None = None, *, reason: str = "sync_now"
    ) -> SyncJob:
        """Start syncing one dossier in a thread; SyncBusy if it is being synced."""
        if self._stopping.is_set():
            raise SyncBusy("the service is stopping: no new sync")
        holder = leases(self.store).get(dossier_id)
        if holder is not None:
            raise SyncBusy(f"dossier {dossier_id} is being synced by {holder}")
        self._take(dossier_id)
        job = SyncJob(next(self._ids), dossier_id, entity_names, reason, utcnow())
        with self._lock:
            self._latest[dossier_id] = job
            self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"dossiersync-web-sync-{dossier_id}", daemon=True
        )
        self._threads.append(thread)
        try:
            thread.start()
        except BaseException:
            self._release(dossier_id)
            raise
        return job

    def _run(self, job: SyncJob) -> None:
        def progress(run: RunRecord) -> None:
            job.runs.append(run.as_dict())

        try:
            results = self._sync(
                self.config,
                self.store,
                [job.dossier_id],
                job.entities,
                trigger="manual",
                on_run=progress,
                stop=self._stopping,
            )
            for result in results:
                job.ok, job.skipped, job.error = result.ok, result.skipped, result.error
        except Exception as exc:  # noqa: BLE001 - reported on the page, never lost
            log.exception("sync of %s started from the page failed", job.dossier_id)
            job.ok, job.error = False, scrub(str(exc), self.config.secrets())
        finally:
            job.finished_at = utcnow()
            self._release(job.dossier_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running syncs to end; False if some still run after ``timeout``."""
        with self._lock:
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def stop(self, timeout: float | None = None) -> bool:
        """Refuse new syncs and end the running ones at their next safe point (between
        two passes), waiting up to ``timeout``; False if some still run after it."""
        self._stopping.set()
        return self.wait(timeout)


def mark_for_retry(store: StateStore, dossier_id: str, entity: str, record_key: str) -> bool:
    """Label the record's link ``error`` so the next pass reads it again by its key.

    True when the record will be retried by key (it was, or now is, ``error`` or
    ``pending``); a record with no link, or labelled ``pending_review`` on purpose, is
    left as it is.
    """
    with store.session() as s:
        link = s.scalar(
            select(Link).where(
                Link.dossier_id == dossier_id,
                Link.entity == entity,
                Link.sage_key == record_key,
                Link.deleted.is_(False),
            )
        )
        if link is None:
            return False
        if link.label == "synced":
            link.label = "error"
            link.updated_at = utcnow()
        return link.label in ("error", "pending")


def retry_incident(
    config: Config, store: StateStore, jobs: SyncJobs, incident: dict[str, Any]
) -> dict[str, Any]:
    """Retry now: mark the incident's record for retry, then sync its dossier and entity.

    The sync covers only the incident's entity when it is one the dossier enables (the
    whole dossier otherwise, e.g. for a part such as product families).  An incident
    without a record (a failed run) is retried by that sync alone.
    """
    dossier_id = incident["dossier_id"]
    view = next((v for v in views(config, store) if v.id == dossier_id), None)
    if view is None or view.state != DossierState.ACTIVE:
        raise DossierInactive(f"dossier {dossier_id} is not active: activate it first")
    entity, key = incident.get("entity"), incident.get("record_key")
    by_key = False
    if entity and key:
        by_key = mark_for_retry(store, dossier_id, entity, key)
    entity_names = [entity] if entity and entity in view.entities else None
    try:
        job: SyncJob | None = jobs.start(dossier_id, entity_names, reason="retry")
        busy = None
    except SyncBusy as exc:
        job, busy = None, str(exc)
    return {
        "incident_id": incident["incident_id"],
        "retried_by_key": by_key,
        "job": job.as_dict() if job else None,
        "busy": busy,
    }
