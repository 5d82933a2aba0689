"""Sales Management -> Sage 50FR: the generic pass of one entity of one dossier."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from ..derived import record_hash
from ..errors import (
    RecordInvalid,
    RecordMoved,
    RecordPending,
    RecordRefused,
    SourceError,
    SsmNotFound,
    SsmRefused,
)
from ..journal import (
    Action,
    add_event,
    resolve_incidents,
    utcnow,
)
from ..messages import LANGUAGES, Cause, field_label
from ..state.models import DossierEntity, Incident, Link
from ..vocabulary import SAGE_TO_SSM, SSM_TO_SAGE, IncidentKind, LinkOrigin
from . import guards
from .base import SyncPass, batched, cursor_row
from .children import merge_children, name_ssm_children, shared_view, write_sage_children
from .links import KEPT_IN_SSM, RETRIED, Kept, LinkLabel, mark
from .to_ssm import CATCH_UP_SECONDS

#: records in error re-read from SSM per pass (oldest first)
RETRY_LIMIT = 500
#: how far before the oldest change the probe saw a pass it started reads (seconds)
CHANGE_OVERLAP_SECONDS = 5
#: SSM records fetched by id per request
RETRY_CHUNK = 40

#: what the journal says of a record deleted in SSM after it was gone from Sage
BOTH_SIDES = "deleted in Sales Management too: gone from both sides"


def with_unlinked(
    client: Any,
    resource: str,
    ext_prefix: str,
    overlap_seconds: int,
    deleted: bool,
    since: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every record of ``resource`` (changed since ``since``, minus ``overlap_seconds``)
    with an extId starting with ``ext_prefix`` or with none: the endpoint's
    ``list_with_unlinked`` where it has one and serves (it may serve several dossiers
    from one listing), else the resource listed and filtered."""
    own = getattr(client, "list_with_unlinked", None)
    served = (
        own(resource, ext_prefix, since=since, overlap_seconds=overlap_seconds, deleted=deleted)
        if callable(own)
        else None
    )
    if served is not None:
        yield from served
        return
    listing = client.list_changed(
        resource, since=since, overlap_seconds=overlap_seconds, deleted=deleted
    )
    for record in listing:
        ext_id = str(record.get("extId") or "")
        if not ext_id or ext_id.startswith(ext_prefix):
            yield record


