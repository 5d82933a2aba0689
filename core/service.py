"""``dossiersync run``: the host process syncing every active dossier on its schedule.

Each dossier is due every ``service.interval_seconds`` (or its own ``interval_seconds``)
after its last sync started.  Due dossiers run in parallel (``service.parallel_dossiers``
threads), each isolated: its own Sage connection, lease, runs and incidents.  The
configuration is read again every cycle, so enabling an entity or deactivating a dossier
takes effect at the next cycle.  SIGTERM/SIGINT stop the service at the next safe point
(between two passes); the journal is pruned to ``service.journal_retention_days``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import delete, select

from .config import Config, load
from .errors import DossierSyncError
from .journal import utcnow
from .runner import DossierResult, sync
from .state.models import Dossier, Event, Incident, Run
from .state.store import StateStore

log = logging.getLogger("dossiersync.service")


def prune_journal(store: StateStore, days: int) -> int:
    """Delete runs (and their events) that ended more than ``days`` ago."""
    cutoff = utcnow() - timedelta(days=days)
    with store.session() as s:
        old = select(Run.id).where(Run.finished_at.is_not(None), Run.finished_at < cutoff)
        s.execute(delete(Event).where(Event.run_id.in_(old)))
        result = s.execute(delete(Run).where(Run.id.in_(old)))
        s.execute(
            delete(Incident).where(Incident.state == "resolved", Incident.resolved_at < cutoff)
        )
    return int(getattr(result, "rowcount", 0) or 0)


class Service:
    """The scheduling loop; ``stop`` ends it at the next safe point."""

    def __init__(
        self,
        config_path: str | Path | None,
        *,
        on_result: Callable[[DossierResult], None] | None = None,
        web: bool = True,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.config_path = config_path
        self.web = web
        self.announce = announce
        self.stop = threading.Event()
        self.on_result = on_result
        self.started: dict[str, float] = {}
        self.running: dict[str, Future[Any]] = {}
        self.cycles = 0

    def interval(self, config: Config, dossier_id: str) -> float:
        dossier = config.dossiers.get(dossier_id)
        if dossier is not None and dossier.interval_seconds:
            return dossier.interval_seconds
        return config.service.interval_seconds

    def next_due(self, config: Config, dossier_id: str) -> float:
        last = self.started.get(dossier_id)
        return 0.0 if last is None else last + self.interval(config, dossier_id)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.warning("signal %d: stopping at the next safe point", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self, max_cycles: int | None = None) -> None:
        from .web import SyncJobs, serve_in_thread

        config = load(self.config_path)
        store = StateStore(config.state_url)
        # syncs started from the page and scheduled ones share one claim per dossier
        self.jobs = SyncJobs(config, store)
        server = (
            serve_in_thread(config, store, jobs=self.jobs, scheduled=True) if self.web else None
        )
        if server is not None:
            for line in server.announcement():
                self.announce(line)
        try:
            self.loop(config, store, max_cycles)
        finally:
            if server is not None:
                server.stop()
            store.dispose()
        log.info("service stopped")

    def loop(self, config: Config, store: StateStore, max_cycles: int | None) -> None:
        pruned_at = 0.0
        log.info("service start parallel_dossiers=%d", config.service.parallel_dossiers)
        with ThreadPoolExecutor(max_workers=config.service.parallel_dossiers) as pool:
            while not self.stop.is_set():
                try:
                    config = load(self.config_path)
                except DossierSyncError as exc:
                    log.error("configuration not reloaded, keeping the previous one: %s", exc)
                with store.session() as s:
                    active = sorted(
                        d.id for d in s.scalars(select(Dossier).where(Dossier.state == "active"))
                    )
                now = time.monotonic()
                for dossier_id in active:
                    busy = self.running.get(dossier_id)
                    if busy is not None and not busy.done():
                        continue
                    if self.next_due(config, dossier_id) <= now:
                        self.started[dossier_id] = now
                        self.running[dossier_id] = pool.submit(
                            self.sync_one, config, store, dossier_id
                        )
                if time.monotonic() - pruned_at > 3600:
                    removed = prune_journal(store, config.service.journal_retention_days)
                    if removed:
                        log.info("journal pruned runs=%d", removed)
                    pruned_at = time.monotonic()
                self.cycles += 1
                if max_cycles is not None and self.cycles >= max_cycles:
                    break
                waits = [self.next_due(config, d) - time.monotonic() for d in active]
                self.stop.wait(max(0.2, min([*waits, 5.0])))
            for future in list(self.running.values()):
                future.result()

    def sync_one(self, config: Config, store: StateStore, dossier_id: str) -> None:
        from .web import SyncBusy

        try:
            with self.jobs.claim(dossier_id):
                results = sync(config, store, [dossier_id], trigger="schedule", stop=self.stop)
        except SyncBusy:
            log.info("dossier %s is being synced from the status page; next cycle", dossier_id)
            return
        except Exception:  # noqa: BLE001 - a dossier never stops the service
            log.exception("dossier %s: sync crashed", dossier_id)
            return
        for result in results:
            for line in result.reasons():
                log.warning("dossier failed: %s", line)
            if self.on_result:
                self.on_result(result)
