"""The hooks plugins may implement.  Marker project name: ``dossiersync``.

Entity and endpoint plugins are found through entry points (stevedore); once loaded,
each plugin object is registered here, so it can implement any of these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .journal import RunRecord

hookspec = pluggy.HookspecMarker("dossiersync")
hookimpl = pluggy.HookimplMarker("dossiersync")


# -- the command ---------------------------------------------------------------------


@hookspec
def dossiersync_register_commands(cli: click.Group) -> None:
    """Add commands to ``dossiersync`` (called once, when the command starts): e.g.
    ``@cli.command("name")`` on a click function. Import heavy modules inside the
    command, not at module level: every start of ``dossiersync`` pays for them."""


# -- records -------------------------------------------------------------------------


@hookspec
def dossiersync_transform_record(
    dossier: str, entity: str, direction: str, record: dict[str, Any]
) -> None:
    """Adjust a canonical record in place after mapping and before validation.

    ``direction`` is ``sage_to_ssm`` or ``ssm_to_sage``.
    """


# -- dossier lifecycle ---------------------------------------------------------------


@hookspec
def dossiersync_dossier_activated(dossier: str, trigger: str) -> None:
    """A dossier was activated (``activation``) or reactivated (``reactivation``)."""


@hookspec
def dossiersync_dossier_deactivated(dossier: str) -> None:
    """A dossier was deactivated: it is no longer read or written."""


# -- runs and incidents --------------------------------------------------------------


@hookspec
def dossiersync_run_started(run: RunRecord) -> None:
    """A sync process (dossier x entity x direction) started."""


@hookspec
def dossiersync_run_finished(run: RunRecord) -> None:
    """A sync process ended; ``run.outcome`` and the counts are final."""


@hookspec
def dossiersync_incident_opened(
    dossier: str, entity: str | None, record_key: str | None, kind: str, message: str
) -> None:
    """A new incident was opened (recurrences of an open one do not call this)."""
