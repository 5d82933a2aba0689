"""Change probes: cheap questions the service asks often, so a pass runs only for the
dossier × entity × direction that changed.

- **Sage**, per dossier and watched table: the high-water mark of the modification
  column and the number of rows (the entity's own, for its own table): a deletion moves
  no modification time, it moves the count. One small query per dossier asks them all
  (``marks``, where the endpoint has it). Where the source is a file this machine sees,
  the endpoint's ``change_mark`` (its modification time and size, and its journal's) is
  read first, and a file unchanged since well before the last statement needs none. A
  dossier that stays quiet is probed less and less often (``sage_probe_max_seconds``),
  and at the first pace again after a change.
- **Sales Management**, per resource, for the whole implementation: "anything updated
  or deleted after T?" — one request of one record (plus as many as the small overlap
  window shows again, already known). Only on a yes are the changes
  listed, once, to learn which dossiers they belong to (the ``extId`` prefix; a record
  with no ``extId`` concerns every dossier that syncs the entity back to Sage) and to
  move T. Dozens of dossiers share one probe per resource.

A probe that finds nothing costs its queries and nothing else: it is counted
(:class:`ProbeStats`), not journaled. What a probe cannot see (a record whose change
date arrived out of order beyond the probe's small overlap, a row deleted while another
was added) is still found by the complete pass on the service's long schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from .config import Config, DossierConfig
from .entity import Entity
from .errors import DossierSyncError
from .journal import utcnow
from .registry import load_entities
from .source import may_hide_edits
from .state.models import DossierEntity
from .state.store import StateStore
from .vocabulary import SAGE_TO_SSM, SSM_TO_SAGE

log = logging.getLogger("dossiersync.probes")

#: what ``SageProbe._file_mark`` says of a file unchanged since the last statement
_UNCHANGED = object()


@dataclass
class ProbeStats:
    """What the probes cost and found since the service started."""

    sage_probes: int = 0
    sage_queries: int = 0
    #: Sage probes the file's change mark answered, with no statement
    sage_file_marks: int = 0
    ssm_probes: int = 0
    ssm_requests: int = 0
    changes_seen: int = 0
    #: per dossier and side ("sage", "ssm"): when a probe last saw a change (monotonic)
    last_change: dict[tuple[str, str], float] = field(default_factory=dict)


def watched(entities: Iterable[Entity], direction: str) -> list[Entity]:
    """The parts (product families, products…) of ``entities`` that run ``direction``."""
    return [p for e in entities for p in e.parts() if direction in p.directions]


#: a file written this close (seconds) before a statement may be written again within
#: the same tick of its file system's clock, leaving its mark as it was: only a file
#: older than that at the last statement is trusted unchanged
FILE_MARK_SETTLED_SECONDS = 2.0
#: however quiet its file looks, a dossier's statement is asked again this often
#: (seconds): a file system whose times cannot be trusted costs a minute at worst
FILE_MARK_TRUSTED_SECONDS = 60.0


class SageProbe:
    """Per dossier: has anything changed in the Sage tables its entities read?"""

    def __init__(self, stats: ProbeStats, *, file_marks: bool = True) -> None:
        self.stats = stats
        #: read the source's file change mark before asking a statement
        self.file_marks = file_marks
        #: per dossier: the file's mark when the last statement was asked, that
        #: statement's wall-clock and monotonic time
        self.files: dict[str, tuple[Any, float, float]] = {}
        #: per dossier the service resumed (its passes ended before it started): each
        #: part's Sage → SSM cursor, the Sage clock when its last pass began. Its first
        #: probe finds the parts with a row modified since, not every part
        self.resumed: dict[str, dict[str, str | None]] = {}
        self.marks: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        #: the latest modification time the last probe that found a change saw
        self.newest: str | None = None
        #: the source's clock at each dossier's last probe
        self.looked: dict[str, str] = {}

    def changed(self, dossier: DossierConfig, sage: Any) -> list[str]:
        """Names of the dossier's entities (parts) whose watched tables changed since
        the last probe; every one on the first probe of the dossier.

        Every watched table's mark is asked at once (``sage.marks``: one statement for
        the whole dossier) where the endpoint can; else two queries per table."""
        found: list[str] = []
        self.stats.sage_probes += 1
        file_mark = self._file_mark(dossier.id, sage)
        if file_mark is _UNCHANGED:
            self.stats.sage_file_marks += 1
            return found
        last, now = self.looked.get(dossier.id), None
        parts = watched(load_entities(dossier.entities), SAGE_TO_SSM)
        asked: dict[tuple[str, str], tuple[str, Any]] = {}
        for part in parts:
            for table in part.watched_tables():
                where = part.sage_where() if table == part.sage_table else None
                asked.setdefault((table, repr(sorted((where or {}).items()))), (table, where))
        wanted = list(asked.values())
        if callable(getattr(sage, "marks", None)):
            answers = sage.marks([(table, where or None) for table, where in wanted])
            self.stats.sage_queries += 1
        else:
            answers = [(sage.high_water_mark(t), sage.count(t, where=w or None)) for t, w in wanted]
            self.stats.sage_queries += 2 * len(wanted)
        marks = dict(zip(asked, answers, strict=True))
        with self._lock:
            resumed = self.resumed.pop(dossier.id, None)
        for part in parts:
            moved = False
            for table in part.watched_tables():
                where = part.sage_where() if table == part.sage_table else None
                latest, count = marks[(table, repr(sorted((where or {}).items())))]
                mark = (dossier.id, part.name, table)
                value: tuple[Any, ...] = (latest, count)
                if may_hide_edits(sage, table, latest, None):
                    # dated by the day: the time of this probe is kept, and a table
                    # modified on the day of the last probe or later moves (only a pass
                    # can tell whether a row changed)
                    now = now or self._look(dossier.id, sage)
                    if may_hide_edits(sage, table, latest, last):
                        value += (now,)
                with self._lock:
                    before = self.marks.get(mark)
                    self.marks[mark] = value
                if resumed is not None:
                    # the first probe of a dossier passed before the service started: its
                    # part changed if a row was modified since its last pass began (a row
                    # deleted meanwhile waits for the complete pass on the long schedule)
                    since = resumed.get(part.name)
                    # a table dated by the day: modified on the day of that pass, or later
                    moved = (
                        moved
                        or since is None
                        or (latest is not None and str(latest) >= since[: len(str(latest))])
                    )
                else:
                    moved = moved or before != value
            if moved:
                found.append(part.name)
                for (d, _name, _table), value in list(self.marks.items()):
                    if d == dossier.id and value[0]:
                        self.newest = max(self.newest or "", str(value[0]))
        if file_mark is not None:
            with self._lock:
                self.files[dossier.id] = file_mark
        return found

    def _file_mark(self, dossier_id: str, sage: Any) -> Any:
        """``_UNCHANGED`` when the source's file says nothing was written since the last
        statement; else what to keep of it once the statement is asked (``None``: the
        source has no file mark, or file marks are off).

        The mark is read before the statement: a write between the two moves the next
        mark, and costs one more statement, never a change missed. A mark equal to the
        kept one is trusted only if every file of it was older than
        :data:`FILE_MARK_SETTLED_SECONDS` at that statement (two writes within one tick
        of the file system's clock can leave the same mark), and for at most
        :data:`FILE_MARK_TRUSTED_SECONDS`."""
        if not self.file_marks or not callable(getattr(sage, "change_mark", None)):
            return None
        mark = sage.change_mark()
        if mark is None:
            return None
        wall, mono = time.time(), time.monotonic()
        kept = self.files.get(dossier_id)
        if kept is not None:
            kept_mark, kept_wall, kept_mono = kept
            written = float(kept_mark[0])
            if (
                kept_mark == mark
                and written < kept_wall - FILE_MARK_SETTLED_SECONDS
                and mono - kept_mono < FILE_MARK_TRUSTED_SECONDS
            ):
                return _UNCHANGED
        return (mark, wall, mono)

    def _look(self, dossier_id: str, sage: Any) -> str:
        """The source's clock now, kept as the time of this probe (tables dated by the
        day are compared with it at the next one)."""
        now: str = sage.clock()
        self.stats.sage_queries += 1
        with self._lock:
            self.looked[dossier_id] = now
        return now

    def resume_from(self, store: StateStore, dossier_ids: list[str]) -> None:
        """The next probe of each of these dossiers compares with its parts' Sage → SSM
        cursors (the Sage clock when their last pass began), not with an earlier probe:
        it finds the parts with a row modified since, not every part."""
        with store.session() as s:
            rows = s.execute(
                select(DossierEntity.dossier_id, DossierEntity.entity, DossierEntity.cursor).where(
                    DossierEntity.dossier_id.in_(dossier_ids),
                    DossierEntity.direction == SAGE_TO_SSM,
                )
            ).all()
        found: dict[str, dict[str, str | None]] = {d: {} for d in dossier_ids}
        for dossier_id, part, cursor in rows:
            found[dossier_id][part] = cursor
        with self._lock:
            self.resumed.update(found)

    def forget(self, dossier_id: str) -> None:
        """Start the dossier's marks again (after a pass failed: probe it as new)."""
        with self._lock:
            for mark in [m for m in self.marks if m[0] == dossier_id]:
                del self.marks[mark]
            self.looked.pop(dossier_id, None)
            self.files.pop(dossier_id, None)


