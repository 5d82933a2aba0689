"""The Sage 50FR plugin's ``dossiersync mapping`` commands: ``check`` and ``suggest``.

Registered by :mod:`.commands` (the plugin's ``dossiersync_register_commands``); nothing
here is imported before a mapping command runs but click.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from dossiersync.plugin import gettext as _
from dossiersync.plugin import ngettext, said, spoken, visible

if TYPE_CHECKING:
    from .endpoint import Sage50OdbcEndpoint


class _CannotCheck(click.ClickException):
    """The configuration, the mapping file or the data source failed us: exit status 2,
    as for any other error of the connector (1 is for what the check found)."""

    exit_code = 2


def _dossier_endpoint(
    ctx: Any, dossier_id: str, mapping_file: str | None = None
) -> tuple[Any, Sage50OdbcEndpoint]:
    """The dossier's configuration and Sage endpoint (not opened), with its mapping or
    ``mapping_file``."""
    from dossiersync.plugin import load_endpoint, proposed_dossiers

    from .endpoint import Sage50OdbcEndpoint

    dossiers = proposed_dossiers(ctx.config)
    dossier = dossiers.get(dossier_id)
    if dossier is None:
        listed = ", ".join(sorted(dossiers)) or _("none")
        raise click.UsageError(
            _(
                "unknown dossier {dossier}: it is not in the configuration, nor an ODBC data "
                "source the discovery patterns match (known: {known})"
            ).format(dossier=repr(dossier_id), known=listed)
        )
    endpoint = load_endpoint(dossier.endpoint)(
        dossier.connection.reveal(), mapping_file or dossier.mapping
    )
    if not isinstance(endpoint, Sage50OdbcEndpoint):
        raise click.UsageError(
            _(
                "dossier {dossier} uses the endpoint {endpoint}: the mapping commands read "
                "ODBC catalogues through the sage50fr_odbc endpoint only"
            ).format(dossier=repr(dossier_id), endpoint=repr(dossier.endpoint))
        )
    return dossier, endpoint


def _said(error: Exception) -> str:
    """An error's message in the command line's language."""
    return spoken(error.args[0]) if len(error.args) == 1 else str(error)


def _scrubbed(value: Any, secrets: list[Any]) -> Any:
    """``value`` with every secret masked in its texts, one line at a time (a password
    mask reads up to the next ``;``: never across a line or out of a JSON string)."""
    from dossiersync.plugin import scrub

    if isinstance(value, str):
        return "\n".join(scrub(line, secrets) for line in value.split("\n"))
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    return value


def _entity_tables(names: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """The logical tables each named entity uses (its parts' watched tables), with the
    logical columns its fields and its children's read there."""
    from dossiersync.plugin import load_entities

    found: dict[str, dict[str, list[str]]] = {}
    for entity in load_entities(list(names)):
        tables: dict[str, list[str]] = {}
        for part in entity.parts():
            for table in part.watched_tables():
                tables.setdefault(table, [])
            specs = [(part.sage_table, part.fields)]
            specs += [(child.sage_table, child.fields) for child in part.children]
            for table, fields in specs:
                columns = tables.setdefault(table, [])
                columns += [f.sage for f in fields if f.sage and not f.virtual]
        found[entity.name] = {table: list(dict.fromkeys(c)) for table, c in tables.items()}
    return found


def register_mapping_commands(cli: click.Group) -> None:
    """Add ``dossiersync mapping check`` and ``mapping suggest`` to ``cli``."""

    @cli.group("mapping")
    def mapping() -> None:
        """A dossier's Sage mapping against what its ODBC source really holds."""

    @mapping.command("check")
    @click.option("--dossier", "dossier_id", required=True, help="The dossier.")
    @click.option(
        "--mapping",
        "mapping_file",
        type=click.Path(dir_okay=False),
        help="Check this mapping file instead of the dossier's.",
    )
    @click.option(
        "--entity",
        "entity_names",
        multiple=True,
        help="Check this entity's tables (repeatable) [default: the dossier's entities].",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def mapping_check(
        ctx: Any,
        dossier_id: str,
        mapping_file: str | None,
        entity_names: tuple[str, ...],
        as_json: bool,
    ) -> None:
        """What the mapping needs and the source lacks, per entity: tables, columns, types,
        text lengths. Exit status 0 when nothing lacks, 1 when something does."""
        import json

        from dossiersync.plugin import DossierSyncError

        from .catalogue import check_mapping, read_catalogue

        secrets = ctx.config.secrets()  # a configuration error is the CLI's, as everywhere
        try:
            dossier, endpoint = _dossier_endpoint(ctx, dossier_id, mapping_file)
            tables = _entity_tables(entity_names or tuple(dossier.entities))
            with endpoint:
                catalogue = read_catalogue(endpoint)
            checks = check_mapping(endpoint.mapping, catalogue, tables)
        except DossierSyncError as exc:
            raise _CannotCheck(_scrubbed(_said(exc), secrets)) from None
        ok = all(not check.findings for check in checks)
        if as_json:
            text = json.dumps(
                _scrubbed(
                    {
                        "dossier_id": dossier_id,
                        "source": endpoint.source,
                        "dialect": catalogue.dialect,
                        "mapping": endpoint.mapping.source,
                        "ok": ok,
                        "entities": [check.as_dict() for check in checks],
                    },
                    secrets,
                ),
                indent=2,
                ensure_ascii=False,
            )
        else:
            lines = [
                _("Dossier {dossier}: {source} ({dialect}), checked against {mapping}").format(
                    dossier=dossier_id,
                    source=endpoint.source,
                    dialect=catalogue.dialect,
                    mapping=spoken(endpoint.mapping.source),
                )
            ]
            for check in checks:
                count = len(check.findings)
                state = (
                    _("ok")
                    if not count
                    else ngettext("{count} problem", "{count} problems", count).format(count=count)
                )
                lines.append(f"{check.entity} ({', '.join(check.tables)}): {state}")
                lines += [f"  - {spoken(finding.text())}" for finding in check.findings]
            lines.append(
                _("Everything the mapping needs is in the source.")
                if ok
                else _(
                    "The mapping names what the source lacks: correct the mapping file (see "
                    "'dossiersync mapping suggest') or the data source."
                )
            )
            # column and table names are the source's: printed as they are, a control
            # character in one would act on the terminal
            text = visible(_scrubbed("\n".join(lines), secrets), lines=True)
        click.echo(text)
        if not ok:
            sys.exit(1)

    @mapping.command("suggest")
    @click.option("--dossier", "dossier_id", required=True, help="The dossier.")
    @click.option(
        "--output",
        type=click.Path(dir_okay=False),
        help="Write the proposed mapping to this file [default: print it].",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
    @click.pass_obj
    def mapping_suggest(ctx: Any, dossier_id: str, output: str | None, overwrite: bool) -> None:
        """Propose a mapping file from the source's catalogue, for a person to review:
        the built-in layout that finds most, then names. Notes go to standard error; exit
        status 1 when something could not be found."""
        import json
        from pathlib import Path

        from dossiersync.plugin import DossierSyncError

        from .catalogue import read_catalogue, suggest_mapping

        secrets = ctx.config.secrets()
        if output is not None and Path(output).exists() and not overwrite:
            raise click.UsageError(
                _(
                    "{output} exists: a suggestion does not replace a mapping file unless "
                    "--overwrite is given"
                ).format(output=output)
            )
        try:
            endpoint = _dossier_endpoint(ctx, dossier_id)[1]
            with endpoint:
                catalogue = read_catalogue(endpoint)
            suggestion = suggest_mapping(
                catalogue, origin=said("dossier {dossier}", dossier=dossier_id)
            )
        except DossierSyncError as exc:
            raise _CannotCheck(_scrubbed(_said(exc), secrets)) from None
        text = json.dumps(suggestion.document, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            click.echo(text, nl=False)
        else:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise _CannotCheck(
                    _("cannot write {output}: {error}").format(output=output, error=exc)
                ) from None
        notes = [
            _("Mapping suggested for dossier {dossier} from {source}").format(
                dossier=dossier_id, source=endpoint.source
            )
        ]
        notes += [f"  - {spoken(note)}" for note in suggestion.notes()]
        if output is not None:
            notes.append(
                _("Written to {output}: review it before pointing the dossier at it.").format(
                    output=output
                )
            )
        click.echo(visible(_scrubbed("\n".join(notes), secrets), lines=True), err=True)
        if not suggestion.complete:
            sys.exit(1)
