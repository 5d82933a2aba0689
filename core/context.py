"""What a sync pass of one dossier works with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .config import DossierConfig, ImplementationConfig, SyncConfig
from .refs import Refs
from .source import SageSource
from .state.store import StateStore
from .target import SsmTarget

if TYPE_CHECKING:
    from .journal import RunRecord


class Meanwhile(Protocol):
    """What a long SSM → Sage pass calls between its batches (``sync.meanwhile``)."""

    #: the change passes it ran
    runs: list[RunRecord]

    def passed(self, part: Any) -> None:
        """``part``'s Sage → SSM pass of this sync is done."""

    def __call__(self, resource: str) -> set[int]:
        """Send the Sage edits made since the last look; the ids of the ``resource``
        records written."""
        ...


@dataclass
class DossierContext:
    """One dossier's endpoints, state and settings, for the duration of its sync."""

    dossier: DossierConfig
    implementation: ImplementationConfig
    sync: SyncConfig
    store: StateStore
    sage: SageSource
    ssm_client: SsmTarget
    #: the hooks as this dossier calls them (``registry.dossier_hooks``)
    hooks: Any
    trigger: str = "manual"
    full: bool = False
    realign: bool = False
    #: called with the running pass's record after each batch (terminal progress)
    progress: Callable[[RunRecord], None] | None = None
    #: each SSM resource's writers: the names of the entities (their parts) the dossier
    #: enables that write it, those a sync runs or not; an entity reads only the records
    #: it owns
    writers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: an SSM → Sage pass a change probe started: the oldest change date it saw for the
    #: dossier (the pass reads from it, or its cursor if earlier, a few seconds back,
    #: not its whole overlap window)
    changes_from: str | None = None
    #: the Sage → SSM change passes a long SSM → Sage pass runs between its batches
    #: (``sync.meanwhile``); none in a preview, nor in those change passes themselves
    meanwhile: Meanwhile | None = None
    refs: Refs = field(init=False)
    #: per-pass working data of an entity (reset at the start of every pass)
    scratch: dict[str, Any] = field(init=False, default_factory=dict)

    @property
    def dossier_id(self) -> str:
        return self.dossier.id

    @property
    def ssm_settings(self) -> Any:
        """The SSM endpoint's settings, as its plugin reads them (``SsmTarget.settings``):
        the core knows none of them; an entity reads those of the endpoint it is for."""
        return self.ssm_client.settings

    def transform(self, entity: str, direction: str, record: dict[str, Any]) -> None:
        self.hooks.dossiersync_transform_record(
            dossier=self.dossier.id, entity=entity, direction=direction, record=record
        )
