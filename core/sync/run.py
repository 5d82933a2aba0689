"""Running the passes: one dossier, one entity, one direction, journaled as a run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ..context import DossierContext
from ..entity import Entity
from ..errors import DossierSyncError
from ..fence import LeaseLost
from ..journal import (
    RunRecord,
    finish_run,
    record_incident,
    resolve_incidents,
    start_run,
)
from ..lang import mapped, said, said_of
from ..messages import Notice
from ..refs import Refs
from ..secrets import scrub
from ..vocabulary import SAGE_TO_SSM, IncidentKind, RunOutcome
from .base import SyncPass, secrets_of
from .stop import STOP, Interrupted
from .to_sage import SsmToSage
from .to_ssm import SageToSsm

log = logging.getLogger("dossiersync.engine")


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
        sync_pass: SyncPass = (SageToSsm if direction == SAGE_TO_SSM else SsmToSage)(
            ctx, entity, run, session
        )
        sync_pass.execute()
        sync_pass.publish_status()
        problems = run.counts["failed"] + run.counts["refused"]
        run.outcome = RunOutcome.PARTIAL if problems else RunOutcome.SUCCEEDED
        if problems:
            run.message = said("{count} record(s) not synced, see incidents", count=problems)
        resolve_incidents(
            session,
            ctx.dossier_id,
            entity.name,
            direction=direction,
            kinds=(IncidentKind.RUN_FAILED,),
        )
        session.commit()
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the others
        session.rollback()
        if isinstance(exc, DossierSyncError):
            message = mapped(said_of(exc), lambda text: scrub(text, secrets_of(ctx)))
        else:
            log.exception("internal error in %s/%s/%s", ctx.dossier_id, entity.name, direction)
            message = f"internal error: {type(exc).__name__}: {exc}"
            message = scrub(message, secrets_of(ctx))
        run.outcome = RunOutcome.FAILED
        run.message = message
        notice = Notice(
            IncidentKind.RUN_FAILED,
            ctx.dossier_id,
            entity=entity.name,
            direction=direction,
            reason=message,
        )
        record_incident(
            session,
            ctx.hooks,
            ctx.dossier_id,
            entity=entity.name,
            record_key=None,
            direction=direction,
            kind=IncidentKind.RUN_FAILED,
            message=message,
            run_id=run.id,
            detail=notice.as_dict(),
        )
        session.commit()
    except BaseException as exc:
        # interrupted (Ctrl-C, SIGTERM, its lease lost): what the pass committed stays,
        # its cursor did not move; the run says so instead of staying "running"
        session.rollback()
        run.outcome = RunOutcome.INTERRUPTED
        run.message = (
            said_of(exc)
            if isinstance(exc, LeaseLost)
            else said("interrupted before its end; the next sync goes on from where it was")
        )
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
        if direction == SAGE_TO_SSM and ctx.meanwhile is not None:
            ctx.meanwhile.passed(entity)
        if on_run:
            on_run(run)
    return runs
