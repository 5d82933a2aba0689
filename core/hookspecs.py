"""The hooks plugins may implement.  Marker project name: ``dossiersync``.

Entity and endpoint plugins are found through entry points (stevedore); once loaded,
each plugin object is registered here, so it can implement any of these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .config import Config
    from .journal import IncidentRecord, RunRecord

hookspec = pluggy.HookspecMarker("dossiersync")
hookimpl = pluggy.HookimplMarker("dossiersync")


# -- the command ---------------------------------------------------------------------


@hookspec
def dossiersync_register_commands(cli: click.Group) -> None:
    """Add commands to ``dossiersync`` (called once, when the command starts): e.g.
    ``@cli.command("name")`` on a click function. Import heavy modules inside the
    command, not at module level: every start of ``dossiersync`` pays for them."""


# -- configuration -------------------------------------------------------------------


@hookspec
def dossiersync_configure(config: Config) -> None:
    """The connector read its configuration: before any hook of a sync or a lifecycle step, and
    again each time it is read anew (the service reads it before every cycle).

    A plugin takes its own table from ``config.plugins`` (``[plugins.<name>]`` in the
    file, ``<name>`` being its entry-point name) and keeps what it needs.  Raise
    ``dossiersync.errors.ConfigError`` to refuse a table: the configuration is refused
    (the service keeps the previous one), so keep the previous settings when refusing.
    """


@hookspec(firstresult=True)
def dossiersync_source_identity(endpoint: str, connection: str) -> str | None:
    """What ``connection`` reaches, if ``endpoint`` is this plugin's endpoint: the same
    text however the connection is written (a file's real path, a data source's name, a
    server's database), never a user or a password; ``None`` otherwise. Two dossiers
    reaching one source are refused when the configuration is read. Called for every
    dossier whenever the configuration is read: answer without loading a driver."""


@hookspec(firstresult=True)
def dossiersync_endpoint_settings(endpoint: str) -> dict[str, Any] | None:
    """The JSON Schema of the settings ``endpoint`` reads from ``[implementation]`` (every
    key but ``name``, ``endpoint`` and ``status_fields``), if it is this plugin's SSM
    endpoint; ``None`` otherwise. The settings are validated against it with the rest of
    the configuration when it is read (a key it does not declare is refused, a value
    marked ``"secret": true`` is never quoted) and handed to the endpoint as
    ``implementation.settings``. Answer without loading the endpoint."""


@hookspec(firstresult=True)
def dossiersync_dossier_settings(endpoint: str) -> dict[str, Any] | None:
    """The JSON Schema of the settings ``endpoint`` reads from a dossier's table
    (``[dossiers.<id>]``: every key but the core's ``name``, ``endpoint``, ``entities``,
    ``plugins``, ``branch_id``, ``code_prefix`` and ``interval_seconds``), if it is this
    plugin's Sage-side endpoint; ``None`` otherwise. Each dossier's settings are validated
    against it with the rest of the configuration when it is read (a key it does not
    declare is refused with its path, a value marked ``"secret": true`` is never quoted
    and is held as a ``Secret``) and kept as ``DossierConfig.settings``; ``connection``
    and ``mapping``, when declared, are also ``DossierConfig.connection`` and
    ``DossierConfig.mapping``. Answer without loading the endpoint."""


@hookspec(firstresult=True)
def dossiersync_connection_secrets(endpoint: str, connection: str) -> list[str] | None:
    """The secret values of ``connection`` (a password written into it), if ``endpoint``
    is this plugin's endpoint; ``None`` otherwise. They are masked in every message,
    wherever one quotes them. Answer without loading a driver."""


@hookspec
def dossiersync_mask_secrets(text: str) -> str | None:
    """``text`` with the secrets this plugin recognises in it masked (a connection
    string's ``PWD=…`` written in its syntax), or ``None`` when it shows none. Called on
    every message the connector prints, journals or shows; masking an already masked
    text must change nothing (the core applies each plugin's masking in turn)."""


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
    """A sync process ended; ``run.outcome`` and the counts are final.

    ``run.failed_in_a_row`` counts the runs of this dossier x entity x direction that
    failed in a row, this one included (0 when it did not fail): reaching a number
    happens once per streak, whatever restarts between the runs.
    """


@hookspec
def dossiersync_incident_opened(
    dossier: str,
    entity: str | None,
    record_key: str | None,
    kind: str,
    message: str,
    direction: str | None,
    incident_id: int,
) -> None:
    """A new incident was opened (recurrences of an open one do not call this).

    ``direction`` is the pass it was opened in (``sage_to_ssm``, ``ssm_to_sage``; ``None``
    for a dossier's incident), ``incident_id`` its id in the journal (``dossiersync
    incidents``), which tells apart two incidents of one kind on one record, one per
    direction. An implementation may take only the arguments it needs.
    """


@hookspec
def dossiersync_incident_occurred(incident: IncidentRecord) -> None:
    """An incident occurred: opened (``incident.occurrences == 1``) or seen again while
    open (one more each time).  Called once the occurrence is committed to the state
    store, never for one rolled back, so a number of occurrences is reached once per
    incident; an incident resolved and seen again is a new one (a new ``id``).
    """
