"""Syncing dossiers: each one on its own, one failing never stopping the others."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .config import Config, DossierConfig
from .context import DossierContext
from .dossiers import proposed, sage_source
from .entity import Entity
from .errors import DossierSyncError, LeaseTaken
from .fence import Fence, LeaseLost, fenced
from .journal import RunRecord
from .lang import N_, mapped, said, said_as, said_of
from .lease import held
from .registry import dossier_hooks, load_entities
from .secrets import connection_secrets, scrub
from .state.models import Dossier
from .state.store import StateStore
from .sync.guards import REALIGNING, full_sync_done
from .sync.meanwhile import Meanwhile
from .sync.run import run_entity, run_pass
from .sync.stop import STOP
from .target import ssm_client as ssm_client
from .vocabulary import SAGE_TO_SSM, DossierState, RunOutcome

log = logging.getLogger("dossiersync.runner")


@dataclass
class DossierResult:
    """What one dossier's sync did: its runs, or why it did not run."""

    dossier_id: str
    runs: list[RunRecord] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.skipped is None
            and all(r.outcome == RunOutcome.SUCCEEDED for r in self.runs)
        )

    def reasons(self) -> list[str]:
        """One line per failed run (or per dossier that could not run), in English; the
        command line shows them in its language (``dossiersync.lang.spoken``)."""
        if self.error or self.skipped:
            return [
                said(
                    "{dossier}: {reason}",
                    dossier=self.dossier_id,
                    reason=self.error or self.skipped,
                )
            ]
        return [
            said(
                N_("{dossier} {entity} {direction}: {outcome}: {message}")
                if r.message
                else N_("{dossier} {entity} {direction}: {outcome}"),
                dossier=r.dossier_id,
                entity=r.entity,
                direction=r.direction,
                outcome=said_as("outcome", r.outcome),
                message=r.message,
            )
            for r in self.runs
            if r.outcome != RunOutcome.SUCCEEDED
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dossier_id": self.dossier_id,
            "ok": self.ok,
            "skipped": self.skipped,
            "error": self.error,
            "runs": [r.as_dict() for r in self.runs],
        }


def writers(entities: list[Entity]) -> dict[str, tuple[str, ...]]:
    """Each SSM resource and the entities (parts) of a dossier that write it."""
    found: dict[str, tuple[str, ...]] = {}
    for entity in entities:
        for part in entity.parts():
            found[part.ssm_resource] = (*found.get(part.ssm_resource, ()), part.name)
    return found


def sync(
    config: Config,
    store: StateStore,
    dossier_ids: list[str] | None = None,
    entity_names: list[str] | None = None,
    *,
    full: bool = False,
    trigger: str = "manual",
    on_run: Callable[[RunRecord], None] | None = None,
    stop: threading.Event | None = None,
    wait_seconds: float = 0,
    progress: Callable[[RunRecord], None] | None = None,
    adapt: Callable[[DossierContext], None] | None = None,
    directions: list[str] | None = None,
) -> list[DossierResult]:
    """Sync the given dossiers (default: every active one), each independently.

    ``stop`` ends the work at the next safe point (between two passes); a dossier whose
    lease another process holds is waited for up to ``wait_seconds``, then skipped.
    ``adapt`` may replace a dossier's endpoints or hooks before its passes start (the
    preview of ``sync --dry-run`` does); ``directions`` keeps only those passes (the
    service runs only what its change probes saw).
    """
    with store.session() as s:
        rows = {d.id: d for d in s.scalars(select(Dossier))}
    if dossier_ids:
        targets = list(dict.fromkeys(dossier_ids))
    else:
        targets = sorted(d for d, row in rows.items() if row.state == DossierState.ACTIVE)
    candidates = proposed(config)
    slots: list[DossierResult | None] = []
    due: list[tuple[int, DossierConfig]] = []
    for dossier_id in targets:
        row = rows.get(dossier_id)
        cfg = candidates.get(dossier_id)
        if row is None:
            slots.append(DossierResult(dossier_id, error=said("not activated (dossiers activate)")))
        elif row.state != DossierState.ACTIVE:
            slots.append(DossierResult(dossier_id, skipped=said("inactive: not read or written")))
        elif cfg is None:
            error = said("no longer in the configuration; not synced")
            slots.append(DossierResult(dossier_id, error=error))
        else:
            due.append((len(slots), cfg))
            slots.append(None)
    if due:
        client = ssm_client(config)

        def one(cfg: DossierConfig) -> DossierResult | None:
            if (stop is not None and stop.is_set()) or STOP.is_set():
                return None
            return sync_dossier(
                config,
                store,
                cfg,
                client,
                entity_names,
                full,
                trigger,
                on_run,
                stop=stop,
                wait_seconds=wait_seconds,
                progress=progress,
                adapt=adapt,
                directions=directions,
            )

        # several dossiers at a time (``service.parallel_dossiers``), each on its own —
        # its lease, Sage connection, runs and incidents — while their bulk writes to the
        # tenant may share calls (the endpoint's to combine)
        workers = max(1, min(config.service.parallel_dossiers, len(due)))
        try:
            if workers == 1 or adapt is not None:
                # one at a time, in this thread (the preview records each dossier's calls
                # as its passes make them, one dossier after the other)
                for n, cfg in due:
                    slots[n] = one(cfg)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="dossier") as pool:
                    futures = [(n, pool.submit(one, cfg)) for n, cfg in due]
                    try:
                        for n, future in futures:
                            slots[n] = future.result()
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
        finally:
            client.close()
    return [r for r in slots if r is not None]


