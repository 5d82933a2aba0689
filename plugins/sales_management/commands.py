"""The Sales Management plugin's command: ``dossiersync simulator``."""

from __future__ import annotations

import click

from dossiersync.plugin import hookimpl


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
