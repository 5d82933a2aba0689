"""Sage edits made while a long SSM → Sage pass runs: sent during it, not after.

A dossier's passes run one after the other under its lease, and the SSM → Sage pass of a
large dossier (the complete one of a first sync or a reactivation lists every account)
can take minutes: an edit made in Sage meanwhile would wait for its end. So between its
batches, every :data:`~dossiersync.sync.to_ssm.CATCH_UP_SECONDS`, the pass asks whether
Sage changed (the service's Sage probe: the file's change mark, then one small query)
and, if it did, runs the Sage → SSM change pass of each part that moved, journaled as
any change pass (trigger ``change``), before going on.

Only parts whose Sage → SSM pass is not still to come in this sync are passed (one still
to come reads the edit itself), and only once they have a cursor (a change pass, never a
complete one). The SSM records those passes wrote may sit in a page of the listing the
long pass read before them: it reads each of them again before handling it
(:meth:`SsmToSage.fresh`), so an old page never carries an older value back to Sage.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from sqlalchemy import select

from ..context import DossierContext
from ..entity import Entity
from ..errors import DossierSyncError
from ..journal import RunRecord, utcnow
from ..probes import ProbeStats, SageProbe
from ..refs import Refs
from ..state.models import DossierEntity, Link
from ..vocabulary import SAGE_TO_SSM, RunOutcome

log = logging.getLogger("dossiersync.engine")


class Meanwhile:
    """One dossier's sync: the Sage → SSM change passes run during its long passes."""

    def __init__(
        self,
        ctx: DossierContext,
        parts: list[Entity],
        run_pass: Callable[[DossierContext, Entity, str], RunRecord],
        *,
        coming: bool = True,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.run_pass = run_pass
        self.on_run = on_run
        #: the sync's parts that run Sage → SSM, in the dossier's order
        self.parts = [p for p in parts if SAGE_TO_SSM in p.directions]
        #: those whose Sage → SSM pass is still to come in this sync
        self.coming = {p.name for p in self.parts} if coming else set()
        #: the change passes run so far
        self.runs: list[RunRecord] = []
        self.probe = SageProbe(ProbeStats())
        self.started = False
        #: a change pass failed: none is tried again in this sync
        self.off = False

    def passed(self, part: Entity) -> None:
        """``part``'s Sage → SSM pass of this sync is done."""
        self.coming.discard(part.name)

    def __call__(self, resource: str) -> set[int]:
        """Send the Sage edits made since the last look; the ids of the ``resource``
        records the change passes wrote (the caller reads them again)."""
        ctx = self.ctx
        ready = [p for p in self.parts if p.name not in self.coming]
        if self.off or not ready:
            return set()
        if not self.started:
            # the first look compares with each part's cursor, the next ones with the
            # look before
            self.started = True
            self.probe.resume_from(ctx.store, [ctx.dossier_id])
        try:
            moved = set(self.probe.changed(ctx.dossier, ctx.sage))
        except DossierSyncError as exc:
            # Sage could not be asked now (a lock, say): the long pass goes on, and the
            # next look, or the change pass after it, finds the edits
            log.info("sage not probed during a pass of %s: %s", ctx.dossier_id, exc)
            return set()
        due = [p for p in ready if p.name in moved and self.has_cursor(p)]
        if not due:
            return set()
        nested = dataclasses.replace(
            ctx,
            full=False,
            realign=False,
            trigger="change",
            changes_from=None,
            progress=None,
            meanwhile=None,
        )
        began = utcnow()
        for part in due:
            log.info("sage changed during a pass: dossier=%s part=%s", ctx.dossier_id, part.name)
            run = self.run_pass(nested, part, SAGE_TO_SSM)
            self.runs.append(run)
            if self.on_run is not None:
                self.on_run(run)
            if run.outcome == RunOutcome.FAILED:
                self.off = True
                break
        outer = ctx.refs.session
        # what the change passes wrote is read again by the long pass: its links, and
        # the references it looked up
        outer.expire_all()
        ctx.refs = Refs(outer, ctx.dossier_id)
        names = [p.name for p in due if p.ssm_resource == resource]
        if not names:
            return set()
        written = outer.scalars(
            select(Link.ssm_id).where(
                Link.dossier_id == ctx.dossier_id,
                Link.entity.in_(names),
                Link.updated_at >= began,
                Link.ssm_id.is_not(None),
            )
        )
        return {int(i) for i in written if i is not None}

    def has_cursor(self, part: Entity) -> bool:
        with self.ctx.store.session() as s:
            row = s.get(DossierEntity, (self.ctx.dossier_id, part.name, SAGE_TO_SSM))
            return row is not None and row.cursor is not None
