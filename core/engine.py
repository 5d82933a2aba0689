"""The sync pass: one dossier, one entity, one direction.

1. read what changed on the source since the cursor (with an overlap window);
2. map to canonical and validate; a bad record becomes an incident, the others go on;
3. resolve against the link table (create, update only what changed and is owned by
   the source side, mark deleted, or refuse);
4. write in batches, idempotently (``extId`` = ``<dossier>:<key>``; a link row is
   written *before* a create so a crash never leads to a second create);
5. commit link rows per batch and advance the cursor only at the end, once every write
   it covers has succeeded.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from .context import DossierContext
from .entity import SAGE_TO_SSM, SSM_TO_SAGE, ChildSpec, Entity, record_hash
from .errors import (
    DossierSyncError,
    RecordInvalid,
    RecordMoved,
    RecordPending,
    RecordRefused,
    SourceError,
    SsmError,
    SsmNotFound,
    SsmRefused,
)
from .journal import (
    RunRecord,
    add_event,
    finish_run,
    record_incident,
    resolve_incidents,
    start_run,
    utcnow,
)
from .messages import LANGUAGES, Cause, Notice, Problem, field_label, record_of
from .refs import Refs
from .secrets import connection_secrets, scrub
from .state.models import Dossier, DossierEntity, Incident, Link

log = logging.getLogger("dossiersync.engine")
T = TypeVar("T")

SAGE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class StopRequest(threading.Event):
    """Set (by a signal handler) to stop the running passes at their next safe point."""

    reason = "interrupted"

    def request(self, reason: str) -> None:
        self.reason = reason
        self.set()


class Interrupted(KeyboardInterrupt):
    """A pass stopped at a safe point because a stop was requested (Ctrl-C, SIGTERM)."""


STOP = StopRequest()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def shift_sage_time(value: str, seconds: int) -> str:
    """A Sage clock reading moved by ``seconds`` (format ``YYYY-MM-DD hh:mm:ss.fff``)."""
    moved = datetime.strptime(value[:23].ljust(23, "0"), SAGE_FORMAT) + timedelta(seconds=seconds)
    return moved.strftime(SAGE_FORMAT)[:23]


def cursor_row(session: Session, dossier_id: str, entity: str, direction: str) -> DossierEntity:
    row = session.get(DossierEntity, (dossier_id, entity, direction))
    if row is None:
        row = DossierEntity(dossier_id=dossier_id, entity=entity, direction=direction)
        session.add(row)
    return row


def run_pass(
    ctx: DossierContext, entity: Entity, direction: str, error: Exception | None = None
) -> RunRecord:
    """Run one sync process and journal it; never raises for a dossier-level failure.

    ``error`` is a failure found before the pass could start (the Sage source could not
    be opened): the run is journaled as failed with it.
    """
    if STOP.is_set():
        raise Interrupted(STOP.reason)  # asked to stop: no further pass starts
    with ctx.store.session() as session:
        run = start_run(session, ctx.dossier_id, entity.name, direction, ctx.trigger, ctx.full)
    log.info(
        "run start dossier=%s entity=%s direction=%s trigger=%s run=%d",
        ctx.dossier_id,
        entity.name,
        direction,
        ctx.trigger,
        run.id,
    )
    ctx.hooks.dossiersync_run_started(run=run)
    session = ctx.store.new_session()
    ctx.refs = Refs(session, ctx.dossier_id)
    ctx.scratch = {}
    try:
        if error is not None:
            raise error
        custom = entity.pass_class(direction)
        generic = SageToSsm if direction == SAGE_TO_SSM else SsmToSage
        sync_pass: SyncPass = (custom or generic)(ctx, entity, run, session)
        sync_pass.execute()
        problems = run.counts["failed"] + run.counts["refused"]
        run.outcome = "partial" if problems else "succeeded"
        if problems:
            run.message = f"{problems} record(s) not synced, see incidents"
        resolve_incidents(
            session, ctx.dossier_id, entity.name, direction=direction, kinds=("run_failed",)
        )
        session.commit()
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the others
        session.rollback()
        if isinstance(exc, DossierSyncError):
            message = scrub(str(exc), _secrets(ctx))
        else:
            log.exception("internal error in %s/%s/%s", ctx.dossier_id, entity.name, direction)
            message = f"internal error: {type(exc).__name__}: {exc}"
            message = scrub(message, _secrets(ctx))
        run.outcome = "failed"
        run.message = message
        notice = Notice(
            "run_failed", ctx.dossier_id, entity=entity.name, direction=direction, reason=message
        )
        record_incident(
            session,
            ctx.hooks,
            ctx.dossier_id,
            entity=entity.name,
            record_key=None,
            direction=direction,
            kind="run_failed",
            message=message,
            run_id=run.id,
            detail=notice.as_dict(),
        )
        session.commit()
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM): what the pass committed stays, its cursor did
        # not move; the run says so instead of staying "running"
        session.rollback()
        run.outcome = "interrupted"
        run.message = "interrupted before its end; the next sync goes on from where it was"
        raise
    finally:
        finish_run(session, run)
        session.close()
    log.info(
        "run end dossier=%s entity=%s direction=%s run=%d outcome=%s %s",
        ctx.dossier_id,
        entity.name,
        direction,
        run.id,
        run.outcome,
        " ".join(f"{k}={v}" for k, v in run.counts.items()),
    )
    ctx.hooks.dossiersync_run_finished(run=run)
    return run


def _secrets(ctx: DossierContext) -> list[Any]:
    """What a message about this dossier must not show: the API keys and the Sage
    password (the source itself is named, so that a bad path can be read)."""
    impl = ctx.implementation
    return [impl.public_key, impl.private_key, *connection_secrets(ctx.dossier.connection)]


class SyncPass:
    """Base of a sync pass: what every pass needs to journal its records.

    Entities whose sync a declaration cannot express (orders: header + lines) subclass
    it and return the subclass from ``Entity.pass_class``.
    """

    direction: str = SAGE_TO_SSM

    def __init__(
        self, ctx: DossierContext, entity: Entity, run: RunRecord, session: Session
    ) -> None:
        self.ctx = ctx
        self.entity = entity
        self.run = run
        self.session = session
        self.dossier_id = ctx.dossier_id
        self.resource = entity.ssm_resource
        self.table = entity.sage_table
        self.resolved: list[str] = []
        # most passes have no open record incident to close: skip the updates then
        self.has_open_incidents = bool(
            session.scalar(
                select(func.count())
                .select_from(Incident)
                .where(
                    Incident.dossier_id == self.dossier_id,
                    Incident.entity == entity.name,
                    Incident.state == "open",
                    Incident.record_key.is_not(None),
                )
            )
        )

    def execute(self) -> None:
        raise NotImplementedError

    def has_retries(self) -> bool:
        """Whether records of this entity wait to be written again: links in error or
        pending, or an open record incident of this direction (a record refused before
        it was linked, e.g. an SSM order naming a product Sage did not have yet)."""
        waiting = self.session.scalar(
            select(func.count())
            .select_from(Link)
            .where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.label.in_(("error", "pending")),
                Link.deleted.is_(False),
            )
        )
        return bool(waiting) or (
            self.has_open_incidents
            and bool(
                self.session.scalar(
                    select(func.count())
                    .select_from(Incident)
                    .where(
                        Incident.dossier_id == self.dossier_id,
                        Incident.entity == self.entity.name,
                        Incident.direction == self.direction,
                        Incident.state == "open",
                        Incident.record_key.is_not(None),
                    )
                )
            )
        )

    # -- shared bookkeeping ----------------------------------------------------------

    def links_for(self, column: Any, values: list[Any]) -> dict[Any, Link]:
        if not values:
            return {}
        rows = self.session.scalars(
            select(Link).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                column.in_(values),
            )
        )
        return {getattr(link, column.key): link for link in rows}

    def succeeded(self, link: Link, key: str, action: str, detail: str | None = None) -> None:
        link.label = "synced"
        link.last_error = None
        link.updated_at = utcnow()
        self.run.add(action)
        add_event(self.session, self.run, key, action, detail)
        self.resolved.append(key)

    def report(self) -> None:
        """Show how far the pass is (a live line on a terminal); stop here if asked to.

        Called between batches (and between orders): a safe point, where the main thread
        holds no lock a worker thread could need.
        """
        if self.ctx.progress is not None:
            self.ctx.progress(self.run)
        if STOP.is_set():
            raise Interrupted(STOP.reason)

    def commit(self) -> None:
        """Close the incidents of the records that synced, then commit the batch."""
        self.report()
        if self.has_open_incidents:
            for chunk in batched(self.resolved, 500):
                resolve_incidents(
                    self.session, self.dossier_id, self.entity.name, record_keys=chunk
                )
        self.resolved.clear()
        self.session.commit()

    def record_failed(
        self,
        link: Link | None,
        key: str,
        kind: str,
        message: str,
        *,
        field_name: str | None = None,
        refused: bool = True,
        problem: Problem | None = None,
        cause: Cause | None = None,
    ) -> None:
        """Journal a record that could not be synced and open (or count) its incident.

        ``message`` is the cause as found (the SSM's answer, the driver's error);
        ``problem`` the rule an invalid record breaks and ``cause`` why a record cannot
        be written, as data the page writes in its own language. The incident names the
        dossier, the record (Sage key and SSM id when known) and what to do, in words.
        """
        secrets = _secrets(self.ctx)
        reason = scrub(message, secrets)
        sage_key, ssm_id = record_of(key, link.ssm_id if link is not None else None)
        notice = Notice(
            kind,
            self.dossier_id,
            entity=self.entity.name,
            direction=self.direction,
            key=sage_key,
            ssm_id=ssm_id,
            noun=self.entity.record_noun,
            problem=problem,
            reason=None if problem is not None else reason,
            cause=cause,
        )
        message = scrub(notice.text(), secrets)
        if link is not None:
            link.label = "error"
            link.last_error = message
            link.updated_at = utcnow()
        self.run.add("refused" if refused else "failed")
        add_event(self.session, self.run, key, "failed", message)
        self.has_open_incidents = True
        record_incident(
            self.session,
            self.ctx.hooks,
            self.dossier_id,
            entity=self.entity.name,
            record_key=key,
            direction=self.direction,
            kind=kind,
            message=message,
            field_name=field_name,
            run_id=self.run.id,
            detail=notice.as_dict(),
        )

    def record_refused(self, link: Link | None, key: str, error: SsmError) -> None:
        """A record Sales Management refused: its incident quotes the API's own words."""
        self.record_failed(link, key, "refused_by_ssm", error.answer or str(error))

    def record_pending(self, link: Link, key: str, message: str) -> None:
        """Not written: a record it refers to is not synced yet; retried every pass."""
        link.label = "pending"
        link.last_error = message
        link.updated_at = utcnow()
        self.run.add("pending")
        add_event(self.session, self.run, key, "pending", message)

    def keep_vanished(self, reason: str, ids: list[int]) -> None:
        """Leave these records (link ids) in SSM, labelled for review."""
        for chunk in batched(ids, 500):
            for link in self.session.scalars(select(Link).where(Link.id.in_(chunk))):
                link.label = "pending_review"
                link.last_error = reason
                link.updated_at = utcnow()
                add_event(self.session, self.run, link.sage_key or "", "kept", reason)
        self.commit()

    def mass_deletion_guard(self, vanishing: int, known: int, refusal: str) -> bool:
        """Whether ``vanishing`` of ``known`` records may be handled as deleted.

        Above the configured share (and minimum), none is: a ``mass_deletion_refused``
        incident says ``refusal``. Below it, that incident of this direction closes.
        """
        sync = self.ctx.sync
        if vanishing <= max(sync.mass_deletion_minimum, sync.mass_deletion_threshold * known):
            resolve_incidents(
                self.session,
                self.dossier_id,
                self.entity.name,
                direction=self.direction,
                kinds=("mass_deletion_refused",),
            )
            return True
        self.pass_incident(
            "mass_deletion_refused", refusal, {"vanishing": vanishing, "known": known}
        )
        return False

    def deletions_allowed(self, vanishing: int, known: int) -> bool:
        """The mass-deletion guard of a Sage -> SSM pass; refused, the dossier's next sync
        is a full realigning one."""
        refusal = (
            f"{vanishing} of {known} known {self.entity.name} vanished from Sage at once: "
            "deletions refused (restored or replaced Sage database?); the next sync of this "
            "dossier is a full realigning one"
        )
        if self.mass_deletion_guard(vanishing, known, refusal):
            return True
        dossier = self.session.get(Dossier, self.dossier_id)
        if dossier is not None:
            dossier.needs_full_sync = True
            dossier.full_sync_trigger = "realign"
        return False

    def pass_incident(self, kind: str, message: str, params: dict[str, Any] | None = None) -> None:
        """An incident about the whole pass (not one record); the run says why too.

        ``params`` are the figures its words are made of, in every language.
        """
        self.run.message = message
        notice = Notice(
            kind,
            self.dossier_id,
            entity=self.entity.name,
            direction=self.direction,
            reason=message,
            params=params or {},
        )
        record_incident(
            self.session,
            self.ctx.hooks,
            self.dossier_id,
            entity=self.entity.name,
            record_key=None,
            direction=self.direction,
            kind=kind,
            message=message,
            run_id=self.run.id,
            detail=notice.as_dict(),
        )

    def load(self, rows: list[dict[str, Any]]) -> None:
        """Complete Sage rows: their virtual fields (``enrich``), then their children."""
        entity = self.entity
        entity.enrich(rows, self.ctx)
        for child in entity.children:
            for row in rows:
                key = [row.get(c) for c in entity.sage_key_columns]
                where = entity.child_where(child, key)
                found = self.ctx.sage.read(child.sage_table, child.sage_columns, where=where)
                row[child.name] = list(found)

    def canonical_from_sage(self, row: dict[str, Any], direction: str) -> dict[str, Any]:
        record = self.entity.from_sage(row)
        self.ctx.transform(self.entity.name, direction, record)
        self.entity.validate(record)
        return record


