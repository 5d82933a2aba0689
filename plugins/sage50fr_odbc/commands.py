"""The Sage 50FR plugin's hooks: the ``dossiersync demo-dossier`` command, the schema of
a dossier's settings, and what a connection string reaches and holds secret."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import click

from dossiersync.plugin import hookimpl


@hookimpl
def dossiersync_source_identity(endpoint: str, connection: str) -> str | None:
    if endpoint != "sage50fr_odbc":
        return None
    from .connection import source_identity

    return source_identity(connection)


@hookimpl
def dossiersync_connection_secrets(endpoint: str, connection: str) -> list[str] | None:
    if endpoint != "sage50fr_odbc":
        return None
    from .connection import connection_secrets

    return connection_secrets(connection)


@hookimpl
def dossiersync_dossier_settings(endpoint: str) -> dict[str, Any] | None:
    if endpoint != "sage50fr_odbc":
        return None
    text = resources.files(__package__).joinpath("dossier.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@hookimpl
def dossiersync_mask_secrets(text: str) -> str | None:
    from .connection import mask_connection

    masked = mask_connection(text)
    return masked if masked != text else None


@hookimpl
def dossiersync_register_commands(cli: click.Group) -> None:
    @cli.command("demo-dossier")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--clients", type=click.IntRange(0), required=True, help="Client accounts.")
    @click.option(
        "--contacts", type=click.IntRange(0), help="Client contacts [default: 1.5 per client]."
    )
    @click.option(
        "--products",
        type=click.IntRange(0),
        help="Articles [default: 1 per 2 clients, at least 10].",
    )
    @click.option(
        "--orders",
        type=click.IntRange(0),
        help="Sales orders, with a quarter as many invoices [default: 1 per 10 clients, "
        "at least 3].",
    )
    @click.option(
        "--seed", type=int, default=0, show_default=True, help="The same seed, the same data."
    )
    @click.option(
        "--layout",
        default="reference",
        show_default=True,
        help="Built-in table layout: reference (the Sage commercial-management tables) or "
        "ciel (Cli, Article, PieceHCli… with French field names).",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an existing file.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def demo_dossier(
        path: str,
        clients: int,
        contacts: int | None,
        products: int | None,
        orders: int | None,
        seed: int,
        layout: str,
        overwrite: bool,
        as_json: bool,
    ) -> None:
        """Write a SQLite Sage 50FR dossier with French demo data, in the reference schema or
        another built-in layout."""
        import json
        from dataclasses import asdict

        from dossiersync.plugin import SourceError

        from .demo_dossier import write_demo_dossier

        try:
            summary = write_demo_dossier(
                path,
                clients=clients,
                contacts=contacts,
                products=products,
                orders=orders,
                seed=seed,
                overwrite=overwrite,
                layout=layout,
            )
        except (ValueError, FileExistsError, SourceError) as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(json.dumps(asdict(summary), indent=2, ensure_ascii=False, default=str))
        else:
            from dossiersync.plugin import gettext, ngettext

            said = summary.words(gettext, ngettext)
            click.echo(gettext("{path}: {summary}").format(path=path, summary=said))

    from .mapping_commands import register_mapping_commands

    register_mapping_commands(cli)