class SsmProbe:
    """For the implementation: which dossiers' SSM → Sage passes have changes to read?"""

    def __init__(self, stats: ProbeStats, overlap_seconds: int) -> None:
        self.stats = stats
        self.overlap = overlap_seconds
        #: per resource, the newest change the probe has taken into account
        self.since: dict[str, str] = {}
        #: per resource, changes inside the overlap window already taken into account
        self.seen: dict[str, set[tuple[Any, str]]] = {}
        #: per dossier, the date of the newest change a probe found for it
        self.newest: dict[str, str] = {}
        #: per dossier, the date of the oldest change probes found for it since its last
        #: SSM → Sage change pass began (``Probes.changes_from``, when it starts one)
        self.oldest: dict[str, str] = {}

    def start_from(self, store: StateStore, resource: str, entities: list[str]) -> str | None:
        """Where to start probing a resource: the newest cursor any dossier's SSM → Sage
        pass of these entities reached (everything before it has been read)."""
        with store.session() as s:
            newest: str | None = s.scalar(
                select(func.max(DossierEntity.cursor)).where(
                    DossierEntity.entity.in_(entities), DossierEntity.direction == SSM_TO_SAGE
                )
            )
        return newest

    def changed(
        self, client: Any, store: StateStore, dossiers: list[DossierConfig]
    ) -> dict[str, set[str]]:
        """Per dossier id, the entities whose SSM → Sage pass has changes to read."""
        by_resource: dict[str, list[tuple[DossierConfig, Entity]]] = {}
        for dossier in dossiers:
            for part in watched(load_entities(dossier.entities), SSM_TO_SAGE):
                for resource in part.watched_resources():
                    by_resource.setdefault(resource, []).append((dossier, part))
        found: dict[str, set[str]] = {}
        for resource, users in sorted(by_resource.items()):
            since = self.since.get(resource)
            if since is None:
                since = self.start_from(store, resource, sorted({p.name for _, p in users}))
                if since is None:
                    continue  # nothing synced back yet: the complete passes do it
                self.since[resource] = since
                # what the passes already read, inside the overlap window: not news
                self.stats.ssm_requests += 1
                self.seen[resource] = {
                    (r.get("id"), client.changed_at(r) or "")
                    for r in client.list_changed(
                        resource, since=since, overlap_seconds=self.overlap, deleted=True
                    )
                    if (client.changed_at(r) or "") <= since
                }
            self.stats.ssm_probes += 1
            self.stats.ssm_requests += 1
            seen = self.seen.setdefault(resource, set())
            # the window shows again what was seen: ask one more than that, so one page
            # tells whether anything is new
            limit = len(seen) + 1
            answer = client.changes_since(
                resource, since, overlap_seconds=self.overlap, limit=limit
            )
            known = [r for r in answer if (r.get("id"), client.changed_at(r) or "") in seen]
            if len(answer) < limit and len(known) == len(answer):
                floor = client.earlier(since, self.overlap)
                self.seen[resource] = {m for m in seen if m[1] >= floor}
                continue
            self.stats.ssm_requests += 1  # at least one page of changes
            newest = since
            fresh = []
            for record in client.list_changed(
                resource, since=since, overlap_seconds=self.overlap, deleted=True
            ):
                changed_at = client.changed_at(record) or ""
                marker = (record.get("id"), changed_at)
                if marker in seen:
                    continue
                fresh.append(record)
                seen.add(marker)
                newest = max(newest, changed_at)
            self.since[resource] = newest
            # keep only what the next probe's overlap window can show again
            floor = client.earlier(newest, self.overlap)
            self.seen[resource] = {m for m in seen if m[1] >= floor}
            for record in fresh:
                ext = str(record.get("extId") or "")
                owner = ext.split(":", 1)[0] if ":" in ext else None
                changed_at = client.changed_at(record) or ""
                for dossier, part in users:
                    if owner is None or owner == dossier.id:
                        found.setdefault(dossier.id, set()).add(part.name)
                        if changed_at > self.newest.get(dossier.id, ""):
                            self.newest[dossier.id] = changed_at
                        if changed_at and changed_at < self.oldest.get(dossier.id, "~"):
                            self.oldest[dossier.id] = changed_at
            self.stats.changes_seen += len(fresh)
        return found