@dataclass
class Write:
    """One SSM write decided in the main thread and sent from the pool."""

    kind: str  # create | update | adopt
    link: Link
    canonical: dict[str, Any]
    digest: str
    names: list[str]
    body: dict[str, Any]
    ssm_id: int | None = None
    outcome: tuple[str, int] | BaseException | None = None
    #: the children with SSM records of their own, as they must be once the write is done
    children: list[ChildWrites] | None = None
    #: why they are not (the parent's write itself went through)
    children_error: BaseException | None = None


@dataclass
class ChildWrites:
    """What SSM must hold of one kind of child of a record (``ChildSpec.ssm_resource``)."""

    spec: ChildSpec
    #: what the extIds of the record's children start with
    prefix: str
    #: ``(extId, full body, changed fields' body or None when the last agreed child is
    #: unknown)``, in the children's order
    planned: list[tuple[str, dict[str, Any], dict[str, Any] | None]]


#: from this many creates in one batch, SSM is indexed by extId once instead of per chunk
INDEX_FROM = 200
#: records in error re-read from SSM per pass (oldest first)
RETRY_LIMIT = 500
#: SSM records fetched by id per request
RETRY_CHUNK = 40
#: review label reason of a Sage-born record deleted in SSM (its Sage side is not pushed)
KEPT_IN_SAGE = "deleted in Sales Management; kept in Sage 50FR where it was created"
#: review label reasons of records deleted in SSM whose Sage side is not pushed again
KEPT_IN_SAGE_NOTES = (KEPT_IN_SAGE, "deleted in Sales Management; kept in Sage 50FR")


