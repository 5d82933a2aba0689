"""The dossier group: discovery, activation, deactivation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from .config import Config, DossierConfig, source_identity
from .errors import DossierSyncError
from .journal import utcnow
from .lang import mapped, said, said_of
from .registry import dossier_hooks, load_endpoint, load_entities
from .secrets import Secret, connection_secrets, scrub
from .state.models import Dossier, Incident, Link
from .state.store import StateStore
from .sync.guards import FullSyncTrigger, request_full_sync
from .sync.status import after_deactivation
from .vocabulary import DossierState

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
    previously_synced: bool | None = None
    records_in_ssm: int | None = None
    #: whether its Sage source could be opened (None: not tried, or nothing to open)
    reachable: bool | None = None
    #: why it could not, the password masked
    source_error: str | None = None

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
            "previously_synced": self.previously_synced,
            "records_in_ssm": self.records_in_ssm,
            "reachable": self.reachable,
            "source_error": self.source_error,
        }


def slug(name: str) -> str:
    return _SLUG.sub("-", name).strip("-")[:32] or "dossier"


def proposed(config: Config) -> dict[str, DossierConfig]:
    """Configured dossiers plus ODBC data sources matching the discovery patterns."""
    found = dict(config.dossiers)
    if config.discovery.dsn_patterns:
        endpoint = load_endpoint(config.discovery.endpoint)
        # a data source a configured dossier already reaches is that dossier, not another
        configured = {source_identity(d) for d in config.dossiers.values()}
        for dsn in sorted(endpoint.data_sources(list(config.discovery.dsn_patterns))):
            dossier_id = slug(dsn)
            if dossier_id in found:
                continue
            candidate = DossierConfig(
                id=dossier_id,
                name=dsn,
                connection=Secret(endpoint.data_source_connection(dsn)),
                entities=config.discovery.entities,
                mapping=config.discovery.mapping,
                endpoint=config.discovery.endpoint,
                origin="odbc-dsn",
            )
            if source_identity(candidate) not in configured:
                found[dossier_id] = candidate
    return found


def sage_source(dossier: DossierConfig) -> Any:
    """The dossier's Sage endpoint, not opened yet: the endpoint plugin named by the
    dossier, given its connection and its mapping file (``None``: the plugin's own)."""
    return load_endpoint(dossier.endpoint)(dossier.connection.reveal(), dossier.mapping)


def source_problem(config: Config, dossier: DossierConfig) -> str | None:
    """Why the dossier's Sage source cannot be opened (the password masked), or None
    when it opens."""
    try:
        source = sage_source(dossier)
        source.open()
    except DossierSyncError as exc:
        own = connection_secrets(dossier.connection, dossier.endpoint)
        hidden = [*config.secrets(), *own]
        return mapped(said_of(exc), lambda text: scrub(text, hidden))
    source.close()
    return None


_DOSSIER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def records_in_ssm(config: Config, client: Any) -> dict[str, int]:
    """Records per dossier in Sales Management, found through their extId prefixes.

    Scans the resources of every entity the configuration enables; deleted records do
    not count.  This is how a reinstalled connector finds the dossiers synced before.
    """
    names: set[str] = set(config.discovery.entities)
    for dossier in config.dossiers.values():
        names.update(dossier.entities)
    resources: set[str] = set()
    for entity in load_entities(sorted(names)):
        resources.update(part.ssm_resource for part in entity.parts())
    counts: dict[str, int] = {}
    for resource in sorted(resources):
        for record in client.list_changed(resource, ext_prefix=""):
            prefix, colon, _ = str(record.get("extId") or "").partition(":")
            if colon and _DOSSIER_ID.match(prefix):
                counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def views(
    config: Config,
    store: StateStore,
    in_ssm: dict[str, int] | None = None,
    *,
    probe: bool = False,
) -> list[DossierView]:
    """Every dossier of the group: proposed ones, those only the state knows, and (with
    ``in_ssm``) those only Sales Management knows; with ``probe``, each proposed dossier's
    Sage source is opened once to say whether it is reachable."""
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
    problems = {d: source_problem(config, cfg) for d, cfg in candidates.items()} if probe else {}
    out = []
    found = in_ssm or {}
    for dossier_id in sorted(set(candidates) | set(rows) | set(found)):
        cfg = candidates.get(dossier_id)
        row = rows.get(dossier_id)
        origin = cfg.origin if cfg else ("state-only" if row else "ssm-only")
        out.append(
            DossierView(
                id=dossier_id,
                name=cfg.name if cfg else (row.name if row else dossier_id),
                state=row.state if row else "new",
                origin=origin,
                entities=list(cfg.entities) if cfg else [],
                in_configuration=cfg is not None,
                linked_records=int(links.get(dossier_id, 0)),
                open_incidents=int(incidents.get(dossier_id, 0)),
                needs_full_sync=bool(row.needs_full_sync) if row else False,
                # what this state store linked is known without asking Sales Management
                previously_synced=(
                    found.get(dossier_id, 0) > 0
                    if in_ssm is not None
                    else (True if links.get(dossier_id) else None)
                ),
                records_in_ssm=None if in_ssm is None else found.get(dossier_id, 0),
                reachable=None if dossier_id not in problems else problems[dossier_id] is None,
                source_error=problems.get(dossier_id),
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
            said(
                "dossier(s) not in the configuration: {dossiers}; add a [dossiers.ID] table "
                "with its connection (see 'dossiersync dossiers discover')",
                dossiers=", ".join(unknown),
            )
        )
    now = utcnow()
    triggers: dict[str, str] = {}
    with store.session() as s:
        for dossier_id in dossier_ids:
            cfg = candidates[dossier_id]
            row = s.get(Dossier, dossier_id)
            if row is None:
                row = Dossier(
                    id=dossier_id,
                    name=cfg.name,
                    origin=cfg.origin,
                    state=DossierState.ACTIVE,
                    created_at=now,
                    activated_at=now,
                )
                request_full_sync(row, FullSyncTrigger.ACTIVATION)
                s.add(row)
                triggers[dossier_id] = FullSyncTrigger.ACTIVATION
            elif row.state != DossierState.ACTIVE:
                row.state = DossierState.ACTIVE
                row.name = cfg.name
                request_full_sync(row, FullSyncTrigger.REACTIVATION)
                row.activated_at = now
                triggers[dossier_id] = FullSyncTrigger.REACTIVATION
    for dossier_id, trigger in triggers.items():
        cfg = candidates[dossier_id]
        hooks = dossier_hooks(load_entities(cfg.entities), cfg.plugins)
        hooks.dossiersync_dossier_activated(dossier=dossier_id, trigger=trigger)
    return [v for v in views(config, store) if v.id in dossier_ids]


def deactivate(config: Config, store: StateStore, dossier_ids: list[str]) -> list[DossierView]:
    """Stop syncing dossiers; their records stay in Sales Management untouched."""
    now = utcnow()
    with store.session() as s:
        missing = [d for d in dossier_ids if s.get(Dossier, d) is None]
        if missing:
            raise DossierSyncError(
                said("dossier(s) not activated before: {dossiers}", dossiers=", ".join(missing))
            )
        for dossier_id in dossier_ids:
            row = s.get(Dossier, dossier_id)
            assert row is not None
            if row.state != DossierState.INACTIVE:
                row.state = DossierState.INACTIVE
                row.deactivated_at = now
    candidates = proposed(config)
    for dossier_id in dossier_ids:
        cfg = candidates.get(dossier_id)
        enabled = load_entities(cfg.entities) if cfg else []
        hooks = dossier_hooks(enabled, cfg.plugins if cfg else None)
        hooks.dossiersync_dossier_deactivated(dossier=dossier_id)
    after_deactivation(config, store, dossier_ids)  # their records say "inactive" in SSM
    return [v for v in views(config, store) if v.id in dossier_ids]
