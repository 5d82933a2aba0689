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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .context import DossierContext
from .entity import SAGE_TO_SSM, SSM_TO_SAGE, Entity, record_hash
from .errors import DossierSyncError, RecordInvalid, SourceError, SsmRefused
from .journal import (
    RunRecord,
    add_event,
    finish_run,
    open_incident,
    resolve_incidents,
    start_run,
    utcnow,
)
from .secrets import scrub
from .state.models import DossierEntity, Link

log = logging.getLogger("dossiersync.engine")
T = TypeVar("T")

SAGE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def shift_sage_time(value: str, seconds: int) -> str:
    """A Sage clock reading moved by ``seconds`` (format ``YYYY-MM-DD hh:mm:ss.fff``)."""
    moved = datetime.strptime(value[:23].ljust(23, "0"), SAGE_FORMAT) + timedelta(seconds=seconds)
    return moved.strftime(SAGE_FORMAT)[:23]


def shift_ssm_time(value: str, seconds: int) -> str:
    """An SSM ``dateUpdated`` moved by ``seconds``, in the API's ISO format."""
    moved = datetime.fromisoformat(value.replace("Z", "")) + timedelta(seconds=seconds)
    return moved.strftime("%Y-%m-%dT%H:%M:%S")


def quote(value: str) -> str:
    """A string literal for a ``where=`` expression."""
    return "'" + value.replace("'", "''") + "'"


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
    with ctx.store.session() as session:
        run = start_run(session, ctx.dossier_id, entity.name, direction, ctx.trigger, ctx.full)
    log.info(
        "run started",
        extra={"dossier": ctx.dossier_id, "entity": entity.name, "direction": direction},
    )
    ctx.hooks.dossiersync_run_started(run=run)
    session = ctx.store.new_session()
    try:
        if error is not None:
            raise error
        sync_pass: _Pass = (SageToSsm if direction == SAGE_TO_SSM else SsmToSage)(
            ctx, entity, run, session
        )
        sync_pass.execute()
        problems = run.counts["failed"] + run.counts["refused"]
        run.outcome = "partial" if problems else "succeeded"
        if problems:
            run.message = f"{problems} record(s) not synced, see incidents"
        resolve_incidents(session, ctx.dossier_id, entity.name, direction=direction)
        session.commit()
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the others
        session.rollback()
        if isinstance(exc, DossierSyncError):
            message = scrub(str(exc), [ctx.dossier.connection, *_impl_secrets(ctx)])
        else:
            log.exception("internal error in %s/%s/%s", ctx.dossier_id, entity.name, direction)
            message = f"internal error: {type(exc).__name__}: {exc}"
            message = scrub(message, [ctx.dossier.connection, *_impl_secrets(ctx)])
        run.outcome = "failed"
        run.message = message
        opened = open_incident(
            session,
            ctx.dossier_id,
            entity=entity.name,
            record_key=None,
            direction=direction,
            kind="run_failed",
            message=message,
            run_id=run.id,
        )
        session.commit()
        if opened:
            ctx.hooks.dossiersync_incident_opened(
                dossier=ctx.dossier_id,
                entity=entity.name,
                record_key=None,
                kind="run_failed",
                message=message,
            )
    finally:
        finish_run(session, run)
        session.close()
    log.info(
        "run finished: %s",
        run.outcome,
        extra={"dossier": ctx.dossier_id, "entity": entity.name, "direction": direction},
    )
    ctx.hooks.dossiersync_run_finished(run=run)
    return run


def _impl_secrets(ctx: DossierContext) -> list[Any]:
    return [ctx.implementation.public_key, ctx.implementation.private_key]