def sync_dossier(
    config: Config,
    store: StateStore,
    dossier: DossierConfig,
    client: Any,
    entity_names: list[str] | None,
    full: bool,
    trigger: str,
    on_run: Callable[[RunRecord], None] | None = None,
    *,
    stop: threading.Event | None = None,
    wait_seconds: float = 0,
    progress: Callable[[RunRecord], None] | None = None,
    adapt: Callable[[DossierContext], None] | None = None,
    directions: list[str] | None = None,
) -> DossierResult:
    result = DossierResult(dossier.id)
    secrets = config.secrets()
    # an endpoint sharing calls between dossiers synced at once is told of this one
    syncing = getattr(client, "dossier_syncing", None)
    try:
        with (
            syncing() if syncing is not None else nullcontext(),
            held(store, dossier.id, config.sync.lease_seconds, wait_seconds) as holder,
            Fence(store, dossier.id, holder, config.sync.lease_seconds) as fence,
        ):
            enabled = everything = load_entities(dossier.entities)
            # an entity's name runs all its parts; a part's name (product_families, which
            # the change probes name) runs that part alone
            parts = {e.name: e.parts() for e in enabled}
            if entity_names:
                named = {p.name for ps in parts.values() for p in ps} | set(parts)
                unknown = sorted(set(entity_names) - named)
                if unknown:
                    result.error = said(
                        "entity not enabled for this dossier: {entities}",
                        entities=", ".join(unknown),
                    )
                    return result
                for e in enabled:
                    if e.name not in entity_names:
                        parts[e.name] = tuple(p for p in e.parts() if p.name in entity_names)
                enabled = [e for e in enabled if parts[e.name]]
            with store.session() as s:
                row = s.get(Dossier, dossier.id)
                assert row is not None
                needs_full = row.needs_full_sync
                pending_trigger = row.full_sync_trigger
            run_trigger = (pending_trigger or "activation") if needs_full else trigger
            sage = sage_source(dossier)
            opened: Exception | None = None
            try:
                sage.open()
            except DossierSyncError as exc:
                # said once for the dossier; each of its processes is still journaled as
                # failed (with its run_failed incident), none shown as if it had run
                opened = exc
                hidden = [*secrets, *connection_secrets(dossier.connection, dossier.endpoint)]
                result.error = mapped(said_of(exc), lambda text: scrub(text, hidden))
            # every write of this dossier's passes first makes sure its lease still holds
            fenced_client, fenced_sage = fenced(client, sage, fence)
            ctx = DossierContext(
                dossier=dossier,
                implementation=config.implementation,
                sync=config.sync,
                store=store,
                sage=fenced_sage,
                ssm_client=fenced_client,
                hooks=dossier_hooks(enabled, dossier.plugins),
                trigger=run_trigger,
                full=full or needs_full,
                realign=run_trigger in REALIGNING,
                progress=progress,
                writers=writers(everything),
            )
            if opened is None:
                # Sage edits made during a long SSM -> Sage pass are sent during it
                ctx.meanwhile = Meanwhile(
                    ctx,
                    [p for e in enabled for p in parts[e.name]],
                    run_pass,
                    coming=directions is None or SAGE_TO_SSM in directions,
                    on_run=on_run,
                )
            if adapt is not None:
                adapt(ctx)
            try:
                for entity in enabled:
                    for part in parts[entity.name]:
                        if stop is not None and stop.is_set():
                            result.skipped = said("stopped before the end (service shutting down)")
                            break
                        fence.check()
                        told = on_run if opened is None else None
                        result.runs.extend(run_entity(ctx, part, told, opened, directions))
            finally:
                if opened is None:
                    sage.close()
            complete = result.skipped is None and all(
                r.outcome != RunOutcome.FAILED for r in result.runs
            )
            if ctx.meanwhile is not None:
                # the change passes run meanwhile are the sync's too; one that failed
                # leaves its cursor for the next one, the complete sync is still done
                result.runs.extend(ctx.meanwhile.runs)
            if needs_full and not entity_names and not directions and complete:
                with store.session() as s:
                    row = s.get(Dossier, dossier.id)
                    if row is not None:
                        full_sync_done(row)
    except LeaseTaken as exc:
        result.skipped = said_of(exc)
    except LeaseLost as exc:
        # its run ended "interrupted" naming the new holder; the others are its to run
        result.error = said_of(exc)
    except DossierSyncError as exc:
        result.error = mapped(said_of(exc), lambda text: scrub(text, secrets))
    return result
