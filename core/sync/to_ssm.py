"""Sage 50FR -> Sales Management: the generic pass of one entity of one dossier."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from ..derived import record_hash
from ..errors import (
    RecordInvalid,
    RecordMoved,
    RecordPending,
    SsmAuthError,
    SsmError,
    SsmNotFound,
    SsmRefused,
    SsmUnavailable,
)
from ..journal import (
    Action,
    add_event,
    resolve_incidents,
    utcnow,
)
from ..lang import N_
from ..messages import Cause
from ..source import Unreadable, may_hide_edits
from ..state.models import Incident, Link
from ..vocabulary import SAGE_TO_SSM, SSM_TO_SAGE, LinkOrigin, WriteKind
from . import guards
from .base import SyncPass, batched, cursor_row
from .children import ChildWrites, send_ssm_children, ssm_child_writes
from .links import KEPT_IN_SAGE, RETRIED, Kept, LinkLabel, kept_in_sage

SAGE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def shift_sage_time(value: str, seconds: int) -> str:
    """A Sage clock reading moved by ``seconds`` (format ``YYYY-MM-DD hh:mm:ss.fff``)."""
    moved = datetime.strptime(value[:23].ljust(23, "0"), SAGE_FORMAT) + timedelta(seconds=seconds)
    return moved.strftime(SAGE_FORMAT)[:23]


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
    outcome: tuple[Action, int] | BaseException | None = None
    #: the children with SSM records of their own, as they must be once the write is done
    children: list[ChildWrites] | None = None
    #: why they are not (the parent's write itself went through)
    children_error: BaseException | None = None
    #: created by this pass although its create's answer was lost (found by extId)
    recovered: bool = False
    #: its body carries the record's status fields (``status.StatusFields``)
    status_sent: bool = False


#: links whose Sage keys are looked up together when looking for deleted rows
KEYS_PER_LOOKUP = 2000

#: from this many creates in one batch, SSM is indexed by extId once instead of per chunk
INDEX_FROM = 200

#: times a pass looks up and sends again the writes whose outcome stayed unknown
UNKNOWN_ROUNDS = 3

#: a complete pass reads, this often (seconds), the rows edited in Sage since it began
#: (or since it last looked) and sends them at once: an edit made during a long pass —
#: the first of a large dossier, a realignment — is not left waiting for its end
CATCH_UP_SECONDS = 5.0
#: how far back each catch-up reads again (seconds): an edit it misses is still read by
#: the next pass, from the complete pass's start with the full overlap window
CATCH_UP_OVERLAP_SECONDS = 5

#: what the journal says of a deletion a person confirmed
CONFIRMED = N_("gone from Sage 50FR; deletion confirmed with dossiersync deletions confirm")

#: what a record whose create kept an unknown outcome says until the next pass
UNKNOWN_OUTCOME = N_(
    "the API's answer to its creation was lost; looked up by extId at the next pass"
)


def unknown_outcome(error: BaseException | None) -> bool:
    """An error after which the server may have carried out a create: a call answered 5xx,
    reset or timed out once sent, or a bulk item answered 5xx. Not an outage (the API
    unreachable, or refusing, through the whole retry budget) nor a refused key pair."""
    if isinstance(error, SsmUnavailable):
        return error.may_have_acted
    if isinstance(error, SsmRefused):
        return (error.status or 0) >= 500
    return isinstance(error, SsmError) and not isinstance(error, SsmAuthError)


class SageToSsm(SyncPass):
    """Sage 50FR -> Sales Management for one entity of one dossier."""

    #: Sage keys met for the first time in this pass
    new_keys = 0

    def execute(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        cursor = cursor_row(session, self.dossier_id, entity.name, SAGE_TO_SSM)
        full = ctx.full or cursor.cursor is None
        self.realign = ctx.realign
        clock = ctx.sage.clock()
        high_water = ctx.sage.high_water_mark(self.table)
        restored = guards.restored(self, cursor.high_water_mark, high_water)
        if restored:
            full = self.realign = True
        since = None if full else shift_sage_time(cursor.cursor or clock, -ctx.sync.overlap_seconds)
        mark = self.source_mark(cursor.cursor) if entity.knows_its_tables() else None
        confirmed = self.confirmed_waiting()
        if (
            not full
            and mark
            and mark == cursor.source_mark
            and not self.has_retries()
            and not confirmed
        ):
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
                    Link.label.in_(RETRIED),
                    Link.deleted.is_(False),
                    Link.sage_key.is_not(None),
                )
            )
        )
        if since is not None:
            retry.update(entity.extra_changed_keys(ctx, since))
            retry.update(self.children_changed(since))
        # the retried keys read by the main query: they are not read a second time (only
        # these are remembered, so memory follows the retries, not the table)
        seen: set[str] = set()
        columns = entity.sage_columns
        # one COUNT(*) tells how far the pass is; records retried by key come on top
        changed = ctx.sage.count(self.table, since=since, where=entity.sage_where())
        self.run.total = changed + len(retry)
        rows = ctx.sage.read(self.table, columns, since=since, where=entity.sage_where())
        with ThreadPoolExecutor(max_workers=ctx.ssm_client.concurrency) as pool:
            self.pool = pool
            self.in_flight: deque[tuple[list[Write], list[Future[None]]]] = deque()
            self.unknown: list[Write] = []
            # a complete pass takes in the edits made while it runs (``catch_up``); rows
            # dated by the day cannot tell them apart from the day's others
            self.caught_up_at = time.monotonic()
            by_day = may_hide_edits(ctx.sage, self.table, high_water, None)
            self.caught_up_to: str | None = clock if full and not by_day else None
            try:
                for batch in batched(rows, ctx.sync.batch_size):
                    self.process(batch, seen, retry)
                    self.catch_up()
                todo = sorted(k for k in retry if k and k not in seen)
                if todo:
                    keys = [entity.key_from_text(k) for k in todo]
                    rows = ctx.sage.read(self.table, columns, keys=keys, where=entity.sage_where())
                    for batch in batched(rows, ctx.sync.batch_size):
                        self.process(batch, seen, None)
            except BaseException:
                # reading Sage failed, or Ctrl-C: the batch being resolved was not sent
                # and is dropped; what was sent is recorded all the same
                session.rollback()
                self.settle()
                raise
            self.settle()
            self.resolve_unknown()
            if restored:
                vanished = [i for i, _ in self.vanished_links()[0]]
                self.keep_vanished(Kept.NOT_RESTORED, vanished)
            else:
                if confirmed:
                    self.confirmed_deletions()
                if not self.awaiting(Kept.NOT_RESTORED, Kept.DELETION_CONFIRMED):
                    # the realignment after a restore is done, and a person has seen to
                    # what the restored database lacked: its incident closes
                    resolve_incidents(
                        session,
                        self.dossier_id,
                        entity.name,
                        direction=SAGE_TO_SSM,
                        kinds=("restored_database",),
                    )
                if full or self.new_keys or not same_count(cursor.source_mark, mark):
                    self.deletions()
                # else: as many rows as after the last pass and none new, so none gone:
                # the key sets (the whole table, every link) are not read
        cursor.cursor = clock
        cursor.high_water_mark = high_water
        cursor.source_mark = mark
        if full:
            cursor.last_full_sync_at = utcnow()
        self.commit()

    def catch_up(self) -> None:
        """During a complete pass, every :data:`CATCH_UP_SECONDS`: the rows edited in
        Sage since the pass began (or since the last catch-up, a few seconds back) are
        sent now, as a batch of their own, instead of when the pass ends. The writes
        in flight are recorded first, so a row whose create is on its way is not created
        twice; a row the pass has not reached yet is sent now, and found unchanged when
        the pass reaches it."""
        if self.caught_up_to is None or time.monotonic() - self.caught_up_at < CATCH_UP_SECONDS:
            return
        ctx, entity = self.ctx, self.entity
        clock = ctx.sage.clock()
        since = shift_sage_time(self.caught_up_to, -CATCH_UP_OVERLAP_SECONDS)
        edited = list(
            ctx.sage.read(self.table, entity.sage_columns, since=since, where=entity.sage_where())
        )
        self.caught_up_to, self.caught_up_at = clock, time.monotonic()
        if edited:
            self.settle()
            for batch in batched(edited, ctx.sync.batch_size):
                self.process(batch, set(), None)
            self.settle()

    def source_mark(self, last: str | None) -> str | None:
        """What the entity's Sage tables look like now: the latest modification time and
        the row count of each watched table (its own rows only, for its own table). Taken
        before reading, so a change made during the pass differs from it at the next one.
        A table dated by the day, modified on the day of the ``last`` pass or later, may
        hide an edit: the mark then never equals the last one."""
        sage, entity = self.ctx.sage, self.entity
        marks, hidden = [], False
        for table in entity.watched_tables():
            # a deleted row moves its table's count, seldom its latest modification time
            where = entity.sage_where() if table == self.table else None
            latest = sage.high_water_mark(table)
            marks += [str(latest), str(sage.count(table, where=where or None))]
            hidden = hidden or may_hide_edits(sage, table, latest, last)
        if hidden:
            marks.append(f"read at {sage.clock()}")
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

    def vanished_links(self) -> tuple[list[tuple[int, str]], int]:
        """Live links whose Sage key is gone, and how many live links there are."""
        known = 0
        vanished: list[tuple[int, str]] = []
        for link_id, _key, origin, present in self.links_in_sage(
            Link.deleted.is_(False),
            Link.ssm_id.is_not(None),
            Link.label.in_((LinkLabel.SYNCED, LinkLabel.ERROR)),
        ):
            known += 1
            if not present:
                vanished.append((link_id, origin))
        return vanished, known

    def links_in_sage(self, *conditions: Any) -> Iterator[tuple[int, str, str, bool]]:
        """``(id, Sage key, origin, whether Sage still has the key)`` of this entity's
        links meeting ``conditions``: the links are read a chunk at a time and their keys
        looked up in Sage, so memory follows the chunk, not the table."""
        entity, last = self.entity, 0
        while True:
            chunk = self.session.execute(
                select(Link.id, Link.sage_key, Link.origin)
                .where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == entity.name,
                    Link.sage_key.is_not(None),
                    Link.id > last,
                    *conditions,
                )
                .order_by(Link.id)
                .limit(KEYS_PER_LOOKUP)
            ).all()
            if not chunk:
                return
            last = chunk[-1][0]
            linked = [(link_id, str(key), origin) for link_id, key, origin in chunk]
            keys = [entity.key_from_text(key) for _, key, _ in linked]
            rows = self.ctx.sage.read(
                self.table, entity.sage_key_columns, keys=keys, where=entity.sage_where()
            )
            present = {entity.key_text(entity.sage_key(row)) for row in rows}
            for link_id, key, origin in linked:
                yield link_id, key, origin, key in present

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

    def process(
        self, rows: list[dict[str, Any]], seen: set[str], retry: set[str | None] | None
    ) -> None:
        """Sync one batch of Sage rows. ``seen`` collects the keys of ``retry`` met here
        (every key when ``retry`` is ``None``: the retried rows themselves)."""
        ctx, entity = self.ctx, self.entity
        keyed: dict[str, dict[str, Any]] = {}
        for row in rows:
            self.run.add("read")
            key = entity.key_text(entity.sage_key(row))
            if key in seen or key in keyed:
                continue
            if retry is None or key in retry:
                seen.add(key)
            keyed[key] = row
        if not keyed:
            return
        self.load(list(keyed.values()))
        links = self.links_for(Link.sage_key, list(keyed))
        waiting = self.waiting_for_sage(list(keyed))
        for f in entity.fields:
            if f.ref and f.sage:
                ctx.refs.prefetch_keys(
                    f.ref, [str(r.get(f.sage) or "").strip() for r in keyed.values()]
                )
        writes: list[Write] = []
        for key, row in keyed.items():
            link = links.get(key)
            if link is not None and kept_in_sage(link):
                # deleted in SSM and kept in Sage: neither created again nor sent there
                # unless a person asks (``deletions recreate``); a change is told
                self.run.add("unchanged")
                self.edited_after_ssm_deletion(link, row)
                continue
            if link is not None and (
                link.origin == LinkOrigin.SSM and link.sage_hash is None and not link.deleted
            ):
                # created in SSM and not settled in Sage yet (the SSM pass finishes it)
                self.run.add("unchanged")
                continue
            try:
                canonical = self.canonical_from_sage(row, SAGE_TO_SSM)
            except RecordInvalid as exc:
                # a key that could not be read as it is names no record to link or retry
                unread = any(isinstance(row.get(c), Unreadable) for c in entity.sage_key_columns)
                self.record_failed(
                    None if unread else link or self.new_link(key),
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
                    link.label = LinkLabel.PENDING
                    write = Write(WriteKind.CREATE, link, canonical, digest, all_names, body)
                    write.children = children
                    writes.append(write)
                    continue
                if link.sage_hash == digest and link.label == LinkLabel.SYNCED and not self.realign:
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
                        self.succeeded(link, key, Action.UNCHANGED)
                    continue
                body = entity.to_ssm(canonical, names, ctx, create=False)
            except RecordPending as exc:
                self.record_pending(link or self.new_link(key), key, str(exc))
                continue
            write = Write(
                WriteKind.UPDATE, link, canonical, digest, names, body, ssm_id=link.ssm_id
            )
            write.children = children
            writes.append(write)
        # intent rows are durable before any create is sent
        self.commit()
        creates = [w for w in writes if w.kind == WriteKind.CREATE]
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
            w.kind, w.ssm_id = WriteKind.ADOPT, existing
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
            if w.kind == WriteKind.CREATE:
                w.body["extId"] = w.link.ext_id
            if self.status is not None and w.body:
                # in the write made anyway (a write of children only stays without)
                self.status.add_synced(w.body)
                w.status_sent = True
        # the next batch is read and resolved while these requests are in flight
        self.submit(writes)
        self.settle(keep=self.ctx.ssm_client.concurrency)

    def submit(self, writes: list[Write]) -> None:
        """Send writes from the pool: as many records per request as the API takes
        (bulk), creates and updates apart, the requests in parallel."""
        limit = self.ctx.ssm_client.bulk_limit(self.resource)
        chunks = list(batched([w for w in writes if w.kind == WriteKind.CREATE], limit))
        chunks += batched([w for w in writes if w.kind != WriteKind.CREATE], limit)
        self.in_flight.append((writes, [self.pool.submit(self.send, c) for c in chunks]))

    def resolve_unknown(self) -> None:
        """The creates whose outcome stayed unknown (an answer lost: 5xx, reset, timeout)
        are looked up by extId, a few per request: found, they are linked (and their
        children completed); not found, created again. Then the same for what those
        writes left unknown, a few rounds; what is still unknown stays an intent, looked
        up at the next pass. A lookup that fails through the retry budget is an outage:
        the pass stops."""
        rounds = 0
        while self.unknown and rounds < UNKNOWN_ROUNDS:
            rounds += 1
            todo, self.unknown = self.unknown, []
            lost = [w for w in todo if w.link.ssm_id is None]
            # asked of the API: an index taken earlier in the pass misses what it created
            ext_ids = [w.link.ext_id or "" for w in lost]
            listed = self.ctx.ssm_client.find(self.resource, ext_ids=ext_ids) if ext_ids else []
            found = {str(r["extId"]): int(r["id"]) for r in listed}
            for w in todo:
                w.outcome, w.children_error = None, None
                ssm_id = w.link.ssm_id or found.get(w.link.ext_id or "")
                if ssm_id is None:
                    w.kind = WriteKind.CREATE  # not created: sent again, with its extId
                    continue
                # created (or updated), its children not complete: children only
                w.recovered = w.recovered or w.kind == WriteKind.CREATE
                w.kind, w.ssm_id, w.body = WriteKind.ADOPT, ssm_id, {}
            self.submit(todo)
            self.settle()
        for w in self.unknown:
            key = w.link.sage_key or ""
            self.record_pending(w.link, key, UNKNOWN_OUTCOME)
        self.unknown = []
        self.commit()

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
            label=LinkLabel.PENDING,
            deleted=False,
            updated_at=utcnow(),
        )
        self.session.add(link)
        self.new_keys += 1
        return link

    def send(self, chunk: list[Write]) -> None:
        """Runs in the pool: one bulk create or update (HTTP only, no state-store access)."""
        client = self.ctx.ssm_client
        # a record whose children alone changed has no field of its own to send
        bare = [w for w in chunk if w.kind != WriteKind.CREATE and not w.body]
        for w in bare:
            w.outcome = (Action.UPDATED, w.ssm_id or 0)
        chunk = [w for w in chunk if w not in bare]
        try:
            if not chunk:
                results = []
            elif chunk[0].kind == WriteKind.CREATE:
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
                action = Action.CREATED if w.kind == WriteKind.CREATE else Action.UPDATED
                w.outcome = (action, result.id or w.ssm_id or 0)
        for w in [*bare, *chunk]:
            if w.children and isinstance(w.outcome, tuple):
                try:
                    send_ssm_children(
                        self.ctx.ssm_client, w.children, w.outcome[1], w.kind == WriteKind.CREATE
                    )
                except BaseException as exc:  # noqa: BLE001 - sorted out in apply(), even Ctrl-C
                    w.children_error = exc

    def child_writes(
        self, canonical: dict[str, Any], base: dict[str, Any] | None, key: str
    ) -> list[ChildWrites]:
        """The children with SSM records of their own to write with this record."""
        parent_ext = self.entity.ext_id(self.dossier_id, key)
        return ssm_child_writes(self.entity, self.ctx, canonical, base, parent_ext, self.realign)

    def apply(self, w: Write) -> BaseException | None:
        """Record a write's outcome; return the exception that must stop the run (an API
        outage, or Ctrl-C while the request was out)."""
        link, outcome = w.link, w.outcome
        key = link.sage_key or ""
        if (
            isinstance(outcome, SsmNotFound)
            and w.kind == WriteKind.UPDATE
            and link.origin == LinkOrigin.SAGE
        ):
            # deleted in SSM: it stays in Sage, where it was created, and is not sent again
            # (this pass changed it: the incident says that change was not sent)
            guards.deleted_in_ssm(self, link, edited=True)
            link.sage_hash = w.digest
            self.run.add("unchanged")
            return None
        if (
            w.kind == WriteKind.CREATE
            and isinstance(outcome, BaseException)
            and unknown_outcome(outcome)
        ):
            # perhaps created: looked up by extId before the pass ends, never sent blind
            self.unknown.append(w)
            return None
        if isinstance(outcome, SsmRefused):
            self.record_refused(link, key, outcome)
            return None
        if isinstance(outcome, BaseException) or outcome is None:
            return outcome
        action, ssm_id = outcome
        link.ssm_id = ssm_id
        if w.recovered:
            action = Action.CREATED
        if unknown_outcome(w.children_error):
            # linked; its children are completed (matched by extId) before the pass ends
            self.unknown.append(w)
            return None
        if isinstance(w.children_error, SsmRefused):
            self.record_refused(link, key, w.children_error)
            return None
        if w.children_error is not None:
            return w.children_error  # linked: a later pass completes its children
        link.base = w.canonical
        link.sage_hash = w.digest
        detail = ",".join(w.names) if w.kind == WriteKind.UPDATE else None
        self.succeeded(link, key, action, detail)
        if w.status_sent and self.status is not None:
            self.status.shown_synced(link)
        if w.children and self.ctx.progress is not None:
            self.ctx.progress(self.run)  # children cost a request each: show each record
        return None

    def deletions(self) -> None:
        entity, session = self.entity, self.session
        vanished, known = self.vanished_links()
        if not guards.deletions_allowed(self, len(vanished), known):
            self.keep_vanished(Kept.MASS_DELETION, [i for i, _ in vanished])
            return
        self.forget_unsent()
        if not vanished:
            return
        kept = [
            i
            for i, origin in vanished
            if entity.sage_deletions == "origin" and origin != LinkOrigin.SAGE
        ]
        if kept:
            # created in SSM: a deletion in Sage does not reach SSM
            self.keep_vanished(Kept.IN_SSM, kept)
        doomed = [i for i, _ in vanished if i not in set(kept)]
        for chunk in batched(doomed, self.ctx.sync.batch_size):
            self.delete_links(list(session.scalars(select(Link).where(Link.id.in_(chunk)))))

    def edited_after_ssm_deletion(self, link: Link, row: dict[str, Any]) -> None:
        """A record deleted in SSM and kept in Sage, read again: changed in Sage since it
        was last seen, its incident says that change was not sent (once per change)."""
        try:
            digest = record_hash(self.canonical_from_sage(row, SAGE_TO_SSM))
        except RecordInvalid:
            return  # nothing would be sent anyway
        if digest == link.sage_hash:
            return
        guards.deleted_in_ssm(self, link, edited=True)
        link.sage_hash = digest

    def confirmed_waiting(self) -> bool:
        """Whether records of this entity wait for the deletion a person confirmed."""
        return bool(self.awaiting(Kept.DELETION_CONFIRMED))

    def awaiting(self, *reasons: Kept) -> int:
        """Live links of this entity kept for review for one of ``reasons``."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(Link)
                .where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == self.entity.name,
                    Link.label == LinkLabel.PENDING_REVIEW,
                    Link.last_error.in_(reasons),
                    Link.deleted.is_(False),
                )
            )
            or 0
        )

    def confirmed_deletions(self) -> None:
        """Delete in SSM the records a person confirmed the deletion of (``dossiersync
        deletions confirm``), past the mass-deletion guard: a person decided. One back in
        Sage meanwhile is not deleted: it is synced again at the next pass."""
        confirmed = (
            Link.label == LinkLabel.PENDING_REVIEW,
            Link.last_error == Kept.DELETION_CONFIRMED,
            Link.deleted.is_(False),
        )
        back = [i for i, _key, _origin, there in self.links_in_sage(*confirmed) if there]
        for chunk in batched(back, 500):
            for link in self.session.scalars(select(Link).where(Link.id.in_(chunk))):
                self.record_pending(link, link.sage_key or "", N_("back in Sage 50FR: not deleted"))
        self.commit()
        while True:
            links = list(
                self.session.scalars(
                    select(Link)
                    .where(
                        Link.dossier_id == self.dossier_id,
                        Link.entity == self.entity.name,
                        *confirmed,
                    )
                    .order_by(Link.id)
                    .limit(self.ctx.sync.batch_size)
                )
            )
            if not links:
                return
            self.delete_links(links, CONFIRMED)

    def delete_links(self, links: list[Link], detail: str | None = None) -> None:
        """Delete these records in SSM (their children first), from the pool; what the API
        refuses is an incident, an outage stops the pass."""
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
                self.succeeded(link, key, Action.DELETED, detail)
        self.commit()

    def forget_unsent(self) -> None:
        """Links of records gone from Sage that SSM does not hold: never created there (an
        interrupted create is looked up by extId first, and deleted), or deleted there
        too."""
        stale_links = (
            Link.deleted.is_(False),
            Link.origin == "sage",
            or_(
                Link.ssm_id.is_(None),
                and_(Link.label == LinkLabel.PENDING_REVIEW, Link.last_error.in_(KEPT_IN_SAGE)),
            ),
        )
        stale = self.session.scalars(
            select(Link).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.sage_key.is_not(None),
                *stale_links,
            )
        ).all()
        present = {key for _, key, _, there in self.links_in_sage(*stale_links) if there}
        for link in stale:
            key = link.sage_key or ""
            if key in present:
                continue
            if link.ssm_id is not None:  # deleted on both sides
                link.deleted, link.updated_at = True, utcnow()
                resolve_incidents(
                    self.session, self.dossier_id, self.entity.name, record_keys=[key]
                )
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
                    self.succeeded(link, key, Action.DELETED)
                continue
            add_event(
                self.session,
                self.run,
                key,
                Action.DROPPED,
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


def same_count(before: str | None, now: str | None) -> bool:
    """Whether two source marks give the entity's own table the same row count (its
    latest modification time and row count come first)."""
    if not before or not now:
        return False
    return before.split("|")[1:2] == now.split("|")[1:2]