class SageToSsm(SyncPass):
    """Sage 50FR -> Sales Management for one entity of one dossier."""

    def execute(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        cursor = cursor_row(session, self.dossier_id, entity.name, SAGE_TO_SSM)
        full = ctx.full or cursor.cursor is None
        self.realign = ctx.realign
        clock = ctx.sage.clock()
        high_water = ctx.sage.high_water_mark(self.table)
        restored = self.restored(cursor.high_water_mark, high_water)
        if restored:
            full = self.realign = True
        since = None if full else shift_sage_time(cursor.cursor or clock, -ctx.sync.overlap_seconds)
        mark = self.source_mark() if entity.knows_its_tables() else None
        if not full and mark and mark == cursor.source_mark and not self.has_retries():
            # no row added, changed or deleted since the last pass: nothing to read
            cursor.cursor = clock
            self.commit()
            return
        known = session.scalar(
            select(func.count())
            .select_from(Link)
            .where(Link.dossier_id == self.dossier_id, Link.entity == entity.name)
        )
        # with no link at all (new state store, reinstall) records already in SSM are
        # adopted by extId instead of being created twice
        self.adopt: dict[str, int] | None = None if known else self.ssm_index()
        retry: set[str | None] = set(
            session.scalars(
                select(Link.sage_key).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == entity.name,
                    Link.label.in_(("error", "pending")),
                    Link.deleted.is_(False),
                    Link.sage_key.is_not(None),
                )
            )
        )
        if since is not None:
            retry.update(entity.extra_changed_keys(ctx, since))
            retry.update(self.children_changed(since))
        seen: set[str] = set()
        columns = entity.sage_columns
        # one COUNT(*) tells how far the pass is; records retried by key come on top
        changed = ctx.sage.count(self.table, since=since, where=entity.sage_where())
        self.run.total = changed + len(retry)
        rows = ctx.sage.read(self.table, columns, since=since, where=entity.sage_where())
        with ThreadPoolExecutor(max_workers=ctx.implementation.max_concurrency) as pool:
            self.pool = pool
            self.in_flight: deque[tuple[list[Write], list[Future[None]]]] = deque()
            try:
                for batch in batched(rows, ctx.sync.batch_size):
                    self.process(batch, seen)
                todo = sorted(k for k in retry if k and k not in seen)
                if todo:
                    keys = [entity.key_from_text(k) for k in todo]
                    rows = ctx.sage.read(self.table, columns, keys=keys, where=entity.sage_where())
                    for batch in batched(rows, ctx.sync.batch_size):
                        self.process(batch, seen)
            except BaseException:
                # reading Sage failed, or Ctrl-C: the batch being resolved was not sent
                # and is dropped; what was sent is recorded all the same
                session.rollback()
                self.settle()
                raise
            self.settle()
            if restored:
                vanished = [i for i, _ in self.vanished_links()[0]]
                self.keep_vanished("not in the restored Sage 50FR database; kept in SSM", vanished)
            else:
                # the realignment after a restore is done: its incident closes
                resolve_incidents(
                    session,
                    self.dossier_id,
                    entity.name,
                    direction=SAGE_TO_SSM,
                    kinds=("restored_database",),
                )
                self.deletions()
        cursor.cursor = clock
        cursor.high_water_mark = high_water
        cursor.source_mark = mark
        if full:
            cursor.last_full_sync_at = utcnow()
        self.commit()

    def source_mark(self) -> str | None:
        """What the entity's Sage tables look like now: the latest modification time and
        the row count of each watched table (its own rows only, for its own table). Taken
        before reading, so a change made during the pass differs from it at the next one."""
        sage, entity = self.ctx.sage, self.entity
        marks = []
        for table in entity.watched_tables():
            # a deleted row moves its table's count, seldom its latest modification time
            where = entity.sage_where() if table == self.table else None
            marks += [str(sage.high_water_mark(table)), str(sage.count(table, where=where or None))]
        return "|".join(marks)

    def children_changed(self, since: str) -> set[str]:
        """Keys of records whose children changed in Sage since ``since`` (a line edited or
        added touches the line's table, not its document's)."""
        entity, keys = self.entity, set()
        for child in entity.children:
            columns = entity.child_parent_columns(child)
            where = entity.children_where(child)
            rows = self.ctx.sage.read(child.sage_table, list(columns), since=since, where=where)
            for row in rows:
                keys.add(entity.key_text([row[c] for c in columns]))
        return keys

    def restored(self, before: str | None, now: str | None) -> bool:
        """A high-water mark that went backwards: the Sage database was restored (unless
        rows deleted since the last pass explain it)."""
        if not self.ctx.sync.restore_detection or not before or not now or now >= before:
            return False
        if self.only_deletions():
            return False
        message = (
            f"Sage 50FR table {self.table} was last modified at {now}, before what this "
            f"dossier already synced ({before}): restored database? Full realigning sync "
            "with Sage as master; nothing deleted in Sales Management."
        )
        self.pass_incident(
            "restored_database", message, {"table": self.table, "now": now, "before": before}
        )
        return True

    def only_deletions(self) -> bool:
        """Whether deleted rows alone explain a high-water mark that went backwards (the
        most recently modified row was deleted): known keys vanished, and every row still
        there holds what was last synced. A restore also brings rows back to older
        contents under older modification times. One that only lost rows created after
        the backup cannot be told from their deletion: the mass-deletion guard stands."""
        self.vanished_links()
        known = self.session.scalars(
            select(Link.sage_key).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.deleted.is_(False),
                Link.sage_key.is_not(None),
            )
        )
        if all(key in self.present for key in known):
            return False
        synced: dict[str | None, str | None] = dict(
            self.session.execute(
                select(Link.sage_key, Link.sage_hash).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == self.entity.name,
                    Link.label == "synced",
                    Link.deleted.is_(False),
                )
            ).all()
        )
        rows = self.ctx.sage.read(
            self.table, self.entity.sage_columns, where=self.entity.sage_where()
        )
        for batch in batched(rows, self.ctx.sync.batch_size):
            self.load(batch)
            for row in batch:
                key = self.entity.key_text(self.entity.sage_key(row))
                if key not in synced:
                    continue
                try:
                    digest = record_hash(self.canonical_from_sage(row, SAGE_TO_SSM))
                except RecordInvalid:
                    return False
                if digest != synced[key]:
                    return False
        return True

    def vanished_links(self) -> tuple[list[tuple[int, str]], int]:
        """Live links whose Sage key is gone, and how many live links there are."""
        present = self.present = {
            self.entity.key_text(k)
            for k in self.ctx.sage.read_keys(self.table, where=self.entity.sage_where())
        }
        candidates = self.session.execute(
            select(Link.id, Link.sage_key, Link.origin).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.deleted.is_(False),
                Link.ssm_id.is_not(None),
                Link.label.in_(("synced", "error")),
                Link.sage_key.is_not(None),
            )
        ).all()
        vanished = [(i, origin) for i, key, origin in candidates if key not in present]
        return vanished, len(candidates)

    def ssm_index(self) -> dict[str, int]:
        """SSM ids of this dossier's live records, by extId."""
        records = self.ctx.ssm_client.list_changed(self.resource, ext_prefix=f"{self.dossier_id}:")
        return {str(r["extId"]): int(r["id"]) for r in records}

    def find_in_ssm(self, ext_ids: list[str]) -> dict[str, int]:
        """SSM ids of live records already carrying these extIds."""
        if self.adopt is not None:
            return {e: self.adopt[e] for e in ext_ids if e in self.adopt}
        if not ext_ids:
            return {}
        found = self.ctx.ssm_client.find(self.resource, ext_ids=ext_ids)
        return {str(r["extId"]): int(r["id"]) for r in found}

    def process(self, rows: list[dict[str, Any]], seen: set[str]) -> None:
        ctx, entity = self.ctx, self.entity
        keyed: list[tuple[str, dict[str, Any]]] = []
        for row in rows:
            self.run.add("read")
            key = entity.key_text(entity.sage_key(row))
            if key not in seen:
                seen.add(key)
                keyed.append((key, row))
        if not keyed:
            return
        self.load([row for _, row in keyed])
        links = self.links_for(Link.sage_key, [k for k, _ in keyed])
        waiting = self.waiting_for_sage([k for k, _ in keyed])
        for f in entity.fields:
            if f.ref and f.sage:
                ctx.refs.prefetch_keys(f.ref, [str(r.get(f.sage) or "").strip() for _, r in keyed])
        writes: list[Write] = []
        for key, row in keyed:
            link = links.get(key)
            if link is not None and (
                (link.label == "pending_review" and link.last_error in KEPT_IN_SAGE_NOTES)
                or (link.origin == "ssm" and link.sage_hash is None and not link.deleted)
            ):
                # deleted in SSM and kept in Sage; or created in SSM and not settled in
                # Sage yet (the SSM pass finishes it)
                self.run.add("unchanged")
                continue
            try:
                canonical = self.canonical_from_sage(row, SAGE_TO_SSM)
            except RecordInvalid as exc:
                self.record_failed(
                    link or self.new_link(key),
                    key,
                    "invalid_record",
                    str(exc),
                    field_name=exc.field,
                    problem=exc.problem,
                )
                continue
            digest = record_hash(canonical)
            all_names = entity.names_to_ssm
            try:
                if link is None or link.ssm_id is None or link.deleted:
                    body = entity.to_ssm(canonical, all_names, ctx, create=True)
                    children = self.child_writes(canonical, None, key)
                    if link is None:
                        link = self.new_link(key)
                    link.deleted = False
                    link.ssm_id = None
                    link.label = "pending"
                    write = Write("create", link, canonical, digest, all_names, body)
                    write.children = children
                    writes.append(write)
                    continue
                if link.sage_hash == digest and link.label == "synced" and not self.realign:
                    self.run.add("unchanged")
                    continue
                base = link.base or {}
                names = [n for n in all_names if self.realign or canonical.get(n) != base.get(n)]
                children = self.child_writes(canonical, link.base, key)
                if children:
                    names += [c.spec.name for c in children]
                if not names:
                    # only Sage-side fields SSM does not hold changed
                    link.base, link.sage_hash = canonical, digest
                    if key in waiting:
                        self.run.add("unchanged")  # its SSM edit still has to reach Sage
                    else:
                        self.succeeded(link, key, "unchanged")
                    continue
                body = entity.to_ssm(canonical, names, ctx, create=False)
            except RecordPending as exc:
                self.record_pending(link or self.new_link(key), key, str(exc))
                continue
            write = Write("update", link, canonical, digest, names, body, ssm_id=link.ssm_id)
            write.children = children
            writes.append(write)
        # intent rows are durable before any create is sent
        self.commit()
        creates = [w for w in writes if w.kind == "create"]
        if creates and self.adopt is None and len(creates) >= INDEX_FROM:
            self.adopt = self.ssm_index()  # one scan serves the rest of the pass
        # before creating, look for the record in SSM: an earlier attempt, a lost state,
        # or another dossier's record whose extId now says it is ours
        found = self.find_in_ssm([w.link.ext_id or "" for w in creates])
        for w in creates:
            existing = found.get(w.link.ext_id or "")
            if existing is None:
                continue
            holder = self.session.execute(
                select(Link.dossier_id, Link.sage_key).where(
                    Link.entity == entity.name, Link.ssm_id == existing
                )
            ).first()
            if holder is not None and tuple(holder) != (self.dossier_id, w.link.sage_key):
                cause = Cause(
                    "ext_id_taken",
                    {
                        "ssm_id": existing,
                        "ext_id": w.link.ext_id,
                        "holder": f"{holder[0]}:{holder[1]}",
                    },
                )
                w.outcome = RecordMoved(cause.text(), cause)
                continue
            w.kind, w.ssm_id = "adopt", existing
            w.body = entity.to_ssm(w.canonical, w.names, ctx, create=False)
            w.children = self.child_writes(w.canonical, None, w.link.sage_key or "")
        refused = [w for w in writes if w.outcome is not None]
        writes = [w for w in writes if w.outcome is None]
        for w in refused:
            key = w.link.sage_key or ""
            self.record_failed(
                w.link,
                key,
                "moved_between_dossiers",
                str(w.outcome),
                cause=getattr(w.outcome, "cause", None),
            )
        for w in writes:
            if w.kind == "create":
                w.body["extId"] = w.link.ext_id
        # as many records per request as the API takes (bulk), the requests in parallel
        limit = self.ctx.ssm_client.bulk_limit(self.resource)
        chunks = list(batched([w for w in writes if w.kind == "create"], limit))
        chunks += batched([w for w in writes if w.kind != "create"], limit)
        # the next batch is read and resolved while these requests are in flight
        self.in_flight.append((writes, [self.pool.submit(self.send, c) for c in chunks]))
        self.settle(keep=self.ctx.implementation.max_concurrency)

    def settle(self, keep: int = 0) -> None:
        """Record the outcomes of the oldest batches in flight until ``keep`` remain.

        When the API is down or refuses our keys, every batch in flight is recorded (what
        it created is linked), then the run stops, keeping its cursor.
        """
        fatal: BaseException | None = None
        while self.in_flight and (len(self.in_flight) > keep or fatal is not None):
            writes, sent = self.in_flight.popleft()
            wait(sent)
            for w in writes:
                fatal = self.apply(w) or fatal
            self.commit()
        if fatal is not None:
            raise fatal

    def waiting_for_sage(self, keys: list[str]) -> set[str]:
        """Keys of records whose SSM edit could not be written to Sage (an open incident of
        the other direction): this pass must not call them synced, the SSM pass retries them."""
        if not self.has_open_incidents or not keys:
            return set()
        return set(
            self.session.scalars(
                select(Incident.record_key).where(
                    Incident.dossier_id == self.dossier_id,
                    Incident.entity == self.entity.name,
                    Incident.state == "open",
                    Incident.direction == SSM_TO_SAGE,
                    Incident.record_key.in_(keys),
                )
            )
        )

    def new_link(self, key: str, origin: str = "sage") -> Link:
        link = Link(
            dossier_id=self.dossier_id,
            entity=self.entity.name,
            sage_key=key,
            ext_id=self.entity.ext_id(self.dossier_id, key),
            origin=origin,
            label="pending",
            deleted=False,
            updated_at=utcnow(),
        )
        self.session.add(link)
        return link

    def send(self, chunk: list[Write]) -> None:
        """Runs in the pool: one bulk create or update (HTTP only, no state-store access)."""
        client = self.ctx.ssm_client
        # a record whose children alone changed has no field of its own to send
        bare = [w for w in chunk if w.kind != "create" and not w.body]
        for w in bare:
            w.outcome = ("updated", w.ssm_id or 0)
        chunk = [w for w in chunk if w not in bare]
        try:
            if not chunk:
                results = []
            elif chunk[0].kind == "create":
                results = client.bulk_create(self.resource, [w.body for w in chunk])
            else:
                items = [(w.ssm_id or 0, w.body) for w in chunk]
                results = client.bulk_update(self.resource, items)
        except BaseException as exc:  # noqa: BLE001 - sorted out in apply(), even Ctrl-C
            for w in chunk:
                w.outcome = exc
            return
        for w, result in zip(chunk, results, strict=True):
            if result.error is not None:
                w.outcome = result.error
            else:
                action = "created" if w.kind == "create" else "updated"
                w.outcome = (action, result.id or w.ssm_id or 0)
        for w in [*bare, *chunk]:
            if w.children and isinstance(w.outcome, tuple):
                try:
                    self.send_children(w.children, w.outcome[1], w.kind == "create")
                except BaseException as exc:  # noqa: BLE001 - sorted out in apply(), even Ctrl-C
                    w.children_error = exc

    def child_writes(
        self, canonical: dict[str, Any], base: dict[str, Any] | None, key: str
    ) -> list[ChildWrites]:
        """The children with SSM records of their own to write with this record: all of
        them for a new record (``base`` None), else those of a kind that changed."""
        entity, ctx = self.entity, self.ctx
        out: list[ChildWrites] = []
        parent_ext = entity.ext_id(self.dossier_id, key)
        for child in entity.children:
            if not child.ssm_resource:
                continue
            lines = canonical.get(child.name) or []
            if base is not None and not self.realign and base.get(child.name) == lines:
                continue
            before = {c.get(child.key): c for c in (base or {}).get(child.name) or []}
            every = [f.name for f in child.fields]
            planned: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            for line in lines:
                full = entity.child_to_ssm(child, line, every, ctx)
                old = before.get(line.get(child.key))
                diff = None
                if old is not None and not self.realign:
                    names = [n for n in every if line.get(n) != old.get(n)]
                    diff = entity.child_to_ssm(child, line, names, ctx) if names else {}
                planned.append((entity.child_ext_id(parent_ext, child, line), full, diff))
            out.append(ChildWrites(child, parent_ext + ":", planned))
        return out

    def send_children(self, children: list[ChildWrites], parent_id: int, new: bool) -> None:
        """Runs in the pool: make a record's SSM children the ones planned (matched by
        extId); children of the record with no extId of this parent are left alone."""
        client = self.ctx.ssm_client
        for kind in children:
            spec, resource = kind.spec, kind.spec.ssm_resource or ""
            held: dict[str, dict[str, Any]] = {}
            if not new:
                for record in client.list_changed(resource, equals={spec.listed_by: parent_id}):
                    ext = str(record.get("extId") or "")
                    if ext.startswith(kind.prefix):
                        held[ext] = record
            for ext, full, diff in kind.planned:
                found = held.pop(ext, None)
                if found is None:
                    parent = {spec.ssm_parent or "": parent_id, "extId": ext}
                    client.create(resource, {**full, **parent})
                elif diff is None or diff:
                    client.update(resource, int(found["id"]), full if diff is None else diff)
            for record in held.values():
                try:
                    client.delete(resource, int(record["id"]))
                except SsmNotFound:
                    pass

    def apply(self, w: Write) -> BaseException | None:
        """Record a write's outcome; return the exception that must stop the run (an API
        outage, or Ctrl-C while the request was out)."""
        link, outcome = w.link, w.outcome
        key = link.sage_key or ""
        if isinstance(outcome, SsmNotFound) and w.kind == "update" and link.origin == "sage":
            # deleted in SSM: it stays in Sage, where it was created, and is not sent again
            link.label, link.last_error, link.updated_at = "pending_review", KEPT_IN_SAGE, utcnow()
            self.run.add("unchanged")
            add_event(self.session, self.run, key, "kept", KEPT_IN_SAGE)
            return None
        if isinstance(outcome, SsmRefused):
            self.record_refused(link, key, outcome)
            return None
        if isinstance(outcome, BaseException) or outcome is None:
            return outcome
        action, ssm_id = outcome
        link.ssm_id = ssm_id
        if isinstance(w.children_error, SsmRefused):
            self.record_refused(link, key, w.children_error)
            return None
        if w.children_error is not None:
            return w.children_error  # linked: a later pass completes its children
        link.base = w.canonical
        link.sage_hash = w.digest
        detail = ",".join(w.names) if w.kind == "update" else None
        self.succeeded(link, key, "created" if action == "created" else "updated", detail)
        if w.children and self.ctx.progress is not None:
            self.ctx.progress(self.run)  # children cost a request each: show each record
        return None

    def deletions(self) -> None:
        entity, session = self.entity, self.session
        vanished, known = self.vanished_links()
        if not self.deletions_allowed(len(vanished), known):
            self.keep_vanished(
                "vanished from Sage with many others; deletion refused", [i for i, _ in vanished]
            )
            return
        self.forget_unsent()
        if not vanished:
            return
        kept = [
            i for i, origin in vanished if entity.sage_deletions == "origin" and origin != "sage"
        ]
        if kept:
            # created in SSM: a deletion in Sage does not reach SSM
            self.keep_vanished(
                "deleted in Sage 50FR; kept in Sales Management where it was created", kept
            )
        doomed = [i for i, _ in vanished if i not in set(kept)]
        for chunk in batched(doomed, self.ctx.sync.batch_size):
            links = list(session.scalars(select(Link).where(Link.id.in_(chunk))))
            outcomes = list(self.pool.map(self.delete_one, links))
            for link, outcome in zip(links, outcomes, strict=True):
                key = link.sage_key or ""
                if isinstance(outcome, SsmRefused) and not isinstance(outcome, SsmNotFound):
                    self.record_refused(link, key, outcome)
                elif isinstance(outcome, Exception) and not isinstance(outcome, SsmRefused):
                    self.commit()
                    raise outcome
                else:
                    link.deleted = True
                    self.succeeded(link, key, "deleted")
            self.commit()

    def forget_unsent(self) -> None:
        """Links of records gone from Sage that SSM does not hold: never created there (an
        interrupted create is looked up by extId first, and deleted), or deleted there
        too."""
        stale = self.session.scalars(
            select(Link).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.deleted.is_(False),
                Link.origin == "sage",
                Link.sage_key.is_not(None),
                or_(
                    Link.ssm_id.is_(None),
                    and_(Link.label == "pending_review", Link.last_error.in_(KEPT_IN_SAGE_NOTES)),
                ),
            )
        ).all()
        for link in stale:
            key = link.sage_key or ""
            if key in self.present:
                continue
            if link.ssm_id is not None:  # deleted on both sides
                link.deleted, link.updated_at = True, utcnow()
                continue
            found = self.find_in_ssm([link.ext_id or ""]).get(link.ext_id or "")
            if found is not None:
                link.ssm_id = found
                outcome = self.delete_one(link)
                if isinstance(outcome, SsmRefused) and not isinstance(outcome, SsmNotFound):
                    self.record_refused(link, key, outcome)
                elif isinstance(outcome, Exception) and not isinstance(outcome, SsmRefused):
                    raise outcome
                else:
                    link.deleted = True
                    self.succeeded(link, key, "deleted")
                continue
            add_event(
                self.session,
                self.run,
                key,
                "dropped",
                "deleted in Sage 50FR before it reached Sales Management",
            )
            resolve_incidents(self.session, self.dossier_id, self.entity.name, record_keys=[key])
            self.session.delete(link)
        self.commit()

    def delete_one(self, link: Link) -> Exception | None:
        """Runs in the pool: delete a record in SSM, its children first."""
        client = self.ctx.ssm_client
        try:
            assert link.ssm_id is not None
            for child in self.entity.children:
                if child.ssm_resource:
                    listing = client.list_changed(
                        child.ssm_resource, equals={child.listed_by: link.ssm_id}
                    )
                    for record in list(listing):
                        try:
                            client.delete(child.ssm_resource, int(record["id"]))
                        except SsmNotFound:
                            pass
            client.delete(self.resource, link.ssm_id)
        except Exception as exc:  # noqa: BLE001
            return exc
        return None


