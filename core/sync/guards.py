"""What keeps a pass from doing harm: the mass-deletion guard, restore detection, and the
one owner of a dossier's full-sync flag."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import DossierContext
from ..derived import record_hash
from ..entity import Entity
from ..errors import RecordInvalid
from ..journal import Action, add_event, resolve_incidents
from ..messages import Cause, Notice
from ..secrets import scrub
from ..state.models import Dossier, Link
from ..vocabulary import SAGE_TO_SSM, SSM_TO_SAGE, IncidentKind, LinkOrigin
from .base import SyncPass, batched, secrets_of
from .links import Kept, LinkLabel, kept_in_sage, mark


class SagePass(Protocol):
    """What the guards ask of a Sage -> SSM pass (``to_ssm.SageToSsm``, which calls them):
    a pass's own, and its links held against the keys Sage still has."""

    @property
    def ctx(self) -> DossierContext: ...
    @property
    def session(self) -> Session: ...
    @property
    def dossier_id(self) -> str: ...
    @property
    def entity(self) -> Entity: ...
    @property
    def direction(self) -> str: ...
    @property
    def table(self) -> str: ...

    def pass_incident(
        self, kind: str, message: str, params: dict[str, Any] | None = None
    ) -> None: ...
    def load(self, rows: list[dict[str, Any]]) -> None: ...
    def canonical_from_sage(self, row: dict[str, Any], direction: str) -> dict[str, Any]: ...
    def vanished_links(self) -> tuple[list[tuple[int, str]], int]: ...
    def links_in_sage(self, *conditions: Any) -> Iterator[tuple[int, str, str, bool]]: ...


class FullSyncTrigger(StrEnum):
    """Why a dossier's next sync is a full one (``dossier.full_sync_trigger``)."""

    #: a dossier synced for the first time
    ACTIVATION = "activation"
    #: a dossier active again after a pause: Sage is the master of what changed meanwhile
    REACTIVATION = "reactivation"
    #: deletions refused by the mass-deletion guard: Sage may have been replaced
    REALIGN = "realign"


#: triggers of a full sync that realigns SSM on Sage (every field sent again)
REALIGNING = (FullSyncTrigger.REACTIVATION, FullSyncTrigger.REALIGN)


def request_full_sync(dossier: Dossier, trigger: FullSyncTrigger) -> None:
    """Make the dossier's next sync a full one, saying why (the one place that sets it)."""
    dossier.needs_full_sync = True
    dossier.full_sync_trigger = trigger


def full_sync_done(dossier: Dossier) -> None:
    """The full sync a dossier needed went through completely."""
    dossier.needs_full_sync = False
    dossier.full_sync_trigger = None


def mass_deletion_guard(
    sync_pass: SyncPass | SagePass, vanishing: int, known: int, refusal: str
) -> bool:
    """Whether ``vanishing`` of ``known`` records may be handled as deleted.

    Above the configured share (and minimum), none is: a ``mass_deletion_refused``
    incident says ``refusal``. Below it, that incident of this direction closes.
    """
    sync = sync_pass.ctx.sync
    if vanishing <= max(sync.mass_deletion_minimum, sync.mass_deletion_threshold * known):
        resolve_incidents(
            sync_pass.session,
            sync_pass.dossier_id,
            sync_pass.entity.name,
            direction=sync_pass.direction,
            kinds=(IncidentKind.MASS_DELETION_REFUSED,),
        )
        return True
    sync_pass.pass_incident(
        IncidentKind.MASS_DELETION_REFUSED, refusal, {"vanishing": vanishing, "known": known}
    )
    return False


def deletions_allowed(sync_pass: SagePass, vanishing: int, known: int) -> bool:
    """The mass-deletion guard of a Sage -> SSM pass; refused, the dossier's next sync
    is a full realigning one."""
    refusal = Notice(
        IncidentKind.MASS_DELETION_REFUSED,
        sync_pass.dossier_id,
        entity=sync_pass.entity.name,
        direction=sync_pass.direction,
        params={"vanishing": vanishing, "known": known},
    ).text()
    if mass_deletion_guard(sync_pass, vanishing, known, refusal):
        return True
    dossier = sync_pass.session.get(Dossier, sync_pass.dossier_id)
    if dossier is not None:
        request_full_sync(dossier, FullSyncTrigger.REALIGN)
    return False