def plausible(stamp: str | None) -> datetime | None:
    """A change date read from either side (``2026-12-01 07:02:03.123`` from Sage,
    ``2026-12-01T07:02:03.123Z`` from SSM) as naive UTC, or None when it cannot be one
    (unreadable, in the future, more than a day old: a clock in another zone)."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    now = utcnow()
    if moment > now + timedelta(seconds=5) or moment < now - timedelta(days=1):
        return None
    return moment


class Probes:
    """The service's change probes of one implementation, with their schedule."""

    def __init__(self, config: Config) -> None:
        self.stats = ProbeStats()
        self.sage = SageProbe(self.stats, file_marks=config.service.sage_file_marks)
        self.ssm = SsmProbe(self.stats, config.service.ssm_probe_overlap_seconds)
        self.next_sage: dict[str, float] = {}
        #: per dossier, the time between two Sage probes now (it grows while quiet)
        self.sage_pace: dict[str, float] = {}
        self.next_ssm = 0.0
        self._sources: dict[str, Any] = {}
        #: per (dossier, side): probes made, last probe and last change (UTC)
        self.counts: dict[tuple[str, str], dict[str, Any]] = {}
        #: per (dossier, side): when the change being synced was made, as its side says
        self.changed_at: dict[tuple[str, str], datetime] = {}

    def _count(self, dossier_id: str, side: str, changed: bool) -> None:
        now = utcnow()
        figures = self.counts.setdefault(
            (dossier_id, side), {"probes": 0, "last_probe_at": None, "last_change_at": None}
        )
        figures["probes"] += 1
        figures["last_probe_at"] = now
        if changed:
            figures["last_change_at"] = now

    def counts_by_dossier(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {k: dict(v) for k, v in self.counts.items()}

    def change_time(self, dossier_id: str, side: str) -> datetime | None:
        """When the change a probe found was made (its side's own date), if plausible."""
        return self.changed_at.pop((dossier_id, side), None)

    def changes_from(self, dossier_id: str) -> str | None:
        """The oldest change date the SSM probes found for the dossier since the last
        time this was asked (when its change pass starts: it reads from there)."""
        return self.ssm.oldest.pop(dossier_id, None)

    def sage_due(self, config: Config, dossier_id: str, now: float) -> bool:
        return self.next_sage.get(dossier_id, 0.0) <= now

    def probe_sage(self, config: Config, dossier: DossierConfig) -> list[str]:
        """The dossier's entities whose Sage side changed ([] on an error: the scheduled
        pass reports it)."""
        from .dossiers import sage_source

        service = config.service
        pace = self.sage_pace.get(dossier.id, service.sage_probe_seconds)
        self.next_sage[dossier.id] = time.monotonic() + pace
        try:
            source = self._sources.get(dossier.id)
            if source is None:
                source = sage_source(dossier)
                source.open()
                self._sources[dossier.id] = source
            self.sage.newest = None
            found = self.sage.changed(dossier, source)
        except DossierSyncError as exc:
            log.info("sage probe of %s: %s", dossier.id, exc)
            self.drop(dossier.id)
            return []
        self._count(dossier.id, "sage", bool(found))
        # quiet, probed less and less often (down to sage_probe_max_seconds); a change
        # brings the pace back to sage_probe_seconds
        slowest = max(service.sage_probe_seconds, service.sage_probe_max_seconds)
        self.sage_pace[dossier.id] = (
            service.sage_probe_seconds if found else min(slowest, pace * 1.5)
        )
        if found:
            self.stats.last_change[(dossier.id, "sage")] = time.monotonic()
            when = plausible(self.sage.newest)
            if when is not None:
                self.changed_at[(dossier.id, "sage")] = when
        return found

    def probe_ssm(
        self, config: Config, client: Any, store: StateStore, dossiers: list[DossierConfig]
    ) -> dict[str, set[str]]:
        self.next_ssm = time.monotonic() + config.service.ssm_probe_seconds
        try:
            found = self.ssm.changed(client, store, dossiers)
        except DossierSyncError as exc:
            log.info("sales management probe: %s", exc)
            return {}
        for dossier in dossiers:
            self._count(dossier.id, "ssm", dossier.id in found)
        for dossier_id in found:
            self.stats.last_change[(dossier_id, "ssm")] = time.monotonic()
            when = plausible(self.ssm.newest.pop(dossier_id, None))
            if when is not None:
                self.changed_at[(dossier_id, "ssm")] = when
        return found

    def drop(self, dossier_id: str) -> None:
        """Close the dossier's probe connection and forget its marks."""
        source = self._sources.pop(dossier_id, None)
        if source is not None:
            source.close()
        self.sage.forget(dossier_id)
        self.sage_pace.pop(dossier_id, None)

    def close(self) -> None:
        for dossier_id in list(self._sources):
            self.drop(dossier_id)