class SsmToSage(SyncPass):
    """Sales Management -> Sage 50FR for one entity of one dossier."""

    direction = SSM_TO_SAGE
    #: the other entities of the dossier writing this resource (:meth:`sibling_entities`)
    _siblings: list[str] | None = None

    def execute(self) -> None:
        ctx, entity, session, client = self.ctx, self.entity, self.session, self.ctx.ssm_client
        cursor = cursor_row(session, self.dossier_id, entity.name, SSM_TO_SAGE)
        full = ctx.full or cursor.cursor is None or self.reconcile_due(cursor)
        since, overlap = (None if full else cursor.cursor), ctx.sync.overlap_seconds
        # a change probe saw what changed and when: the pass reads from the oldest change
        # it saw, a few seconds back, and leaves the cursor where it is, for the
        # scheduled pass to read from it with its whole window. Read from the cursor, the
        # window would bring every record changed in the last minutes again: after
        # 100,000 accounts were created, all of them, for every edit
        told = since is not None and ctx.changes_from is not None
        if told:
            since, overlap = ctx.changes_from, min(overlap, CHANGE_OVERLAP_SECONDS)
        if (
            since is not None
            and not told
            and not self.has_retries()
            and not any(client.changes_since(r, since) for r in entity.watched_resources())
        ):
            # nothing updated or deleted in SSM after the newest change already read: the
            # overlap window is read again only when something new comes with it
            self.commit()
            return
        # deleted records are listed for every entity: where a deletion in SSM does not
        # reach Sage, the record kept in Sage is still labelled and told (an incident)
        deleted = True
        propagated = entity.ssm_deletions != "never"
        prefix = f"{self.dossier_id}:"
        newest = cursor.cursor
        unlinked = entity.ssm_unlinked_filter(ctx)
        # records created in SSM, with no extId yet, may be this dossier's: when the
        # entity cannot narrow them down, one listing of every record serves both
        everything = unlinked is not None and not unlinked
        if everything:
            # every dossier's pass reads the same resource: the endpoint may serve them
            # all from one listing
            listing = with_unlinked(client, self.resource, prefix, overlap, deleted, since)
        else:
            listing = client.list_changed(
                self.resource,
                since=since,
                overlap_seconds=overlap,
                deleted=deleted,
                ext_prefix=None if everything else prefix,
            )
        seen: set[int] = set()
        #: records Sage -> SSM change passes wrote during this pass (``meanwhile``)
        self.rewritten: set[int] = set()
        self.looked_at = time.monotonic()
        for batch in batched(listing, ctx.sync.batch_size):
            batch = self.fresh(batch)
            mine = self.mine(batch)
            links = self.links_for(Link.ssm_id, [int(r["id"]) for r in mine])
            for record in mine:
                newest = later(newest, client.changed_at(record))
                seen.add(int(record["id"]))
                link = links.get(int(record["id"]))
                if record.get("deleted") and not propagated and not self.to_tell(link):
                    continue  # a deletion already told, or of a record no longer linked
                self.run.add("read")
                self.guarded(record, link)
            if everything:
                for record in batch:
                    seen.add(int(record["id"]))  # listed: not vanished, even if new
                    newest = self.stray(record, newest)
            self.commit()
            self.meanwhile()
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
        if not told:
            cursor.cursor = newest
        if full:
            cursor.last_full_sync_at = utcnow()
        self.commit()

    def meanwhile(self) -> None:
        """Between two batches, every :data:`CATCH_UP_SECONDS`: the Sage edits made since
        are sent by change passes of their own (``sync.meanwhile``), instead of waiting
        for this pass to end."""
        if self.ctx.meanwhile is None or time.monotonic() - self.looked_at < CATCH_UP_SECONDS:
            return
        self.rewritten |= self.ctx.meanwhile(self.resource)
        self.looked_at = time.monotonic()

    def fresh(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``batch`` with the records a change pass wrote meanwhile read again: the
        listing may have read them before, and their older values must not reach Sage
        (a record SSM no longer lists stays as listed)."""
        ids = [int(r["id"]) for r in batch if int(r["id"]) in self.rewritten]
        if not ids:
            return batch
        again = {int(r["id"]): r for r in self.ctx.ssm_client.find(self.resource, ids=ids)}
        return [again.get(int(r["id"]), r) for r in batch]

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
            mine = self.mine(found)
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

    def mine(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records this pass reads: their extId is this dossier's and names a key of
        this entity (``Entity.owns_key``), and no other entity of the dossier writing the
        same resource linked them. An entity owns the records it wrote: orders never read
        the sales orders a quotes plugin wrote, nor the other way round."""
        prefix, entity = f"{self.dossier_id}:", self.entity
        mine = [
            r
            for r in records
            if str(r.get("extId") or "").startswith(prefix)
            and entity.owns_key(str(r["extId"])[len(prefix) :])
        ]
        others = self.sibling_entities()
        if not mine or not others:
            return mine
        claimed = set(
            self.session.scalars(
                select(Link.ext_id).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity.in_(others),
                    Link.ext_id.in_([str(r["extId"]) for r in mine]),
                )
            )
        )
        return [r for r in mine if str(r["extId"]) not in claimed]

    def sibling_entities(self) -> list[str]:
        """The other entities of the dossier that write this pass's SSM resource."""
        if self._siblings is None:
            writers = self.ctx.writers.get(self.resource, ())
            self._siblings = [name for name in writers if name != self.entity.name]
        return self._siblings

    @staticmethod
    def to_tell(link: Link | None) -> bool:
        """Whether a deletion in SSM of this linked record is news for the state store."""
        return link is not None and not link.deleted and link.label != LinkLabel.PENDING_REVIEW

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
        # the links' ids alone: a complete pass of 100,000 accounts does not hold 100,000
        # links (each with its agreed record) to find the few that vanished
        known = 0
        gone: list[int] = []
        for link_id, ssm_id in self.session.execute(
            select(Link.id, Link.ssm_id).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == self.entity.name,
                Link.deleted.is_(False),
                Link.ssm_id.is_not(None),
                Link.label != LinkLabel.PENDING_REVIEW,
            )
        ):
            known += 1
            if ssm_id not in seen:
                gone.append(link_id)
        refusal = (
            f"{len(gone)} of {known} linked {self.entity.name} missing from the "
            "Sales Management listing: nothing deleted in Sage 50FR"
        )
        if not guards.mass_deletion_guard(self, len(gone), known, refusal):
            return
        for chunk in batched(gone, self.ctx.sync.batch_size):
            for link in self.session.scalars(select(Link).where(Link.id.in_(chunk))):
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
                Link.label.in_(RETRIED),
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
        if link.origin != LinkOrigin.SSM or link.sage_hash is not None or not key:
            return
        if self.ctx.sage.get(self.table, entity.key_from_text(key)) is not None:
            mark(link, LinkLabel.PENDING_REVIEW, Kept.IN_SAGE_WRITTEN)
            add_event(self.session, self.run, key, Action.KEPT, Kept.IN_SAGE_WRITTEN)
            return
        ref = f"ssm:{self.resource}/{link.ssm_id}"
        add_event(self.session, self.run, ref, Action.DROPPED, "deleted in Sales Management")
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
        intent = link is not None and link.origin == LinkOrigin.SSM and link.sage_hash is None
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
                mark(link, LinkLabel.PENDING, str(exc))
            self.run.add("pending")
            add_event(self.session, self.run, key, Action.PENDING, str(exc))
        except RecordMoved as exc:
            self.record_failed(
                link, key, IncidentKind.MOVED_BETWEEN_DOSSIERS, str(exc), cause=exc.cause
            )
        except RecordInvalid as exc:
            # the Sage row it would be written over holds a value that cannot be read
            self.record_failed(
                link, key, "invalid_record", str(exc), field_name=exc.field, problem=exc.problem
            )
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
        if link is not None and link.sage_key and link.origin != LinkOrigin.SSM:
            return link.sage_key
        return f"ssm:{self.resource}/{record['id']}"

    def cleared(self, link: Link, record: dict[str, Any]) -> None:
        """A linked record that went through unchanged: what this direction found wrong
        with it before is closed, and it is ``synced`` unless the other direction still
        has an incident open."""
        self.run.add("unchanged")
        if link.label != LinkLabel.ERROR or not self.has_open_incidents:
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
            mark(link, LinkLabel.SYNCED)

    def linked(self, record: dict[str, Any], link: Link | None) -> None:
        ctx, entity = self.ctx, self.entity
        if link is None or link.deleted or link.sage_key is None:
            # no link yet (the Sage pass adopts it) or already deleted
            self.run.add("unchanged")
            return
        if record.get("deleted"):
            self.deleted_in_ssm(record, link)
            return
        if link.label == LinkLabel.PENDING_REVIEW:
            self.run.add("unchanged")
            return
        if link.origin == LinkOrigin.SAGE and link.base is None:
            # created in Sage, its first write to SSM not settled (its children, say): no
            # agreed record to compare with yet; the Sage pass finishes it
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
            if n in incoming
            and shared_view(entity, n, incoming[n]) != shared_view(entity, n, base.get(n))
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
            n
            for n in changed
            if shared_view(entity, n, current.get(n)) != shared_view(entity, n, base.get(n))
        ]
        if conflicts and entity.conflict_winner == "sage":
            changed = [n for n in changed if n not in conflicts]
            add_event(
                self.session, self.run, key, Action.CONFLICT, "Sage kept: " + ",".join(conflicts)
            )
        if not changed:
            self.run.add("unchanged")
            return
        merged = dict(current)
        merged.update({n: merge_children(entity, n, current.get(n), incoming[n]) for n in changed})
        try:
            entity.validate(merged, self.lengths)
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
                write_sage_children(entity, ctx.sage, sage_key, current, merged, changed)
        except SourceError as exc:
            self.record_failed(link, key, IncidentKind.SAGE_WRITE_FAILED, str(exc), refused=False)
            return
        self.settle(link, key, sage_key, merged, changed, Action.UPDATED)

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

    def deleted_in_ssm(self, record: dict[str, Any], link: Link) -> None:
        ctx, entity = self.ctx, self.entity
        key = link.sage_key or ""
        if entity.ssm_deletions == "origin" and link.origin == LinkOrigin.SSM:
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
                self.record_failed(
                    link, key, IncidentKind.SAGE_WRITE_FAILED, str(exc), refused=False
                )
                return
            link.deleted = True
            self.succeeded(link, key, Action.DELETED)
            return
        if link.label == LinkLabel.PENDING_REVIEW and link.last_error in KEPT_IN_SSM:
            # already gone from Sage and kept in SSM for review: now gone from both sides
            link.deleted = True
            mark(link, LinkLabel.SYNCED)
            add_event(self.session, self.run, key, Action.DROPPED, BOTH_SIDES)
            resolve_incidents(self.session, self.dossier_id, entity.name, record_keys=[key])
        elif link.label != LinkLabel.PENDING_REVIEW:
            # a deletion in SSM does not reach Sage: kept there, and a person is told
            guards.deleted_in_ssm(self, link)
        self.run.add("unchanged")

    def settle(
        self,
        link: Link,
        key: str,
        sage_key: tuple[Any, ...],
        record: dict[str, Any],
        changed: list[str],
        action: Action,
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
        if action == Action.CREATED:
            extra["extId"] = link.ext_id
        assert link.ssm_id is not None
        try:
            for child in entity.children:
                if child.ssm_resource and child.name in changed:
                    name_ssm_children(entity, ctx, child, link.ssm_id, link.ext_id or "", stored)
            if extra:
                ctx.ssm_client.update(self.resource, link.ssm_id, extra)
        except SsmRefused as exc:
            self.record_refused(link, key, exc)
            return
        self.succeeded(link, key, action, ",".join(changed))

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
                entity.validate(entity.with_key(incoming, sage_key), self.lengths)
            except RecordInvalid as exc:
                name = entity.ssm_path(exc.field or "(record)")
                self.record_failed(
                    None, ref, "invalid_record", str(exc), field_name=name, problem=exc.problem
                )
                return
            holder = self.links_for(Link.sage_key, [key]).get(key)
            if holder is not None:
                # never a second link for one Sage key: the entity's numbering gave a key
                # a link holds (a record gone from Sage whose link stays)
                message = (
                    f"the new Sage 50FR key {key} is held by another linked record "
                    f"(SSM id {holder.ssm_id}); nothing written"
                )
                self.record_failed(
                    None, ref, IncidentKind.SAGE_WRITE_FAILED, message, refused=False
                )
                return
            link = Link(
                dossier_id=self.dossier_id,
                entity=entity.name,
                sage_key=key,
                ssm_id=ssm_id,
                ext_id=entity.ext_id(self.dossier_id, key),
                origin=LinkOrigin.SSM,
                label=LinkLabel.PENDING,
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
                    write_sage_children(entity, ctx.sage, sage_key, {}, candidate, names)
        except SourceError as exc:
            self.record_failed(link, ref, IncidentKind.SAGE_WRITE_FAILED, str(exc), refused=False)
            return
        self.settle(link, key, sage_key, candidate, names, Action.CREATED)

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