class SsmToSage(SyncPass):
    """Sales Management -> Sage 50FR for one entity of one dossier."""

    direction = SSM_TO_SAGE

    def execute(self) -> None:
        ctx, entity, session, client = self.ctx, self.entity, self.session, self.ctx.ssm_client
        cursor = cursor_row(session, self.dossier_id, entity.name, SSM_TO_SAGE)
        full = ctx.full or cursor.cursor is None or self.reconcile_due(cursor)
        since, overlap = (None if full else cursor.cursor), ctx.sync.overlap_seconds
        if (
            since is not None
            and not self.has_retries()
            and not any(client.changes_since(r, since) for r in entity.watched_resources())
        ):
            # nothing updated or deleted in SSM after the newest change already read: the
            # overlap window is read again only when something new comes with it
            self.commit()
            return
        # deleted records only matter where a deletion in SSM may reach Sage
        deleted = entity.ssm_deletions != "never"
        prefix = f"{self.dossier_id}:"
        newest = cursor.cursor
        unlinked = entity.ssm_unlinked_filter(ctx)
        # records created in SSM, with no extId yet, may be this dossier's: when the
        # entity cannot narrow them down, one listing of every record serves both
        everything = unlinked is not None and not unlinked
        listing = client.list_changed(
            self.resource,
            since=since,
            overlap_seconds=overlap,
            deleted=deleted,
            ext_prefix=None if everything else prefix,
        )
        seen: set[int] = set()
        for batch in batched(listing, ctx.sync.batch_size):
            mine = [r for r in batch if str(r.get("extId") or "").startswith(prefix)]
            links = self.links_for(Link.ssm_id, [int(r["id"]) for r in mine])
            for record in mine:
                newest = later(newest, client.changed_at(record))
                self.run.add("read")
                seen.add(int(record["id"]))
                self.guarded(record, links.get(int(record["id"])))
            if everything:
                for record in batch:
                    seen.add(int(record["id"]))  # listed: not vanished, even if new
                    newest = self.stray(record, newest)
            self.commit()
        if full and deleted:
            self.vanished_from_ssm(seen)
        self.retry_failed(seen)
        if since is not None:
            newest = self.children_changed(since, seen, newest)
        if unlinked:
            listing = client.list_changed(
                self.resource, since=since, overlap_seconds=overlap, equals=unlinked
            )
            for batch in batched(listing, ctx.sync.batch_size):
                for record in batch:
                    newest = self.stray(record, newest)
        cursor.cursor = newest
        if full:
            cursor.last_full_sync_at = utcnow()
        self.commit()

    def children_changed(self, since: str, seen: set[int], newest: str | None) -> str | None:
        """Records whose children SSM may change in Sage changed since ``since``: a child
        edited or added leaves its parent's ``dateUpdated`` as it was."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        parents: set[int] = set()
        for child in entity.children:
            if not child.ssm_resource or child.name not in entity.names_to_sage:
                continue
            listing = client.list_changed(
                child.ssm_resource, since=since, overlap_seconds=ctx.sync.overlap_seconds
            )
            for record in listing:
                newest = later(newest, client.changed_at(record))
                parent = client.fk_id(record.get(child.listed_by))
                if parent is not None and parent not in seen:
                    parents.add(parent)
        for chunk in batched(sorted(parents), ctx.sync.batch_size):
            found = list(client.find(self.resource, ids=chunk))
            prefix = f"{self.dossier_id}:"
            mine = [r for r in found if str(r.get("extId") or "").startswith(prefix)]
            links = self.links_for(Link.ssm_id, [int(r["id"]) for r in mine])
            for record in mine:
                self.run.add("read")
                seen.add(int(record["id"]))
                self.guarded(record, links.get(int(record["id"])))
            for record in found:
                if not record.get("extId") and entity.ssm_unlinked_filter(ctx) is not None:
                    seen.add(int(record["id"]))
                    newest = self.stray(record, newest)
            self.commit()
        return newest

    def reconcile_due(self, cursor: DossierEntity) -> bool:
        """Whether this pass lists every record again (``reconcile_hours`` since the last)."""
        hours = self.ctx.sync.reconcile_hours
        last = cursor.last_full_sync_at  # naive UTC, as utcnow()
        return hours > 0 and last is not None and utcnow() - last > timedelta(hours=hours)

    def stray(self, record: dict[str, Any], newest: str | None) -> str | None:
        """An SSM record with no extId: created in SSM, taken into Sage if it is ours."""
        if record.get("extId"):
            return newest
        newest = later(newest, self.ctx.ssm_client.changed_at(record))
        if record.get("deleted"):
            links = self.links_for(Link.ssm_id, [int(record["id"])])
            if links:
                self.gone_from_ssm(next(iter(links.values())))
            return newest
        try:
            mine = self.entity.belongs_to_dossier(record, self.ctx)
        except (RecordPending, RecordMoved):
            mine = False
        if mine:
            self.run.add("read")
            self.guarded(record, None, create=True)
            self.commit()
        return newest

    def vanished_from_ssm(self, seen: set[int]) -> None:
        """The safety net of a full pass: linked records the complete listing did not show
        (removed from SSM outright) are handled as deleted there, unless many vanished at
        once (then nothing is done and an incident says why)."""
        links = self.session.scalars(
            select(Link).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.deleted.is_(False),
                Link.ssm_id.is_not(None),
                Link.label != "pending_review",
            )
        ).all()
        gone = [link for link in links if link.ssm_id not in seen]
        refusal = (
            f"{len(gone)} of {len(links)} linked {self.entity.name} missing from the "
            "Sales Management listing: nothing deleted in Sage 50FR"
        )
        if not self.mass_deletion_guard(len(gone), len(links), refusal):
            return
        for link in gone:
            self.deleted_in_ssm({"id": link.ssm_id, "deleted": True}, link)
        self.commit()

    def retry_failed(self, seen: set[int]) -> None:
        """Records whose SSM edit could not reach Sage are retried even if unchanged since:
        the cursor moved past them, their link remembers."""
        links = self.session.scalars(
            select(Link)
            .where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.label.in_(("error", "pending")),
                Link.deleted.is_(False),
                Link.ssm_id.is_not(None),
            )
            .order_by(Link.updated_at)
            .limit(RETRY_LIMIT)
        ).all()
        for link in links:
            if link.ssm_id is None or link.ssm_id in seen:
                continue
            try:
                record = self.ctx.ssm_client.get(self.resource, link.ssm_id)
            except SsmNotFound:
                self.gone_from_ssm(link)
                continue
            except SsmRefused:
                continue
            self.run.add("read")
            seen.add(link.ssm_id)
            self.guarded(record, link)
        self.commit()
        self.retry_refused(seen)

    def gone_from_ssm(self, link: Link) -> None:
        """A retried record SSM no longer has: the Sage pass and its deletion rules see to
        a record in Sage; one created in SSM and not settled in Sage is dropped, or kept
        for review when its Sage row was written."""
        entity, key = self.entity, link.sage_key or ""
        if link.origin != "ssm" or link.sage_hash is not None or not key:
            return
        if self.ctx.sage.get(self.table, entity.key_from_text(key)) is not None:
            link.label, link.last_error = "pending_review", KEPT_IN_SAGE_NOTES[1]
            link.updated_at = utcnow()
            add_event(self.session, self.run, key, "kept", link.last_error)
            return
        ref = f"ssm:{self.resource}/{link.ssm_id}"
        add_event(self.session, self.run, ref, "dropped", "deleted in Sales Management")
        resolve_incidents(self.session, self.dossier_id, entity.name, record_keys=[ref, key])
        self.session.delete(link)

    def retry_refused(self, seen: set[int]) -> None:
        """Records created in SSM that could not be taken into Sage (an incident, no link)
        are tried again on every pass, changed or not; one gone from SSM, or no longer
        this dossier's, closes its incident."""
        if not self.has_open_incidents or self.entity.ssm_unlinked_filter(self.ctx) is None:
            return
        prefix = f"ssm:{self.resource}/"
        keys = self.session.scalars(
            select(Incident.record_key).where(
                Incident.dossier_id == self.dossier_id,
                Incident.entity == self.entity.name,
                Incident.direction == SSM_TO_SAGE,
                Incident.state == "open",
                Incident.record_key.like(prefix + "%"),
            )
        )
        ids = sorted({int(k[len(prefix) :]) for k in keys if k and k[len(prefix) :].isdigit()})
        for chunk in batched([i for i in ids if i not in seen], RETRY_CHUNK):
            found = {int(r["id"]): r for r in self.ctx.ssm_client.find(self.resource, ids=chunk)}
            for ssm_id in chunk:
                record = found.get(ssm_id)
                seen.add(ssm_id)
                ours = False
                if record is not None and not record.get("extId"):
                    try:
                        ours = self.entity.belongs_to_dossier(record, self.ctx)
                    except (RecordPending, RecordMoved):
                        ours = False
                if ours and record is not None:
                    self.run.add("read")
                    self.guarded(record, None, create=True)
                else:
                    resolve_incidents(
                        self.session,
                        self.dossier_id,
                        self.entity.name,
                        record_keys=[f"{prefix}{ssm_id}"],
                        direction=SSM_TO_SAGE,
                    )
            self.commit()

    def guarded(self, record: dict[str, Any], link: Link | None, create: bool = False) -> None:
        """One SSM record; a reference problem becomes a label or an incident.

        A record created in SSM whose Sage write was not settled (its link is the intent)
        is finished, never written twice.
        """
        key = self.record_key(link, record)
        intent = link is not None and link.origin == "ssm" and link.sage_hash is None
        if link is not None and intent and record.get("deleted"):
            self.gone_from_ssm(link)
            return
        try:
            if create or (link is not None and intent and not link.deleted):
                self.unlinked(record)
            else:
                self.linked(record, link)
        except RecordPending as exc:
            if link is not None:
                link.label = "pending"
                link.last_error = str(exc)
                link.updated_at = utcnow()
            self.run.add("pending")
            add_event(self.session, self.run, key, "pending", str(exc))
        except RecordMoved as exc:
            self.record_failed(link, key, "moved_between_dossiers", str(exc), cause=exc.cause)
        except RecordRefused as exc:
            self.record_failed(
                link,
                self.record_key(link, record),
                exc.kind,
                str(exc),
                field_name=exc.field,
                problem=exc.problem,
                cause=exc.cause,
            )

    def record_key(self, link: Link | None, record: dict[str, Any]) -> str:
        """How incidents name an SSM record: its Sage key once it is in Sage."""
        if link is not None and link.sage_key and link.sage_hash is not None:
            return link.sage_key
        if link is not None and link.sage_key and link.origin != "ssm":
            return link.sage_key
        return f"ssm:{self.resource}/{record['id']}"

    def cleared(self, link: Link, record: dict[str, Any]) -> None:
        """A linked record that went through unchanged: what this direction found wrong
        with it before is closed, and it is ``synced`` unless the other direction still
        has an incident open."""
        self.run.add("unchanged")
        if link.label != "error" or not self.has_open_incidents:
            return
        keys = [link.sage_key or "", f"ssm:{self.resource}/{record['id']}"]
        resolve_incidents(
            self.session, self.dossier_id, self.entity.name, record_keys=keys, direction=SSM_TO_SAGE
        )
        still_open = self.session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(
                Incident.dossier_id == self.dossier_id,
                Incident.entity == self.entity.name,
                Incident.record_key.in_(keys),
                Incident.state == "open",
            )
        )
        if not still_open:
            link.label, link.last_error, link.updated_at = "synced", None, utcnow()

    def linked(self, record: dict[str, Any], link: Link | None) -> None:
        ctx, entity = self.ctx, self.entity
        if link is None or link.deleted or link.sage_key is None:
            # no link yet (the Sage pass adopts it) or already deleted
            self.run.add("unchanged")
            return
        if record.get("deleted"):
            self.deleted_in_ssm(record, link)
            return
        if link.label == "pending_review":
            self.run.add("unchanged")
            return
        base = link.base or {}
        entity.check_ssm_edit(record, base, ctx)
        may = entity.ssm_may_change(base)
        keyed = any(f.ssm for f in entity.fields if f.name in entity.key_fields)
        if not may and not keyed:
            self.cleared(link, record)  # nothing of it may reach Sage
            return
        incoming = self.from_ssm(record, may)
        ctx.transform(entity.name, SSM_TO_SAGE, incoming)
        moved = [
            n
            for n in entity.key_fields
            if n in incoming and incoming[n] != base.get(n, incoming[n])
        ]
        if moved:
            labels = [field_label(entity.field_labels, n) for n in moved]
            cause = Cause(
                "key_changed",
                {
                    "fields": {lang: ", ".join(w[lang] for w in labels) for lang in LANGUAGES},
                    "before": base.get(moved[0]),
                    "after": incoming[moved[0]],
                },
            )
            raise RecordMoved(cause.text(), cause)
        changed = [
            n
            for n in may
            if n in incoming and self.shared(n, incoming[n]) != self.shared(n, base.get(n))
        ]
        if not changed:
            self.cleared(link, record)
            return
        key = link.sage_key
        sage_key = entity.key_from_text(key)
        row = ctx.sage.get(self.table, sage_key, entity.sage_columns)
        if row is None:
            self.run.add("unchanged")
            return
        self.load([row])
        current = entity.from_sage(row)
        # transformed as every Sage row is, so it compares with what was agreed
        ctx.transform(entity.name, SAGE_TO_SSM, current)
        conflicts = [
            n for n in changed if self.shared(n, current.get(n)) != self.shared(n, base.get(n))
        ]
        if conflicts and entity.conflict_winner == "sage":
            changed = [n for n in changed if n not in conflicts]
            add_event(self.session, self.run, key, "conflict", "Sage kept: " + ",".join(conflicts))
        if not changed:
            self.run.add("unchanged")
            return
        merged = dict(current)
        merged.update({n: self.merged(n, current.get(n), incoming[n]) for n in changed})
        try:
            entity.validate(merged)
        except RecordInvalid as exc:
            self.record_failed(
                link, key, "invalid_record", str(exc), field_name=exc.field, problem=exc.problem
            )
            return
        try:
            with ctx.sage.transaction():
                values = entity.to_sage(merged, changed, ctx, False)
                if values:
                    ctx.sage.update(self.table, sage_key, values)
                self.write_children(sage_key, current, merged, changed)
        except SourceError as exc:
            self.record_failed(link, key, "sage_write_failed", str(exc), refused=False)
            return
        self.settle(link, key, sage_key, merged, changed, "updated")

    def from_ssm(
        self, record: dict[str, Any], names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The canonical view of an SSM record, with the children SSM may change in Sage
        (among ``names``), read from their own resource when they have one."""
        entity, client = self.entity, self.ctx.ssm_client
        incoming = entity.from_ssm(record, self.ctx)
        wanted = set(entity.names_to_sage if names is None else names)
        for child in entity.children:
            if child.ssm_resource and child.name in wanted and child.name not in incoming:
                found = client.list_changed(
                    child.ssm_resource, equals={child.listed_by: int(record["id"])}
                )
                ordered = sorted(found, key=lambda r: int(r["id"]))
                incoming[child.name] = entity.children_from_ssm(child, ordered, self.ctx)
        return incoming

    def shared(self, name: str, value: Any) -> Any:
        """What SSM may change of a field's value: of a list of children, each child's key
        and shared fields."""
        child = next((c for c in self.entity.children if c.name == name), None)
        if child is None:
            return value
        names = [child.key] + [f.name for f in child.fields if f.owner == "both" and f.ssm]
        return [{n: line.get(n) for n in names} for line in value or []]

    def merged(self, name: str, current: Any, incoming: Any) -> Any:
        """A field's value once SSM's edit is applied: SSM's children, each completed with
        what Sage holds of the child with the same key."""
        child = next((c for c in self.entity.children if c.name == name), None)
        if child is None:
            return incoming
        held = {line.get(child.key): line for line in current or []}
        return [{**held.get(line.get(child.key), {}), **line} for line in incoming or []]

    def write_children(
        self,
        sage_key: tuple[Any, ...],
        before: dict[str, Any],
        after: dict[str, Any],
        names: list[str],
    ) -> None:
        """Make the Sage rows of the changed kinds of children the ones of ``after``, in
        the caller's transaction (a child is matched by its key)."""
        entity, sage = self.entity, self.ctx.sage
        for child in entity.children:
            if child.name not in names:
                continue
            columns = list(sage.key_columns(child.sage_table))
            old = {c.get(child.key): c for c in before.get(child.name) or []}
            new = {c.get(child.key): c for c in after.get(child.name) or []}
            for number, line in new.items():
                row = entity.child_to_sage(child, sage_key, line)
                if number not in old:
                    sage.insert(child.sage_table, row)
                elif line != old[number]:
                    sage.update(child.sage_table, [row[c] for c in columns], row)
            for number, line in old.items():
                if number not in new:
                    row = entity.child_to_sage(child, sage_key, line)
                    sage.delete(child.sage_table, [row[c] for c in columns])

    def deleted_in_ssm(self, record: dict[str, Any], link: Link) -> None:
        ctx, entity = self.ctx, self.entity
        key = link.sage_key or ""
        if entity.ssm_deletions == "origin" and link.origin == "ssm":
            try:
                with ctx.sage.transaction():
                    sage_key = entity.key_from_text(key)
                    for child in entity.children:
                        where = entity.child_where(child, sage_key)
                        columns = list(ctx.sage.key_columns(child.sage_table))
                        for row in list(ctx.sage.read(child.sage_table, columns, where=where)):
                            ctx.sage.delete(child.sage_table, [row[c] for c in columns])
                    ctx.sage.delete(self.table, sage_key)
            except SourceError as exc:
                self.record_failed(link, key, "sage_write_failed", str(exc), refused=False)
                return
            link.deleted = True
            self.succeeded(link, key, "deleted")
            return
        if link.label != "pending_review":
            # created in Sage: a deletion in SSM does not reach Sage
            link.label = "pending_review"
            link.last_error = KEPT_IN_SAGE
            link.updated_at = utcnow()
            add_event(self.session, self.run, key, "kept", link.last_error)
        self.run.add("unchanged")

    def settle(
        self,
        link: Link,
        key: str,
        sage_key: tuple[Any, ...],
        record: dict[str, Any],
        changed: list[str],
        action: str,
    ) -> None:
        """Record what Sage now holds, then tell SSM what follows from it."""
        ctx, entity = self.ctx, self.entity
        row = ctx.sage.get(self.table, sage_key, entity.sage_columns) or {}
        if row:
            self.load([row])
        stored = entity.from_sage(row)
        link.base = stored
        link.sage_hash = record_hash(stored)
        extra = entity.after_sage_write(record, changed, ctx)
        if action == "created":
            extra["extId"] = link.ext_id
        assert link.ssm_id is not None
        try:
            for child in entity.children:
                if child.ssm_resource and child.name in changed:
                    self.name_children(child, link.ssm_id, link.ext_id or "", stored)
            if extra:
                ctx.ssm_client.update(self.resource, link.ssm_id, extra)
        except SsmRefused as exc:
            self.record_refused(link, key, exc)
            return
        self.succeeded(link, key, action, ",".join(changed))

    def name_children(
        self, child: ChildSpec, parent_id: int, parent_ext: str, record: dict[str, Any]
    ) -> None:
        """Give SSM children written to Sage their extIds (they come in the order of their
        ids, as they were read) and what Sage computed of them (its own fields)."""
        client, resource = self.ctx.ssm_client, child.ssm_resource or ""
        held = client.list_changed(resource, equals={child.listed_by: parent_id})
        ordered = sorted(held, key=lambda r: int(r["id"]))
        owned = [f.name for f in child.fields if f.owner == "sage" and f.ssm]
        for found, line in zip(ordered, record.get(child.name) or [], strict=False):
            body = self.entity.child_to_ssm(child, line, owned, self.ctx) if owned else {}
            body["extId"] = self.entity.child_ext_id(parent_ext, child, line)
            if any(found.get(k) != v for k, v in body.items()):
                client.update(resource, int(found["id"]), body)

    def unlinked(self, record: dict[str, Any]) -> None:
        """An SSM record created for this dossier: create it in Sage, then link it."""
        ctx, entity, session = self.ctx, self.entity, self.session
        ssm_id = int(record["id"])
        link = session.scalar(select(Link).where(Link.entity == entity.name, Link.ssm_id == ssm_id))
        if link is not None and link.dossier_id != self.dossier_id:
            self.run.add("unchanged")
            return
        incoming = self.from_ssm(record)
        ctx.transform(entity.name, SSM_TO_SAGE, incoming)
        names = [n for n in entity.names_to_sage if n in incoming]
        ref = f"ssm:{self.resource}/{ssm_id}"
        if link is not None and link.sage_key:
            sage_key = entity.key_from_text(link.sage_key)
            row = ctx.sage.get(self.table, sage_key, entity.sage_columns)
            if row is not None and not self.intended(row, entity.with_key(incoming, sage_key)):
                # the key was taken in Sage meanwhile: the record gets the next one
                key = entity.key_text(entity.new_sage_key(incoming, ctx))
                link.sage_key, link.ext_id = key, entity.ext_id(self.dossier_id, key)
                self.commit()
        if link is None:
            sage_key = entity.new_sage_key(incoming, ctx)
            key = entity.key_text(sage_key)
            try:
                entity.validate(entity.with_key(incoming, sage_key))
            except RecordInvalid as exc:
                name = entity.ssm_path(exc.field or "(record)")
                self.record_failed(
                    None, ref, "invalid_record", str(exc), field_name=name, problem=exc.problem
                )
                return
            link = Link(
                dossier_id=self.dossier_id,
                entity=entity.name,
                sage_key=key,
                ssm_id=ssm_id,
                ext_id=entity.ext_id(self.dossier_id, key),
                origin="ssm",
                label="pending",
                deleted=False,
                updated_at=utcnow(),
            )
            session.add(link)
            self.commit()
            resolve_incidents(session, self.dossier_id, entity.name, record_keys=[ref])
        key = link.sage_key or ""
        sage_key = entity.key_from_text(key)
        candidate = entity.with_key(incoming, sage_key)
        try:
            if ctx.sage.get(self.table, sage_key, entity.sage_columns) is None:
                with ctx.sage.transaction():
                    ctx.sage.insert(self.table, entity.to_sage(candidate, names, ctx, True))
                    self.write_children(sage_key, {}, candidate, names)
        except SourceError as exc:
            self.record_failed(link, ref, "sage_write_failed", str(exc), refused=False)
            return
        self.settle(link, key, sage_key, candidate, names, "created")

    def intended(self, row: dict[str, Any], candidate: dict[str, Any]) -> bool:
        """Whether a Sage row found under an intent's key is the record the intent was
        about to write (a crash came after the write), not another one that took the key."""
        entity = self.entity
        self.load([row])
        held = entity.from_sage(row)
        names = [f.name for f in entity.fields_to_sage if f.name in candidate]
        return all(held.get(n) == candidate.get(n) for n in names)


def later(current: str | None, candidate: Any) -> str | None:
    """The newer of two ISO timestamps (SSM ``dateUpdated``), ignoring an empty one."""
    if not candidate:
        return current
    text = str(candidate)
    return text if current is None or text > current else current


def run_entity(
    ctx: DossierContext,
    entity: Entity,
    on_run: Callable[[RunRecord], None] | None = None,
    error: Exception | None = None,
    directions: Iterable[str] | None = None,
) -> list[RunRecord]:
    """Every direction of one entity for one dossier (or those of ``directions``), Sage
    first."""
    runs = []
    wanted = None if directions is None else set(directions)
    for direction in entity.directions:
        if wanted is not None and direction not in wanted:
            continue
        run = run_pass(ctx, entity, direction, error)
        runs.append(run)
        if on_run:
            on_run(run)
    return runs
