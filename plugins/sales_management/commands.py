"""The Sales Management plugin's hooks: its settings' schema, and the commands
``dossiersync simulator`` and ``dossiersync demo``."""

from __future__ import annotations

import json
import logging
import sys
from importlib import resources
from typing import Any

import click

from dossiersync.plugin import hookimpl


@hookimpl
def dossiersync_endpoint_settings(endpoint: str) -> dict[str, Any] | None:
    if endpoint != "sales_management":
        return None
    text = resources.files(__package__).joinpath("settings.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@hookimpl
def dossiersync_register_commands(cli: click.Group) -> None:
    @cli.command(
        "simulator",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    @click.argument("options", nargs=-1, type=click.UNPROCESSED)
    def simulator(options: tuple[str, ...]) -> None:
        """Run the Sales Management simulator (a real HTTP server); --help lists its options."""
        from .simulator.__main__ import main as run_simulator

        run_simulator(list(options), prog="dossiersync simulator")

    @cli.command("demo")
    @click.option(
        "--dir",
        "directory",
        default="demo",
        show_default=True,
        type=click.Path(),
        help="Folder of the demo (emptied first).",
    )
    @click.option(
        "--clients",
        type=click.IntRange(1),
        default=200,
        show_default=True,
        help="Client accounts per dossier.",
    )
    @click.option(
        "--serve", is_flag=True, help="Then keep the service and its status page running (Ctrl-C)."
    )
    def demo(directory: str, clients: int, serve: bool) -> None:
        """Three reference dossiers, the simulator, select all three, sync, show status."""
        from .demo import run_demo

        if serve:
            logging.getLogger("dossiersync").setLevel(logging.INFO)
        sys.exit(run_demo(cli, directory, clients, serve))
