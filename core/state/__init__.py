"""The connector's own state: dossiers, links, runs, events, incidents, leases."""

from .models import Base, Dossier, DossierEntity, Event, Incident, Lease, Link, Run
from .store import StateStore

__all__ = [
    "Base",
    "Dossier",
    "DossierEntity",
    "Event",
    "Incident",
    "Lease",
    "Link",
    "Run",
    "StateStore",
]
