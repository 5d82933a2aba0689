"""The French guides say what their English counterparts say about the commands and the
settings: each names the same ``dossiersync`` commands and the same configuration keys
as its counterpart, and every command named exists (``--help`` is the reference, as in
tests/test_cli_docs.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from dossiersync.cli import cli

ROOT = Path(__file__).resolve().parent.parent

#: each English guide and the French files that say the same (README.fr.md leaves the
#: README's first sync to docs/fr/premiers-pas.md)
PAIRS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("README.md",): ("README.fr.md", "docs/fr/premiers-pas.md"),
    ("docs/configuration.md",): ("docs/fr/configuration.md",),
    ("docs/web.md",): ("docs/fr/page-de-suivi.md",),
    ("docs/incidents.md",): ("docs/fr/incidents.md",),
    ("docs/windows.md",): ("docs/fr/windows.md",),
}

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
#: the program, as a shell or the service wrapper names it, then its words
PROGRAM = re.compile(r"(?:^|(?<=[\s/\\(\"'`|&;]))dossiersync(?:\.exe)?\"?((?:[ \t]+\S+)*)")
TOML_KEY = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=", re.M)
TOML_TABLE = re.compile(r"^\s*\[([\w.-]+)\]", re.M)
SETTING_SPAN = re.compile(r"^\[?([a-z_]+)(?:\.([A-Za-z_*-]+|ID|NAME))?(?:\.([a-z_]+))?\]?$")


def settings_schema() -> tuple[set[str], set[str]]:
    """The configuration's tables and its keys (each key by its own name: ``bind``)."""
    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text(encoding="utf-8"))
    tables: set[str] = set()
    keys: set[str] = set()

    def walk(node: dict[str, object]) -> None:
        for name, sub in dict(node.get("properties", {})).items():  # type: ignore[call-overload]
            if isinstance(sub, dict) and sub.get("type") == "object":
                walk(sub)
            else:
                keys.add(name)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra)

    for name, sub in schema["properties"].items():
        tables.add(name)
        walk(sub)
    return tables, keys


TABLES, KEYS = settings_schema()


def code(text: str) -> Iterator[tuple[str, str]]:
    """Each piece of code of a Markdown text: ``(language, text)`` for a fenced block,
    ``("", text)`` for a span of inline code outside the blocks."""
    for block in FENCE.finditer(text):
        yield block.group(1), block.group(2)
    for span in INLINE.finditer(FENCE.sub("", text)):
        yield "", span.group(1)


def global_options() -> dict[str, bool]:
    """The options before a command: whether each takes a value."""
    return {
        flag: not (param.is_flag or param.count)
        for param in cli.params
        if isinstance(param, click.Option)
        for flag in param.opts
    }


def command_named(words: list[str]) -> str | None:
    """The command ``dossiersync WORDS…`` names (``dossiersync dossiers activate``), by
    the CLI's own tree, or the words it does not know: ``dossiersync frobnicate``."""
    options = global_options()
    rest = list(words)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0).split("=", 1)[0]
        if options.get(flag) and "=" not in flag and rest:
            rest.pop(0)
    if not rest or not re.fullmatch(r"[a-z][a-z-]*", rest[0]):
        return None  # `dossiersync --version`, `dossiersync <command>`, `dossiersync COMMAND`
    path, group = ["dossiersync"], cli
    for word in rest:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        command = group.commands.get(word)
        if command is None:
            if len(path) == 1:
                path.append(word)  # not a command: said by the test
            break
        path.append(word)
        if not isinstance(command, click.Group):
            break
        group = command
    return " ".join(path)


def commands(text: str) -> set[str]:
    found = set()
    for _language, piece in code(text):
        for line in piece.splitlines():
            for mention in PROGRAM.finditer(line):
                named = command_named(mention.group(1).split())
                if named:
                    found.add(named)
    return found


