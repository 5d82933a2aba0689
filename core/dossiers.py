"""The dossier group: discovery, activation, deactivation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from .config import Config, DossierConfig
from .errors import DossierSyncError
from .journal import utcnow
from .registry import load_endpoint
from .secrets import Secret
from .state.models import Dossier, Incident, Link
from .state.store import StateStore

_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class DossierView:
    """One dossier as the connector sees it: configured or found, and its state."""

    id: str
    name: str
    state: str  # new | active | inactive
    origin: str
    entities: list[str]
    in_configuration: bool
    linked_records: int = 0
    open_incidents: int = 0
    needs_full_sync: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "origin": self.origin,
            "entities": self.entities,
            "in_configuration": self.in_configuration,
            "linked_records": self.linked_records,
            "open_incidents": self.open_incidents,
            "needs_full_sync": self.needs_full_sync,
        }


def slug(name: str) -> str:
    return _SLUG.sub("-", name).strip("-")[:32] or "dossier"


def proposed(config: Config) -> dict[str, DossierConfig]:
    """Configured dossiers plus ODBC data sources matching the discovery patterns."""
    found = dict(config.dossiers)
    if config.discovery.dsn_patterns:
        endpoint = load_endpoint("sage50fr_odbc")
        for dsn in sorted(endpoint.data_sources(list(config.discovery.dsn_patterns))):
            dossier_id = slug(dsn)
            if dossier_id in found:
                continue
            found[dossier_id] = DossierConfig(
                id=dossier_id,
                name=dsn,
                connection=Secret(f"DSN={dsn}"),
                entities=config.discovery.entities,
                mapping=config.discovery.mapping,
                origin="odbc-dsn",
            )
    return found


def views(config: Config, store: StateStore) -> list[DossierView]:
    """Every dossier of the group: proposed ones and those only the state knows."""
    candidates = proposed(config)
    with store.session() as s:
        rows = {d.id: d for d in s.scalars(select(Dossier))}
        links = dict(
            s.execute(
                select(Link.dossier_id, func.count())
                .where(Link.deleted.is_(False))
                .group_by(Link.dossier_id)
            ).all()
        )
        incidents = dict(
            s.execute(
                select(Incident.dossier_id, func.count())
                .where(Incident.state == "open")
                .group_by(Incident.dossier_id)
            ).all()
        )
    out = []
    for dossier_id in sorted(set(candidates) | set(rows)):
        cfg = candidates.get(dossier_id)
        row = rows.get(dossier_id)
        out.append(
            DossierView(
                id=dossier_id,
                name=cfg.name if cfg else (row.name if row else dossier_id),
                state=row.state if row else "new",
                origin=cfg.origin if cfg else "state-only",
                entities=list(cfg.entities) if cfg else [],
                in_configuration=cfg is not None,
                linked_records=int(links.get(dossier_id, 0)),
                open_incidents=int(incidents.get(dossier_id, 0)),
                needs_full_sync=bool(row.needs_full_sync) if row else False,
            )
        )
    return out


def activate(config: Config, store: StateStore, dossier_ids: list[str]) -> list[DossierView]:
    """Attach dossiers to the implementation and activate them.

    A dossier activated for the first time needs a full sync (trigger ``activation``);
    reactivating an inactive one needs a full sync with Sage 50FR as master
    (trigger ``reactivation``).
    """
    candidates = proposed(config)
    unknown = [d for d in dossier_ids if d not in candidates]
    if unknown:
        raise DossierSyncError(
            f"unknown dossier(s): {', '.join(unknown)}; "
            "see 'dossiersync dossiers discover' for the proposed ones"
        )
    now = utcnow()
    with store.session() as s:
        for dossier_id in dossier_ids:
            cfg = candidates[dossier_id]
            row = s.get(Dossier, dossier_id)
            if row is None:
                s.add(
                    Dossier(
                        id=dossier_id,
                        name=cfg.name,
                        origin=cfg.origin,
                        state="active",
                        needs_full_sync=True,
                        full_sync_trigger="activation",
                        created_at=now,
                        activated_at=now,
                    )
                )
            elif row.state != "active":
                row.state = "active"
                row.name = cfg.name
                row.needs_full_sync = True
                row.full_sync_trigger = "reactivation"
                row.activated_at = now
    return [v for v in views(config, store) if v.id in dossier_ids]


def deactivate(config: Config, store: StateStore, dossier_ids: list[str]) -> list[DossierView]:
    """Stop syncing dossiers; their records stay in Sales Management untouched."""
    now = utcnow()
    with store.session() as s:
        missing = [d for d in dossier_ids if s.get(Dossier, d) is None]
        if missing:
            raise DossierSyncError(f"dossier(s) not activated before: {', '.join(missing)}")
        for dossier_id in dossier_ids:
            row = s.get(Dossier, dossier_id)
            assert row is not None
            if row.state != "inactive":
                row.state = "inactive"
                row.deactivated_at = now
    return [v for v in views(config, store) if v.id in dossier_ids]
