"""A link's state: its label, why it is kept on one side, and the one way to set them.

The labels and reasons are ``StrEnum``s: their values are the strings the state store
holds and ``--json`` and the page show, so they compare equal to them and need no
migration.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..journal import utcnow
from ..lang import N_
from ..state.models import Link


class LinkLabel(StrEnum):
    """Where a linked record stands (``link.label``)."""

    SYNCED = "synced"
    #: waits for a record it refers to, or for its first write (the intent of a create)
    PENDING = "pending"
    #: kept on one side after a deletion on the other: a person decides
    PENDING_REVIEW = "pending_review"
    ERROR = "error"
    DELETED = "deleted"


#: labels of the links written again at every pass
RETRIED = (LinkLabel.ERROR, LinkLabel.PENDING)


class Kept(StrEnum):
    """Why a record deleted (or missing) on one side is kept on the other for review.

    The value is also what a person reads: it is the link's ``last_error`` (in English;
    the command line shows it in its language).
    """

    #: created in Sage, deleted in SSM: its Sage side is not pushed again
    IN_SAGE = N_("deleted in Sales Management; kept in Sage 50FR where it was created")
    #: created in SSM and written to Sage, then deleted in SSM
    IN_SAGE_WRITTEN = N_("deleted in Sales Management; kept in Sage 50FR")
    #: created in SSM, deleted in Sage: the deletion does not reach SSM
    IN_SSM = N_("deleted in Sage 50FR; kept in Sales Management where it was created")
    #: not in a restored Sage database
    NOT_RESTORED = N_("not in the restored Sage 50FR database; kept in SSM")
    #: one of too many records that vanished from Sage at once
    MASS_DELETION = N_("vanished from Sage with many others; deletion refused")
    #: not in Sage any more, its deletion in SSM confirmed by a person
    #: (``dossiersync deletions confirm``): the next Sage -> SSM pass deletes it there
    DELETION_CONFIRMED = N_(
        "not in Sage 50FR; its deletion in Sales Management was confirmed and is done at "
        "the next sync"
    )


#: reasons of records deleted in SSM whose Sage side is not pushed again
KEPT_IN_SAGE = (Kept.IN_SAGE, Kept.IN_SAGE_WRITTEN)

#: reasons of records gone from Sage and kept in SSM: deleted there too, they are gone
KEPT_IN_SSM = (Kept.IN_SSM, Kept.NOT_RESTORED, Kept.MASS_DELETION, Kept.DELETION_CONFIRMED)

#: reasons of records gone from Sage whose deletion in SSM waits for a person to confirm
#: it (``dossiersync deletions confirm``)
UNCONFIRMED_DELETIONS = (Kept.NOT_RESTORED, Kept.MASS_DELETION)


def mark(link: Link, label: LinkLabel, note: str | None = None) -> None:
    """Give a link its label and what a person reads about it (none once synced)."""
    link.label = label
    link.last_error = note
    link.updated_at = utcnow()


def kept_in_sage(link: Link) -> bool:
    """Whether a link is kept for review after a deletion in SSM: its Sage side is not
    pushed again."""
    return link.label == LinkLabel.PENDING_REVIEW and link.last_error in KEPT_IN_SAGE


#: what a record deleted in SSM and asked back (``dossiersync deletions recreate``) says
#: until the next Sage -> SSM pass creates it there again
RECREATE = N_("deleted in Sales Management; created there again from Sage 50FR at the next sync")


def awaiting_confirmation(
    session: Session, dossier_id: str, entity: str | None = None
) -> list[Link]:
    """Live links of records gone from Sage whose deletion in SSM was refused (a restored
    database, or too many at once) and waits for a person."""
    stmt = select(Link).where(
        Link.dossier_id == dossier_id,
        Link.label == LinkLabel.PENDING_REVIEW,
        Link.last_error.in_(UNCONFIRMED_DELETIONS),
        Link.deleted.is_(False),
        Link.ssm_id.is_not(None),
    )
    if entity is not None:
        stmt = stmt.where(Link.entity == entity)
    return list(session.scalars(stmt.order_by(Link.entity, Link.sage_key)))


def confirm_deletions(links: list[Link]) -> None:
    """A person confirmed these deletions: the next Sage -> SSM pass of each entity deletes
    the records in SSM (those still absent from Sage then), whatever the mass-deletion
    guard would say."""
    for link in links:
        mark(link, LinkLabel.PENDING_REVIEW, Kept.DELETION_CONFIRMED)


def kept_in_sage_links(
    session: Session, dossier_id: str, entity: str, keys: list[str]
) -> tuple[list[Link], list[str]]:
    """The links of ``keys`` kept in Sage after a deletion in SSM, and the keys that are not
    (unknown, or in another state), for ``dossiersync deletions recreate``."""
    kept = {
        link.sage_key: link
        for link in session.scalars(
            select(Link).where(
                Link.dossier_id == dossier_id,
                Link.entity == entity,
                Link.sage_key.in_(keys),
                Link.deleted.is_(False),
            )
        )
        if kept_in_sage(link)
    }
    return [kept[k] for k in keys if k in kept], [k for k in keys if k not in kept]


def recreate(links: list[Link]) -> None:
    """Records deleted in SSM and kept in Sage, asked back by a person: they lose their SSM
    id and become intents, so the next Sage -> SSM pass creates them there again from what
    Sage holds (a new SSM record, the deleted one left as it is)."""
    for link in links:
        link.ssm_id = None
        mark(link, LinkLabel.PENDING, RECREATE)