def settings(text: str) -> set[str]:
    """Configuration tables (``[web]``) and keys (``bind``) a text names: in TOML blocks,
    and in code spans that are a table, a key or ``table.key`` of the schema."""
    found = set()
    for language, piece in code(text):
        if language == "toml":
            found |= {f"[{t.split('.')[0]}]" for t in TOML_TABLE.findall(piece)}
            found |= {k for k in TOML_KEY.findall(piece) if k in KEYS}
            continue
        if language:
            continue
        match = SETTING_SPAN.match(piece.strip())
        if not match:
            continue
        first, second, third = match.groups()
        if piece.strip().startswith("["):
            if first in TABLES:
                found.add(f"[{first}]")
            continue
        if first in TABLES and second:
            found.add(f"[{first}]")
            key = third or second
            if key in KEYS:
                found.add(key)
        elif first in KEYS and second is None:
            found.add(first)
    return found


def read(paths: tuple[str, ...]) -> str:
    return "\n".join((ROOT / p).read_text(encoding="utf-8") for p in paths)


def every_command() -> set[str]:
    def walk(group: click.Group, path: str) -> Iterator[str]:
        yield path
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from walk(command, f"{path} {name}")
            else:
                yield f"{path} {name}"

    return set(walk(cli, "dossiersync"))


@pytest.mark.parametrize("english", list(PAIRS), ids=lambda p: p[0])
def test_the_french_guide_names_the_commands_of_the_english_one(english: tuple[str, ...]) -> None:
    french = PAIRS[english]
    said_en, said_fr = commands(read(english)), commands(read(french))
    assert said_en, f"{english} names no command: the check reads nothing"
    assert sorted(said_en - said_fr) == [], f"named in {english}, not in {french}"
    assert sorted(said_fr - said_en) == [], f"named in {french}, not in {english}"


@pytest.mark.parametrize("english", list(PAIRS), ids=lambda p: p[0])
def test_the_french_guide_names_the_settings_of_the_english_one(english: tuple[str, ...]) -> None:
    french = PAIRS[english]
    said_en, said_fr = settings(read(english)), settings(read(french))
    assert sorted(said_en - said_fr) == [], f"named in {english}, not in {french}"
    assert sorted(said_fr - said_en) == [], f"named in {french}, not in {english}"


def test_every_command_a_guide_names_exists() -> None:
    known = every_command()
    problems = [
        f"{path}: {command} does not exist"
        for pair in PAIRS.items()
        for path in (*pair[0], *pair[1])
        for command in sorted(commands(read((path,))))
        if command not in known
    ]
    assert problems == []


def test_the_check_sees_a_missing_or_unknown_command_and_setting() -> None:
    english = "Run `dossiersync sync --dry-run`, then `dossiersync dossiers activate nord`.\n"
    assert commands(english) == {"dossiersync sync", "dossiersync dossiers activate"}
    # a French text without one of them, or with a command --help does not know
    assert commands("Lancez `dossiersync sync`.") != commands(english)
    assert "dossiersync synchronise" in commands("`dossiersync synchronise`") - every_command()
    assert commands("```bat\nC:\\venv\\Scripts\\dossiersync.exe --config x.toml status\n```") == {
        "dossiersync status"
    }
    assert commands("`nssm set dossiersync AppParameters run` `dossiersync.toml`") == set()
    toml = '```toml\n[web]\nbind = "127.0.0.1"  # x\n[dossiers.acme]\nmapping = "ciel"\n```'
    assert settings(toml) == {"[web]", "bind", "[dossiers]", "mapping"}
    assert settings("`web.session_max_hours`, `[sync]`, `[dossiers.ID]`, `nothing`") == {
        "[web]",
        "session_max_hours",
        "[sync]",
        "[dossiers]",
    }


def test_readme_and_its_french_version_point_to_each_other() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    french = (ROOT / "README.fr.md").read_text(encoding="utf-8")
    assert "[Version française](README.fr.md)" in english
    assert "(README.md)" in french and "(docs/fr/premiers-pas.md)" in french
    for path in (p for pair in PAIRS.values() for p in pair):
        assert (ROOT / path).is_file(), path