class _Pass:
    def __init__(
        self, ctx: DossierContext, entity: Entity, run: RunRecord, session: Session
    ) -> None:
        self.ctx = ctx
        self.entity = entity
        self.run = run
        self.session = session
        self.dossier_id = ctx.dossier_id
        self.direction = SAGE_TO_SSM
        self.resource = entity.ssm_resource
        self.table = entity.sage_table

    def execute(self) -> None:
        raise NotImplementedError

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
        resolve_incidents(self.session, self.dossier_id, self.entity.name, record_keys=[key])

    def record_failed(
        self,
        link: Link | None,
        key: str,
        kind: str,
        message: str,
        *,
        field_name: str | None = None,
        refused: bool = True,
    ) -> None:
        message = scrub(message, [self.ctx.dossier.connection])
        if link is not None:
            link.label = "error"
            link.last_error = message
            link.updated_at = utcnow()
        self.run.add("refused" if refused else "failed")
        add_event(self.session, self.run, key, "failed", message)
        opened = open_incident(
            self.session,
            self.dossier_id,
            entity=self.entity.name,
            record_key=key,
            direction=self.direction,
            kind=kind,
            message=message,
            field_name=field_name,
            run_id=self.run.id,
        )
        if opened:
            self.ctx.hooks.dossiersync_incident_opened(
                dossier=self.dossier_id,
                entity=self.entity.name,
                record_key=key,
                kind=kind,
                message=message,
            )

    def canonical_from_sage(self, row: dict[str, Any], direction: str) -> dict[str, Any]:
        record = self.entity.from_sage(row)
        self.ctx.transform(self.entity.name, direction, record)
        self.entity.validate(record)
        return record


Op = tuple[str, Link, dict[str, Any], str, list[str]]


