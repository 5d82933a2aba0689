"""References between entities of one dossier (a contact's account, a product's family).

A reference is held in canonical records as the referenced record's Sage key; on the
SSM side it is the referenced record's SSM id.  Both translations go through the link
table, and only within the dossier: a reference to another dossier's record is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import RecordMoved, RecordPending
from .messages import Cause
from .state.models import Link


class Refs:
    """Resolves references for one dossier, caching what it looked up."""

    def __init__(self, session: Session, dossier_id: str) -> None:
        self.session = session
        self.dossier_id = dossier_id
        self._by_key: dict[tuple[str, str], int | None] = {}
        self._by_id: dict[tuple[str, int], tuple[str, str | None] | None] = {}

    def prefetch_keys(self, entity: str, keys: Iterable[str]) -> None:
        wanted = [k for k in set(keys) if k and (entity, k) not in self._by_key]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = dict(
                self.session.execute(
                    select(Link.sage_key, Link.ssm_id).where(
                        Link.dossier_id == self.dossier_id,
                        Link.entity == entity,
                        Link.deleted.is_(False),
                        Link.sage_key.in_(chunk),
                    )
                ).all()
            )
            for key in chunk:
                self._by_key[(entity, key)] = found.get(key)

    def ssm_id(self, entity: str, sage_key: str, what: str) -> int:
        """The SSM id of this dossier's ``entity`` record ``sage_key``."""
        if (entity, sage_key) not in self._by_key:
            self.prefetch_keys(entity, [sage_key])
        ssm_id = self._by_key.get((entity, sage_key))
        if ssm_id is None:
            cause = Cause("waiting", {"what": entity, "key": sage_key, "field": what})
            raise RecordPending(cause.text(), cause)
        return ssm_id

    def sage_key(self, entity: str, ssm_id: int, what: str) -> str:
        """The Sage key of the ``entity`` record with this SSM id, in this dossier only."""
        cache_key = (entity, ssm_id)
        if cache_key not in self._by_id:
            row = self.session.execute(
                select(Link.dossier_id, Link.sage_key).where(
                    Link.entity == entity, Link.ssm_id == ssm_id, Link.deleted.is_(False)
                )
            ).first()
            self._by_id[cache_key] = (row[0], row[1]) if row else None
        found = self._by_id[cache_key]
        if found is None or found[1] is None:
            cause = Cause("not_linked", {"what": entity, "ssm_id": ssm_id, "field": what})
            raise RecordPending(cause.text(), cause)
        dossier, key = found
        assert key is not None
        if dossier != self.dossier_id:
            cause = Cause(
                "other_dossier",
                {
                    "what": entity,
                    "field": what,
                    "ssm_id": ssm_id,
                    "other": dossier,
                    "dossier": self.dossier_id,
                },
            )
            raise RecordMoved(cause.text(), cause)
        return key

    def owner_of(self, entity: str, ssm_id: int) -> str | None:
        """The dossier that owns the ``entity`` record with this SSM id, if any."""
        row = self.session.execute(
            select(Link.dossier_id).where(Link.entity == entity, Link.ssm_id == ssm_id)
        ).first()
        return row[0] if row else None

    def held_keys(self, entity: str) -> set[str]:
        """Sage keys a link of this dossier's ``entity`` holds, which a new key must not
        take: records created in SSM and not written to Sage yet, and records gone from
        Sage whose link stays (deleted, kept for review) — Sage's own next number may be
        the number of its last record, deleted."""
        rows = self.session.scalars(
            select(Link.sage_key).where(
                Link.dossier_id == self.dossier_id,
                Link.entity == entity,
                Link.sage_key.is_not(None),
            )
        )
        return {key for key in rows if key}

    def forget(self) -> None:
        self._by_key.clear()
        self._by_id.clear()
