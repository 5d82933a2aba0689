"""What every sync pass shares: the journal of its records, its incidents, its batches and
its cursor row."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..context import DossierContext
from ..entity import Entity
from ..errors import SsmError
from ..journal import (
    Action,
    RunRecord,
    add_event,
    record_incident,
    resolve_incidents,
)
from ..messages import Cause, Notice, Problem, record_of
from ..secrets import Secret, connection_secrets, scrub
from ..state.models import DossierEntity, Incident, Link
from ..vocabulary import SAGE_TO_SSM, IncidentKind
from .links import RETRIED, Kept, LinkLabel, mark
from .status import StatusFields
from .stop import STOP, Interrupted

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def cursor_row(session: Session, dossier_id: str, entity: str, direction: str) -> DossierEntity:
    row = session.get(DossierEntity, (dossier_id, entity, direction))
    if row is None:
        row = DossierEntity(dossier_id=dossier_id, entity=entity, direction=direction)
        session.add(row)
    return row


def secrets_of(ctx: DossierContext) -> list[Any]:
    """What a message about this dossier must not show: the endpoint's secret settings
    (the API keys) and the Sage password (the source itself is named, so that a bad path
    can be read)."""
    own = connection_secrets(ctx.dossier.connection, ctx.dossier.endpoint)
    return [v for v in ctx.implementation.settings.values() if isinstance(v, Secret)] + own


class SyncPass:
    """Base of a sync pass: what both directions need to journal their records."""

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
        #: the dossier and sync state each record shows in SSM, when configured
        self.status = StatusFields.for_pass(ctx, session, entity)
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

    @cached_property
    def lengths(self) -> dict[str, int | None]:
        """The text lengths of this dossier's Sage layout, by field (validation)."""
        return self.entity.text_lengths(self.ctx.sage)

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
                Link.label.in_(RETRIED),
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

    def succeeded(self, link: Link, key: str, action: Action, detail: str | None = None) -> None:
        mark(link, LinkLabel.SYNCED)
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
        if self.status is not None:
            self.status.flush(self.session)
        self.session.commit()

    def publish_status(self) -> None:
        """At the end of the pass: show in SSM the state of the records whose state moved
        without a write of theirs (``status.StatusFields.publish``)."""
        if self.status is not None:
            self.status.publish(self.session)

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
        secrets = secrets_of(self.ctx)
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
            mark(link, LinkLabel.ERROR, message)
        self.run.add("refused" if refused else "failed")
        add_event(self.session, self.run, key, Action.FAILED, message)
        self.incident_for_record(key, kind, notice, message, field_name=field_name)

    def incident_for_record(
        self,
        key: str,
        kind: str,
        notice: Notice,
        message: str,
        *,
        field_name: str | None = None,
        direction: str | None = None,
    ) -> None:
        """Open (or count) the incident of record ``key`` that ``notice`` words in every
        language and ``message`` says as journaled (its secrets already masked)."""
        self.has_open_incidents = True
        record_incident(
            self.session,
            self.ctx.hooks,
            self.dossier_id,
            entity=self.entity.name,
            record_key=key,
            direction=direction or self.direction,
            kind=kind,
            message=message,
            field_name=field_name,
            run_id=self.run.id,
            detail=notice.as_dict(),
        )

    def record_refused(self, link: Link | None, key: str, error: SsmError) -> None:
        """A record Sales Management refused: its incident quotes the API's own words."""
        self.record_failed(link, key, IncidentKind.REFUSED_BY_SSM, error.answer or str(error))

    def record_pending(self, link: Link, key: str, message: str) -> None:
        """Not written: a record it refers to is not synced yet; retried every pass."""
        mark(link, LinkLabel.PENDING, message)
        self.run.add("pending")
        add_event(self.session, self.run, key, Action.PENDING, message)

    def keep_vanished(self, reason: Kept, ids: list[int]) -> None:
        """Leave these records (link ids) in SSM, labelled for review."""
        for chunk in batched(ids, 500):
            for link in self.session.scalars(select(Link).where(Link.id.in_(chunk))):
                mark(link, LinkLabel.PENDING_REVIEW, reason)
                add_event(self.session, self.run, link.sage_key or "", Action.KEPT, reason)
        self.commit()

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
        self.entity.validate(record, self.lengths)
        return record