class SageToSsm(_Pass):
    """Sage 50FR -> Sales Management for one entity of one dossier."""

    def execute(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        cursor = cursor_row(session, self.dossier_id, entity.name, SAGE_TO_SSM)
        full = ctx.full or cursor.cursor is None
        clock = ctx.sage.clock()
        since = None if full else shift_sage_time(cursor.cursor or clock, -ctx.sync.overlap_seconds)
        known = session.scalar(
            select(func.count())
            .select_from(Link)
            .where(Link.dossier_id == self.dossier_id, Link.entity == entity.name)
        )
        # with no link at all (new state store, reinstall) records already in SSM are
        # adopted by extId instead of being created twice
        self.adopt: dict[str, int] | None = None if known else self.ssm_index()
        retry = set(
            session.scalars(
                select(Link.sage_key).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == entity.name,
                    Link.origin == "sage",
                    Link.label.in_(("error", "pending")),
                    Link.deleted.is_(False),
                    Link.sage_key.is_not(None),
                )
            )
        )
        seen: set[str] = set()
        columns = entity.sage_columns
        rows = ctx.sage.read(self.table, columns, since=since, where=entity.sage_where())
        with ThreadPoolExecutor(max_workers=ctx.implementation.max_concurrency) as pool:
            self.pool = pool
            for batch in batched(rows, ctx.sync.batch_size):
                self.process(batch, seen)
            retry -= seen
            if retry:
                keys = [entity.key_from_text(k) for k in sorted(k for k in retry if k)]
                rows = ctx.sage.read(self.table, columns, keys=keys, where=entity.sage_where())
                for batch in batched(rows, ctx.sync.batch_size):
                    self.process(batch, seen)
            self.deletions()
        cursor.cursor = clock
        if full:
            cursor.last_full_sync_at = utcnow()
        session.commit()

    def ssm_index(self) -> dict[str, int]:
        prefix = f"{self.dossier_id}:"
        found: dict[str, int] = {}
        for record in self.ctx.ssm_client.list(
            self.resource, where=f"extId LIKE {quote(prefix + '%')}"
        ):
            ext = str(record.get("extId") or "")
            if ext.startswith(prefix):
                found[ext] = int(record["id"])
        return found

    def find_in_ssm(self, ext_id: str) -> int | None:
        if self.adopt is not None:
            return self.adopt.get(ext_id)
        for record in self.ctx.ssm_client.list(self.resource, where=f"extId = {quote(ext_id)}"):
            if record.get("extId") == ext_id:
                return int(record["id"])
        return None

    def process(self, rows: list[dict[str, Any]], seen: set[str]) -> None:
        entity, session = self.entity, self.session
        keyed: list[tuple[str, dict[str, Any]]] = []
        for row in rows:
            self.run.add("read")
            key = entity.key_text(entity.sage_key(row))
            if key not in seen:
                seen.add(key)
                keyed.append((key, row))
        links = self.links_for(Link.sage_key, [k for k, _ in keyed])
        ops: list[Op] = []
        for key, row in keyed:
            link = links.get(key)
            try:
                canonical = self.canonical_from_sage(row, SAGE_TO_SSM)
            except RecordInvalid as exc:
                if link is None:
                    link = self.new_link(key)
                self.record_failed(link, key, "invalid_record", str(exc), field_name=exc.field)
                continue
            digest = record_hash(canonical)
            if link is None or link.ssm_id is None or link.deleted:
                if link is None:
                    link = self.new_link(key)
                elif link.deleted:
                    link.deleted = False
                    link.ssm_id = None
                link.label = "pending"
                ops.append(("create", link, canonical, digest, []))
                continue
            if link.sage_hash == digest and link.label == "synced" and not self.ctx.realign:
                self.run.add("unchanged")
                continue
            base = link.base or {}
            names = [
                f.name
                for f in entity.fields_to_ssm
                if self.ctx.realign or canonical.get(f.name) != base.get(f.name)
            ]
            if not names:
                # only Sage-side fields SSM does not hold changed
                link.base, link.sage_hash = canonical, digest
                self.succeeded(link, key, "unchanged")
                continue
            ops.append(("update", link, canonical, digest, names))
        # intent rows are durable before any create is sent
        session.commit()
        fatal: Exception | None = None
        for op, outcome in zip(ops, self.pool.map(self.write, ops), strict=True):
            fatal = self.apply(op, outcome) or fatal
        session.commit()
        if fatal is not None:
            # the API is down or refuses our keys: stop the run, keep the cursor
            raise fatal

    def new_link(self, key: str) -> Link:
        link = Link(
            dossier_id=self.dossier_id,
            entity=self.entity.name,
            sage_key=key,
            ext_id=self.entity.ext_id(self.dossier_id, key),
            origin="sage",
            label="pending",
            deleted=False,
            updated_at=utcnow(),
        )
        self.session.add(link)
        return link

    def write(self, op: Op) -> tuple[str, int | None] | Exception:
        """Runs in the pool: HTTP only, no state-store access."""
        kind, link, canonical, _digest, names = op
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        try:
            if kind == "create":
                assert link.ext_id is not None
                existing = self.find_in_ssm(link.ext_id)
                if existing is not None:
                    # already in SSM (earlier crash, lost state): realign, never duplicate
                    all_names = [f.name for f in entity.fields_to_ssm]
                    body = entity.to_ssm(canonical, all_names, ctx, create=False)
                    client.update(self.resource, existing, body)
                    return ("adopted", existing)
                body = entity.to_ssm(
                    canonical, [f.name for f in entity.fields_to_ssm], ctx, create=True
                )
                body["extId"] = link.ext_id
                return ("created", client.create(self.resource, body))
            assert link.ssm_id is not None
            client.update(self.resource, link.ssm_id, entity.to_ssm(canonical, names, ctx, False))
            return ("updated", link.ssm_id)
        except Exception as exc:  # noqa: BLE001 - sorted out in apply()
            return exc

    def apply(self, op: Op, outcome: tuple[str, int | None] | Exception) -> Exception | None:
        """Record a write's outcome; return the exception that must stop the run."""
        _kind, link, canonical, digest, names = op
        key = link.sage_key or ""
        if isinstance(outcome, SsmRefused):
            self.record_failed(link, key, "refused_by_ssm", f"Sales Management refused: {outcome}")
            return None
        if isinstance(outcome, Exception):
            return outcome
        action, ssm_id = outcome
        link.ssm_id = ssm_id
        link.base = canonical
        link.sage_hash = digest
        detail = ",".join(names) if names else None
        self.succeeded(link, key, "created" if action == "created" else "updated", detail)
        return None

    def deletions(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        present = {
            entity.key_text(k) for k in ctx.sage.read_keys(self.table, where=entity.sage_where())
        }
        candidates = session.execute(
            select(Link.id, Link.sage_key).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == entity.name,
                Link.deleted.is_(False),
                Link.ssm_id.is_not(None),
                Link.label != "pending",
                Link.sage_key.is_not(None),
            )
        ).all()
        vanished = [link_id for link_id, key in candidates if key not in present]
        if not vanished:
            return
        limit = max(
            ctx.sync.mass_deletion_minimum, ctx.sync.mass_deletion_threshold * len(candidates)
        )
        if len(vanished) > limit:
            message = (
                f"{len(vanished)} of {len(candidates)} known {entity.name} vanished from Sage "
                "at once: deletions refused (restored or replaced Sage database?)"
            )
            open_incident(
                session,
                self.dossier_id,
                entity=entity.name,
                record_key=None,
                direction=SAGE_TO_SSM,
                kind="mass_deletion_refused",
                message=message,
                run_id=self.run.id,
            )
            self.run.message = message
            return
        for chunk in batched(vanished, self.ctx.sync.batch_size):
            links = list(session.scalars(select(Link).where(Link.id.in_(chunk))))
            outcomes = list(self.pool.map(self.delete_one, links))
            for link, outcome in zip(links, outcomes, strict=True):
                key = link.sage_key or ""
                if isinstance(outcome, SsmRefused) and outcome.status not in (400, 404):
                    self.record_failed(link, key, "refused_by_ssm", str(outcome))
                elif isinstance(outcome, Exception) and not isinstance(outcome, SsmRefused):
                    session.commit()
                    raise outcome
                else:
                    link.deleted = True
                    self.succeeded(link, key, "deleted")
            session.commit()

    def delete_one(self, link: Link) -> Exception | None:
        try:
            assert link.ssm_id is not None
            self.ctx.ssm_client.delete(self.resource, link.ssm_id)
        except Exception as exc:  # noqa: BLE001
            return exc
        return None


