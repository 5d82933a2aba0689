"""docs/cli.md says exactly what ``--help`` says: every command, every option."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from dossiersync.cli import cli
from dossiersync.plugins.sales_management.simulator.__main__ import parser as simulator_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
HEADING = re.compile(r"^### `(dossiersync(?: [a-z-]+)*)`\s*$", re.M)
FLAG = re.compile(r"(?<![\w/-])(--?[a-zA-Z][\w-]*)")
#: the help option is on every command; the doc says so once
HELP = {"-h", "--help"}


def sections(text: str) -> dict[str, str]:
    """The doc's text per command heading (``### `dossiersync sync` ``), up to the next
    heading."""
    found = {}
    marks = list(HEADING.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[mark.end() : end]
        cut = re.search(r"^#{1,3} ", body, re.M)
        found[mark.group(1)] = body[: cut.start()] if cut else body
    return found


def commands(group: click.Group = cli, path: str = "dossiersync") -> Iterator[tuple[str, object]]:
    """Every command of the tree, groups included, by its full name."""
    yield path, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def flags(path: str, command: object) -> set[str]:
    """The option flags ``--help`` shows for a command (the simulator's are argparse's)."""
    if path == "dossiersync simulator":
        actions = simulator_parser()._actions
        return {flag for action in actions for flag in action.option_strings} - HELP
    assert isinstance(command, click.Command)
    return {
        flag
        for param in command.params
        if isinstance(param, click.Option)
        for flag in (*param.opts, *param.secondary_opts)
    } - HELP


def arguments(path: str, command: object) -> set[str]:
    if path == "dossiersync simulator" or not isinstance(command, click.Command):
        return set()  # the simulator's arguments are its options
    return {
        (param.metavar or param.name or "").upper().rstrip(".")
        for param in command.params
        if isinstance(param, click.Argument)
    }


def disagreements(path: str, command: object, section: str | None) -> list[str]:
    """What the doc's section of a command gets wrong about its options."""
    if section is None:
        return [f"{path}: no section '### `{path}`' in docs/cli.md"]
    known = flags(path, command)
    named = set(FLAG.findall(section)) - HELP
    problems = [f"{path}: {flag} is not documented" for flag in sorted(known - named)]
    problems += [
        f"{path}: the doc names {flag}, which does not exist" for flag in sorted(named - known)
    ]
    problems += [
        f"{path}: argument {name} is not documented"
        for name in sorted(arguments(path, command))
        if not re.search(rf"\b{name}\b", section)
    ]
    return problems


def test_docs_name_every_option_of_every_command_and_no_other() -> None:
    documented = sections(DOC.read_text(encoding="utf-8"))
    problems = [
        problem
        for path, command in commands()
        for problem in disagreements(path, command, documented.get(path))
    ]
    assert problems == []
    # and no section documents a command that does not exist
    assert set(documented) == {path for path, _ in commands()}


def test_an_option_added_without_docs_is_caught() -> None:
    documented = sections(DOC.read_text(encoding="utf-8"))
    sync = cli.commands["sync"]
    extra = click.Command(
        "sync", params=[*sync.params, click.Option(["--undocumented-switch"], is_flag=True)]
    )
    assert disagreements("dossiersync sync", extra, documented["dossiersync sync"]) == [
        "dossiersync sync: --undocumented-switch is not documented"
    ]
    # and an option the doc names that the command lost
    fewer = click.Command("sync", params=[p for p in sync.params if p.name != "full"])
    assert disagreements("dossiersync sync", fewer, documented["dossiersync sync"]) == [
        "dossiersync sync: the doc names --full, which does not exist"
    ]


def test_the_simulator_help_names_the_command_it_is_run_as() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["simulator", "--help"])
    assert result.exit_code == 0
    assert result.output.startswith("usage: dossiersync simulator")