def restored(sync_pass: SagePass, before: str | None, now: str | None) -> bool:
    """A high-water mark that went backwards: the Sage database was restored.

    Unless deleted rows alone explain it: fewer vanished records than
    ``mass_deletion_minimum`` (one or a few of the newest rows deleted) while every row
    still there holds what was synced. A restore that only lost the rows created after
    its backup looks the same, row for row; what tells them apart is how many vanished.
    """
    if not sync_pass.ctx.sync.restore_detection or not before or not now or now >= before:
        return False
    vanished = len(sync_pass.vanished_links()[0])
    if vanished < sync_pass.ctx.sync.mass_deletion_minimum and only_deletions(sync_pass):
        return False
    params = {"table": sync_pass.table, "now": now, "before": before, "vanished": vanished}
    notice = Notice(
        IncidentKind.RESTORED_DATABASE,
        sync_pass.dossier_id,
        entity=sync_pass.entity.name,
        direction=sync_pass.direction,
        params=params,
    )
    sync_pass.pass_incident(IncidentKind.RESTORED_DATABASE, notice.text(), params)
    return True


def only_deletions(sync_pass: SagePass) -> bool:
    """Whether deleted rows alone may explain a high-water mark that went backwards (the
    most recently modified row was deleted): known keys vanished, and every row still
    there holds what was last synced. A restore also brings rows back to older
    contents under older modification times; one that only lost rows created after
    the backup cannot be told from their deletion row by row (``restored`` counts
    them)."""
    if all(there for *_, there in sync_pass.links_in_sage(Link.deleted.is_(False))):
        return False
    synced: dict[str | None, str | None] = dict(
        sync_pass.session.execute(
            select(Link.sage_key, Link.sage_hash).where(
                Link.dossier_id == sync_pass.dossier_id,
                Link.entity == sync_pass.entity.name,
                Link.label == LinkLabel.SYNCED,
                Link.deleted.is_(False),
            )
        ).all()
    )
    rows = sync_pass.ctx.sage.read(
        sync_pass.table, sync_pass.entity.sage_columns, where=sync_pass.entity.sage_where()
    )
    for batch in batched(rows, sync_pass.ctx.sync.batch_size):
        sync_pass.load(batch)
        for row in batch:
            key = sync_pass.entity.key_text(sync_pass.entity.sage_key(row))
            if key not in synced:
                continue
            try:
                digest = record_hash(sync_pass.canonical_from_sage(row, SAGE_TO_SSM))
            except RecordInvalid:
                return False
            if digest != synced[key]:
                return False
    return True


#: what the journal says of a Sage edit of a record deleted in SSM and kept in Sage
EDITED_NOT_SENT = "changed in Sage 50FR after its deletion in Sales Management: not sent"


def deleted_in_ssm(sync_pass: SyncPass, link: Link, *, edited: bool = False) -> None:
    """A record deleted in SSM and kept in Sage (a deletion there does not reach Sage):
    labelled ``pending_review``, and an incident of the record says what a person can do.
    ``edited``: Sage changed it since, and that change was not sent (nothing is created
    again in SSM without a person asking); the incident counts one more occurrence."""
    key = link.sage_key or ""
    if not kept_in_sage(link):
        reason = Kept.IN_SAGE if link.origin == LinkOrigin.SAGE else Kept.IN_SAGE_WRITTEN
        mark(link, LinkLabel.PENDING_REVIEW, reason)
        add_event(sync_pass.session, sync_pass.run, key, Action.KEPT, reason)
    elif edited:
        add_event(sync_pass.session, sync_pass.run, key, Action.KEPT, EDITED_NOT_SENT)
    notice = Notice(
        "deleted_in_ssm",
        sync_pass.dossier_id,
        entity=sync_pass.entity.name,
        direction=SSM_TO_SAGE,
        key=key,
        ssm_id=link.ssm_id,
        noun=sync_pass.entity.record_noun,
        cause=Cause("deleted_in_ssm_then_changed" if edited else "deleted_in_ssm"),
    )
    message = scrub(notice.text(), secrets_of(sync_pass.ctx))
    sync_pass.incident_for_record(
        key, IncidentKind.DELETED_IN_SSM, notice, message, direction=SSM_TO_SAGE
    )
