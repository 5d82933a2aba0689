"""The Compose example of docs/deployment.md stays true: its implementations are valid
configurations the distributed engine accepts, its services run the real commands with
options that exist, and the Dockerfile installs the celery extra."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossiersync.cli import cli
from dossiersync.distributed import implementations

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "compose"


def test_the_compose_implementations_are_valid_configurations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = (EXAMPLE / "compose.yaml").read_text()
    for name, value in re.findall(r"^ {4}([A-Z_]+): (\S+)$", compose, re.M):
        monkeypatch.setenv(name, value)
    found = implementations([EXAMPLE / "implementations"])
    assert sorted(found) == ["acme", "globex"]


def test_the_compose_services_run_commands_that_exist() -> None:
    compose = (EXAMPLE / "compose.yaml").read_text()
    commands = [
        shlex.split(" ".join(re.findall(r'"([^"]*)"', block)))
        for block in re.findall(r'command: \[("dossiersync".*?)\]', compose, re.S)
    ]
    assert {c[1] if not c[1].startswith("--") else c[3] for c in commands} >= {
        "worker",
        "scheduler",
        "serve",
        "simulator",
    }
    for args in commands:
        if args[1] == "simulator":
            continue  # argparse, checked by its own tests
        result = CliRunner().invoke(cli, [*args[1:], "--help"])
        assert result.exit_code == 0, (args, result.output)
    assert "[celery]" in (EXAMPLE / "Dockerfile").read_text()