class SsmToSage(_Pass):
    """Sales Management -> Sage 50FR for one entity of one dossier."""

    def __init__(
        self, ctx: DossierContext, entity: Entity, run: RunRecord, session: Session
    ) -> None:
        super().__init__(ctx, entity, run, session)
        self.direction = SSM_TO_SAGE

    def execute(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        cursor = cursor_row(session, self.dossier_id, entity.name, SSM_TO_SAGE)
        full = ctx.full or cursor.cursor is None
        since = None if full else shift_ssm_time(cursor.cursor or "", -ctx.sync.overlap_seconds)
        date_filter = f" AND dateUpdated >= {quote(since)}" if since else ""
        prefix = f"{self.dossier_id}:"
        newest = cursor.cursor
        where = f"extId LIKE {quote(prefix + '%')}{date_filter}"
        for batch in batched(ctx.ssm_client.list(self.resource, where=where), ctx.sync.batch_size):
            mine = [r for r in batch if str(r.get("extId") or "").startswith(prefix)]
            links = self.links_for(Link.ssm_id, [int(r["id"]) for r in mine])
            for record in mine:
                newest = _later(newest, record.get("dateUpdated"))
                self.run.add("read")
                self.linked(record, links.get(int(record["id"])))
            session.commit()
        branch = ctx.dossier.branch_id
        if branch is not None:
            where = f"branchId = {int(branch)}{date_filter}"
            for batch in batched(
                ctx.ssm_client.list(self.resource, where=where), ctx.sync.batch_size
            ):
                for record in batch:
                    if record.get("extId"):
                        continue
                    newest = _later(newest, record.get("dateUpdated"))
                    if record.get("deleted") or not entity.belongs_to_dossier(record, ctx):
                        continue
                    self.run.add("read")
                    self.unlinked(record)
                    session.commit()
        cursor.cursor = newest
        if full:
            cursor.last_full_sync_at = utcnow()
        session.commit()

    def linked(self, record: dict[str, Any], link: Link | None) -> None:
        ctx, entity = self.ctx, self.entity
        if link is None or link.deleted or record.get("deleted") or link.sage_key is None:
            # no link yet (the Sage pass adopts it) or deleted: SSM deletions stay in SSM
            self.run.add("unchanged")
            return
        base = link.base or {}
        incoming = entity.from_ssm(record, ctx)
        ctx.transform(entity.name, SSM_TO_SAGE, incoming)
        changed = [
            n for n in entity.ssm_may_change(base) if n in incoming and incoming[n] != base.get(n)
        ]
        if not changed:
            self.run.add("unchanged")
            return
        key = link.sage_key
        sage_key = entity.key_from_text(key)
        row = ctx.sage.get(self.table, sage_key, entity.sage_columns)
        if row is None:
            self.run.add("unchanged")
            return
        current = entity.from_sage(row)
        conflicts = [n for n in changed if current.get(n) != base.get(n)]
        if conflicts and entity.conflict_winner == "sage":
            changed = [n for n in changed if n not in conflicts]
            add_event(self.session, self.run, key, "conflict", "Sage kept: " + ",".join(conflicts))
        if not changed:
            self.run.add("unchanged")
            return
        merged = dict(current)
        merged.update({n: incoming[n] for n in changed})
        try:
            entity.validate(merged)
        except RecordInvalid as exc:
            self.record_failed(link, key, "invalid_record", str(exc), field_name=exc.field)
            return
        try:
            with ctx.sage.transaction():
                ctx.sage.update(self.table, sage_key, entity.to_sage(merged, changed, ctx, False))
        except SourceError as exc:
            self.record_failed(link, key, "sage_write_failed", str(exc), refused=False)
            return
        self.settle(link, key, sage_key, merged, changed, "updated")

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
        row = ctx.sage.get(self.table, sage_key, entity.sage_columns)
        stored = entity.from_sage(row or {})
        link.base = stored
        link.sage_hash = record_hash(stored)
        extra = entity.after_sage_write(record, changed, ctx)
        if action == "created":
            extra["extId"] = link.ext_id
        if extra:
            assert link.ssm_id is not None
            try:
                ctx.ssm_client.update(self.resource, link.ssm_id, extra)
            except SsmRefused as exc:
                self.record_failed(link, key, "refused_by_ssm", str(exc))
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
        incoming = entity.from_ssm(record, ctx)
        ctx.transform(entity.name, SSM_TO_SAGE, incoming)
        names = [f.name for f in entity.fields_to_sage if f.name in incoming]
        if link is None:
            ref = f"ssm:{self.resource}/{ssm_id}"
            sage_key = entity.new_sage_key(incoming, ctx)
            key = entity.key_text(sage_key)
            candidate = dict(incoming, code=key)
            try:
                entity.validate(candidate)
            except RecordInvalid as exc:
                self.record_failed(None, ref, "invalid_record", str(exc), field_name=exc.field)
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
            session.commit()
            resolve_incidents(session, self.dossier_id, entity.name, record_keys=[ref])
        key = link.sage_key or ""
        sage_key = entity.key_from_text(key)
        candidate = dict(incoming, code=key)
        try:
            if ctx.sage.get(self.table, sage_key, entity.sage_columns) is None:
                with ctx.sage.transaction():
                    ctx.sage.insert(self.table, entity.to_sage(candidate, names, ctx, True))
        except SourceError as exc:
            self.record_failed(link, key, "sage_write_failed", str(exc), refused=False)
            return
        self.settle(link, key, sage_key, candidate, names, "created")


def _later(current: str | None, candidate: Any) -> str | None:
    if not candidate:
        return current
    text = str(candidate)
    return text if current is None or text > current else current


def run_entity(
    ctx: DossierContext,
    entity: Entity,
    on_run: Callable[[RunRecord], None] | None = None,
    error: Exception | None = None,
) -> list[RunRecord]:
    """Every direction of one entity for one dossier, Sage first."""
    runs = []
    for direction in entity.directions:
        run = run_pass(ctx, entity, direction, error)
        runs.append(run)
        if on_run:
            on_run(run)
    return runs
