"""``dossiersync run``: the host process syncing every active dossier on its schedule.

Each dossier is due every ``service.interval_seconds`` (or its own ``interval_seconds``)
after its last sync started.  Due dossiers run in parallel (``service.parallel_dossiers``
threads), each isolated: its own Sage connection, lease, runs and incidents.  The
configuration is read again at the first cycle after its file changed, so enabling an
entity or deactivating a dossier takes effect at the next cycle.  SIGTERM/SIGINT stop
the service at the next safe point: no pass starts any more, and those running are left
``service.stop_grace_seconds`` to end, then stopped at their next batch; the journal is
pruned to ``service.journal_retention_days``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import and_, delete, func, or_, select

from .config import Config, DossierConfig, load
from .config_file import config_path
from .context import DossierContext
from .errors import DossierSyncError
from .journal import utcnow
from .registry import load_entities
from .runner import DossierResult, sync
from .state.models import Dossier, Event, Incident, Latency, Link, Run, Watch
from .state.store import StateStore
from .sync.links import RECREATE, Kept, LinkLabel
from .sync.stop import STOP, STOPPED_BY, Interrupted
from .vocabulary import SAGE_TO_SSM, SSM_TO_SAGE, DossierState, RunOutcome

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


def record_latency(
    store: StateStore, dossier_id: str, side: str, results: list[DossierResult], seen: Any
) -> None:
    """One latency row per pass that wrote something: from when the change was made (as
    its side dated it, else when the probe saw it) to when the pass ended."""
    rows = []
    for result in results:
        for run in result.runs:
            wrote = sum(run.counts.get(k, 0) for k in ("created", "updated", "deleted"))
            if wrote and run.finished_at is not None:
                seconds = max(0.0, (run.finished_at - seen).total_seconds())
                rows.append(
                    Latency(
                        dossier_id=dossier_id,
                        side=side,
                        changed_at=seen,
                        synced_at=run.finished_at,
                        seconds=seconds,
                    )
                )
    if rows:
        with store.session() as s:
            s.add_all(rows)


def write_watch(store: StateStore, counts: dict[tuple[str, str], dict[str, Any]]) -> None:
    with store.session() as s:
        rows = {(w.dossier_id, w.side): w for w in s.scalars(select(Watch))}  # one query
        for (dossier_id, side), figures in counts.items():
            row = rows.get((dossier_id, side))
            if row is None:
                row = Watch(dossier_id=dossier_id, side=side, probes=0)
                s.add(row)
            row.probes = figures["probes"]
            row.last_probe_at = figures["last_probe_at"]
            if figures.get("last_change_at") is not None:
                row.last_change_at = figures["last_change_at"]


#: after a change pass failed, the dossier's changes are tried again this long after
#: (seconds), doubled at each failure in a row up to :data:`CHANGE_RETRY_MAX_SECONDS`:
#: an unreachable API or Sage source costs a failed run now and then, not one a second
CHANGE_RETRY_SECONDS = 5.0
CHANGE_RETRY_MAX_SECONDS = 300.0

#: how often (seconds) the service looks for what a person decided with ``dossiersync
#: deletions confirm`` or ``recreate``: the Sage → SSM pass of those records then runs
#: at once, not at the next complete pass (no probe sees a decision: Sage did not change)
DECISIONS_SECONDS = 5.0


class Service:
    """The scheduling loop; ``stop`` ends it at the next safe point."""

    #: the shortest wait between two cycles (seconds): the probes due within it are made
    #: together, so a cycle's own cost (the active dossiers read, the schedule) is paid
    #: a few times a second, not once per probe of hundreds of dossiers
    min_pause = 0.2
    #: the longest: a stop asked from outside (the distributed scheduler's) is seen
    #: within it
    max_pause = 1.0

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
        #: set when a dossier's work ends, or a stop is asked: the loop's wait ends
        self.wake = threading.Event()
        self.on_result = on_result
        self.started: dict[str, float] = {}
        self.running: dict[str, Future[Any]] = {}
        self.cycles = 0
        self._flushed = 0.0
        #: the configuration file's bytes when it was last read (``reload``)
        self._config_bytes: bytes | None = None
        self.probes: Any = None
        #: the dossiers whose first complete pass in this service has not ended, and how
        #: long those that ended took: what the start-up estimate is made of
        self.first_due: set[str] = set()
        self.first_took: list[float] = []
        #: per dossier whose change passes failed in a row: how many, and when its
        #: changes may be tried again (monotonic); the SSM changes to try then
        self.failing: dict[str, tuple[int, float]] = {}
        self.ssm_retry: dict[str, set[str]] = {}
        #: the signal that asked the stop (its words end the passes still running)
        self.stopped_by = signal.SIGTERM
        self._failing_lock = threading.Lock()
        #: per (dossier, part): the records waiting for a pass after a person's decision,
        #: as many as when their pass was last started; per dossier, the parts to pass
        self.decided: dict[tuple[str, str], int] = {}
        self.decided_due: dict[str, set[str]] = {}
        self._decisions_at = 0.0
        self._part_names: tuple[Any, set[str]] = (None, set())
        self._first_lock = threading.Lock()

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
            self.stopped_by = signal.Signals(signum)
            self.stop.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self, max_cycles: int | None = None) -> None:
        from .web import SyncJobs, serve_in_thread

        config = self.reload(None)
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
        from .dossiers import proposed
        from .probes import Probes
        from .runner import ssm_client

        pruned_at = 0.0
        probes = Probes(config)
        self.probes = probes
        client: Any = None
        waiting: dict[str, set[str]] = {}  # SSM changes of dossiers busy when seen
        self.starting(config)
        first = True
        try:
            with ThreadPoolExecutor(max_workers=config.service.parallel_dossiers) as pool:
                while not self.stop.is_set():
                    config = self.reload(config)
                    with store.session() as s:
                        # two columns, not the ORM rows: read a few times a second
                        full_sync_needed = {
                            dossier_id: bool(needed)
                            for dossier_id, needed in s.execute(
                                select(Dossier.id, Dossier.needs_full_sync).where(
                                    Dossier.state == DossierState.ACTIVE
                                )
                            )
                        }
                    active = sorted(full_sync_needed)
                    candidates = proposed(config)
                    if first:
                        self.resume(config, store, active, full_sync_needed)
                        self.first_passes(config, [d for d in active if d not in self.started])
                        first = False
                    now = time.monotonic()
                    self.collect(store, probes)
                    self.look_for_decisions(store, candidates, active, now)
                    # the dossiers at work: looked at again when their work ends (``wake``)
                    working: set[str] = set()
                    for dossier_id in active:
                        if self.busy(store, dossier_id):
                            working.add(dossier_id)
                            continue
                        cfg = candidates.get(dossier_id)
                        complete = self.next_due(config, dossier_id) <= now or (
                            full_sync_needed[dossier_id]
                            and now - self.started.get(dossier_id, -1e9) > 60
                        )
                        if complete or cfg is None:
                            if not complete:
                                continue
                            self.started[dossier_id] = now
                            if cfg is not None:
                                probes.probe_sage(config, cfg)  # marks from now on
                            waiting.pop(dossier_id, None)
                            self.dispatch(pool, config, store, dossier_id)
                            working.add(dossier_id)
                            continue
                        if self.held(dossier_id, now, waiting):
                            continue
                        if dossier_id in waiting:
                            entities = sorted(waiting.pop(dossier_id))
                            self.dispatch(pool, config, store, cfg, entities, SSM_TO_SAGE)
                            working.add(dossier_id)
                        elif dossier_id in self.decided_due:
                            entities = sorted(self.decided_due.pop(dossier_id))
                            self.dispatch(pool, config, store, cfg, entities, SAGE_TO_SSM)
                            working.add(dossier_id)
                        elif probes.sage_due(config, dossier_id, now):
                            changed = probes.probe_sage(config, cfg)
                            if changed:
                                self.dispatch(pool, config, store, cfg, changed, SAGE_TO_SSM)
                                working.add(dossier_id)
                    if probes.next_ssm <= time.monotonic() and active:
                        if client is None:
                            client = ssm_client(config)
                        probed = [candidates[d] for d in active if d in candidates]
                        seen = probes.probe_ssm(config, client, store, probed)
                        for dossier_id, names in seen.items():
                            waiting.setdefault(dossier_id, set()).update(names)
                    self.flush_watch(store, probes)
                    if time.monotonic() - pruned_at > 3600:
                        removed = prune_journal(store, config.service.journal_retention_days)
                        if removed:
                            log.info("journal pruned runs=%d", removed)
                        pruned_at = time.monotonic()
                    self.cycles += 1
                    if max_cycles is not None and self.cycles >= max_cycles:
                        break
                    idle = [d for d in active if d not in working]
                    soon = [self.next_due(config, d) for d in idle]
                    soon += [probes.next_sage.get(d, 0.0) for d in idle if d in candidates]
                    soon.append(probes.next_ssm)
                    pause = min(soon) - time.monotonic()
                    self.wake.wait(min(self.max_pause, max(self.min_pause, pause)))
                    self.wake.clear()
                self.wind_down(config)
        finally:
            probes.close()
            if client is not None:
                client.close()
            self.flush_watch(store, probes, force=True)

    def wind_down(self, config: Config) -> None:
        """The loop has stopped: the passes running are left ``stop_grace_seconds`` to
        end, then asked to stop at their next batch (a pass of 100,000 records would
        otherwise hold the shutdown for minutes)."""
        deadline = time.monotonic() + config.service.stop_grace_seconds
        for future in list(self.running.values()):
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                if not STOP.is_set():
                    log.warning(
                        "passes still running %.0f s after the stop was asked: stopping "
                        "them at their next batch",
                        config.service.stop_grace_seconds,
                    )
                    STOP.request(STOPPED_BY[self.stopped_by])
                future.result()

    def look_for_decisions(
        self,
        store: StateStore,
        candidates: dict[str, DossierConfig],
        active: list[str],
        now: float,
    ) -> None:
        """Every :data:`DECISIONS_SECONDS`: the parts of each active dossier whose records
        wait for a pass after ``dossiersync deletions confirm`` or ``recreate``, newly (a
        count that has not moved since its pass was started is not passed again: what
        that pass could not do waits for the complete pass). One query, on the links'
        index (dossier, part, label)."""
        if now - self._decisions_at < DECISIONS_SECONDS or not active:
            return
        self._decisions_at = now
        enabled = frozenset(tuple(d.entities) for d in candidates.values())
        if self._part_names[0] != enabled:
            names = {p.name for e in enabled for entity in load_entities(e) for p in entity.parts()}
            self._part_names = (enabled, names)
        parts = sorted(self._part_names[1])
        with store.session() as s:
            waiting = {
                (dossier_id, part): int(count)
                for dossier_id, part, count in s.execute(
                    select(Link.dossier_id, Link.entity, func.count())
                    .where(
                        Link.dossier_id.in_(active),
                        Link.entity.in_(parts),
                        Link.label.in_((LinkLabel.PENDING_REVIEW, LinkLabel.PENDING)),
                        Link.deleted.is_(False),
                        or_(
                            and_(
                                Link.label == LinkLabel.PENDING_REVIEW,
                                Link.last_error == Kept.DELETION_CONFIRMED,
                            ),
                            and_(Link.label == LinkLabel.PENDING, Link.last_error == RECREATE),
                        ),
                    )
                    .group_by(Link.dossier_id, Link.entity)
                )
            }
        for key, count in waiting.items():
            if self.decided.get(key) != count:
                self.decided[key] = count
                self.decided_due.setdefault(key[0], set()).add(key[1])
        for key in [k for k in self.decided if k not in waiting]:
            del self.decided[key]

    def reload(self, config: Config | None) -> Config:
        """The configuration as its file says now: read again only when the file's bytes
        differ from those of the last reading (a cycle comes several times a second); a
        file that cannot be read or is not valid keeps the previous configuration, said
        once per change of the file (with no previous one, ``None``, the error is raised)."""
        try:
            raw: bytes | None = config_path(self.config_path).read_bytes()
        except OSError:
            raw = None
        if config is not None and raw is not None and raw == self._config_bytes:
            return config
        self._config_bytes = raw
        try:
            return load(self.config_path)
        except DossierSyncError as exc:
            if config is None:
                raise
            log.error("configuration not reloaded, keeping the previous one: %s", exc)
            return config

    def starting(self, config: Config) -> None:
        log.info("service start parallel_dossiers=%d", config.service.parallel_dossiers)

    def busy(self, store: StateStore, dossier_id: str) -> bool:
        """Is the dossier's last work still running? (Nothing new is started for it.)"""
        running = self.running.get(dossier_id)
        return running is not None and not running.done()

    def collect(self, store: StateStore, probes: Any) -> None:
        """At the start of each cycle: what the work started earlier tells the probes (in
        this process, :meth:`sync_changes` tells them itself)."""

    def dispatch(
        self,
        pool: ThreadPoolExecutor,
        config: Config,
        store: StateStore,
        dossier: str | DossierConfig,
        entities: list[str] | None = None,
        direction: str | None = None,
    ) -> None:
        """Start a dossier's work: its complete pass (no ``direction``; the dossier may be
        given by id alone, when it has left the configuration), or the passes of
        ``entities`` in ``direction`` a probe found changes for."""
        if isinstance(dossier, str) or direction is None:
            dossier_id = dossier if isinstance(dossier, str) else dossier.id
            work = pool.submit(self.sync_one, config, store, dossier_id)
        else:
            dossier_id = dossier.id
            work = pool.submit(self.sync_changes, config, store, dossier, entities or [], direction)
        self.running[dossier_id] = work
        work.add_done_callback(lambda _done: self.wake.set())

    def sync_one(self, config: Config, store: StateStore, dossier_id: str) -> None:
        started = time.monotonic()
        self._sync(config, store, dossier_id, trigger="schedule")
        self.first_pass_ended(config, dossier_id, time.monotonic() - started)

    def resume(
        self,
        config: Config,
        store: StateStore,
        active: list[str],
        full_sync_needed: dict[str, bool],
    ) -> None:
        """At start: a dossier whose every pass (each entity, each direction it runs) ran
        to its end, outside a change pass, less than its interval ago is due at that
        interval after the oldest of them, not at once. A restart, or ``run`` after a
        first ``sync``, does not pass every dossier again: 300 dossiers would keep the
        tenant busy for many minutes for nothing. A dossier needing a full sync, or one
        whose last pass of some entity failed or was interrupted, is due at once."""
        ended = (RunOutcome.SUCCEEDED, RunOutcome.PARTIAL)
        last = (
            select(
                Run.dossier_id,
                Run.entity,
                Run.direction,
                func.max(Run.started_at).label("started_at"),
            )
            .where(Run.trigger != "change", Run.dossier_id.in_(active))
            .group_by(Run.dossier_id, Run.entity, Run.direction)
            .subquery()
        )
        with store.session() as s:
            rows = s.execute(
                select(Run.dossier_id, Run.entity, Run.direction, Run.started_at, Run.outcome)
                .join(
                    last,
                    (Run.dossier_id == last.c.dossier_id)
                    & (Run.entity == last.c.entity)
                    & (Run.direction == last.c.direction)
                    & (Run.started_at == last.c.started_at),
                )
                .where(Run.trigger != "change")
            ).all()
        # per dossier, entity and direction: when its last pass started, if it ended
        latest: dict[tuple[str, str, str], Any] = {}
        failed: set[tuple[str, str, str]] = set()
        for dossier_id, entity, direction, started, outcome in rows:
            key = (dossier_id, entity, direction)
            latest[key] = started
            if outcome not in ended:
                failed.add(key)
        wall, mono = utcnow(), time.monotonic()
        resumed: list[str] = []
        for dossier_id in active:
            dossier = config.dossiers.get(dossier_id)
            if dossier is None or full_sync_needed.get(dossier_id):
                continue
            passes = [
                (dossier_id, part.name, direction)
                for part in (p for e in load_entities(dossier.entities) for p in e.parts())
                for direction in part.directions
            ]
            if not passes or any(p in failed or p not in latest for p in passes):
                continue
            oldest = min(latest[p] for p in passes)
            self.started[dossier_id] = mono - (wall - oldest).total_seconds()
            resumed.append(dossier_id)
        if resumed and self.probes is not None:
            # their first probe looks for rows modified since their last passes began
            self.probes.sage.resume_from(store, resumed)

    def first_passes(self, config: Config, active: list[str]) -> None:
        """At start: every active dossier is due for a complete pass. They run
        ``parallel_dossiers`` at a time, their requests within the tenant's one budget
        (the pacer all the process's clients share), so the start is no burst."""
        with self._first_lock:
            self.first_due = set(active)
        if active:
            log.info(
                "first passes: %d dossier(s) due, %d at a time, within the tenant's request budget",
                len(active),
                config.service.parallel_dossiers,
            )

    def first_pass_ended(self, config: Config, dossier_id: str, seconds: float) -> None:
        """How many dossiers still wait for their first pass, and about how long until
        every one has had it (from the passes that ended so far)."""
        with self._first_lock:
            if dossier_id not in self.first_due:
                return
            self.first_due.discard(dossier_id)
            self.first_took.append(seconds)
            left = len(self.first_due)
            done = len(self.first_took)
            average = sum(self.first_took) / done
        if left == 0:
            log.info("first passes: all %d done", done)
            return
        log.info(
            "first passes: %d done, %d to go, about %d s until every dossier has had its "
            "first pass",
            done,
            left,
            round(average * left / config.service.parallel_dossiers),
        )

    def sync_changes(
        self,
        config: Config,
        store: StateStore,
        dossier: DossierConfig,
        entities: list[str],
        direction: str,
    ) -> None:
        """The passes a probe saw changes for; what they wrote counts for the latency."""
        side = "sage" if direction == SAGE_TO_SSM else "ssm"
        seen_at = self.probes.change_time(dossier.id, side) or utcnow()
        changes_from = self.probes.changes_from(dossier.id) if side == "ssm" else None
        results = self._sync(
            config,
            store,
            dossier.id,
            trigger="change",
            entities=entities,
            directions=[direction],
            changes_from=changes_from,
        )
        if results is None:
            return
        ok = all(
            r.error is None and all(run.outcome != RunOutcome.FAILED for run in r.runs)
            for r in results
        )
        if not ok:
            self.change_failed(dossier.id, direction, entities)
            return
        with self._failing_lock:
            self.failing.pop(dossier.id, None)
        record_latency(store, dossier.id, side, results, seen_at)

    def change_failed(self, dossier_id: str, direction: str, entities: list[str]) -> None:
        """A change pass of the dossier failed: its changes are tried again after a pause
        that doubles at each failure in a row. Its Sage probe starts again as new (every
        part is passed again), the SSM changes are kept for then."""
        now = time.monotonic()
        with self._failing_lock:
            count, until = self.failing.get(dossier_id, (0, now))
            # failures far apart are not in a row (the distributed scheduler is not told
            # of the passes that succeed)
            count = 1 if now - until > CHANGE_RETRY_MAX_SECONDS else count + 1
            pause = min(CHANGE_RETRY_MAX_SECONDS, CHANGE_RETRY_SECONDS * 2 ** (count - 1))
            self.failing[dossier_id] = (count, now + pause)
            if direction == SSM_TO_SAGE:
                self.ssm_retry.setdefault(dossier_id, set()).update(entities)
        if direction == SAGE_TO_SSM:
            self.probes.sage.forget(dossier_id)
        log.info(
            "dossier %s: change pass failed (%d in a row); its changes again in %.0f s",
            dossier_id,
            count,
            pause,
        )

    def held(self, dossier_id: str, now: float, waiting: dict[str, set[str]]) -> bool:
        """Whether the dossier's change passes wait, after a failure; once the pause is
        over, the SSM changes whose pass failed are waiting again."""
        with self._failing_lock:
            failing = self.failing.get(dossier_id)
            if failing is not None and failing[1] > now:
                return True
            retry = self.ssm_retry.pop(dossier_id, None)
        if retry:
            waiting.setdefault(dossier_id, set()).update(retry)
        return False

    def _sync(
        self,
        config: Config,
        store: StateStore,
        dossier_id: str,
        *,
        trigger: str,
        entities: list[str] | None = None,
        directions: list[str] | None = None,
        changes_from: str | None = None,
    ) -> list[DossierResult] | None:
        from .web import SyncBusy

        def told(ctx: DossierContext) -> None:
            ctx.changes_from = changes_from

        try:
            with self.jobs.claim(dossier_id):
                results = sync(
                    config,
                    store,
                    [dossier_id],
                    entities,
                    trigger=trigger,
                    stop=self.stop,
                    directions=directions,
                    adapt=told if changes_from is not None else None,
                )
        except SyncBusy:
            log.info("dossier %s is being synced from the status page; next cycle", dossier_id)
            return None
        except Interrupted:
            # the service is stopping: the pass was journaled interrupted at a safe point
            log.info("dossier %s: stopped at a safe point", dossier_id)
            return None
        except Exception:  # noqa: BLE001 - a dossier never stops the service
            log.exception("dossier %s: sync crashed", dossier_id)
            return None
        for result in results:
            for line in result.reasons():
                log.warning("dossier failed: %s", line)
            if self.on_result:
                self.on_result(result)
        return results

    def flush_watch(self, store: StateStore, probes: Any, *, force: bool = False) -> None:
        """Write the probes' counts to the state (every 10 s: status reads them)."""
        now = time.monotonic()
        if not force and now - self._flushed < 10:
            return
        self._flushed = now
        write_watch(store, probes.counts_by_dossier())
