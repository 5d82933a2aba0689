"""A plugin type-checks against the installed package: dossiersync built and installed as
a user installs it (a regular, non-editable install: ``dossiersync/`` with its
``py.typed``), then ``mypy --strict`` on both examples' packages finds every name of
``dossiersync.plugin`` and its types. An editable install maps ``core/`` to
``dossiersync`` through an import hook mypy does not follow ("Cannot find implementation
or library stub for module named dossiersync.plugin"), which is what a plugin's author
met."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
PACKAGES = [
    EXAMPLES / "dossiersync-invoices" / "dossiersync_invoices",
    EXAMPLES / "dossiersync-alerts" / "dossiersync_alerts",
]

CARELESS = """
from dossiersync.plugin import SAGE_TO_SSM, Entity, FieldSpec


class Careless(Entity):
    name = "careless"
    directions = (SAGE_TO_SSM,)
    fields = (FieldSpec("quantity", sage="DL_Qte", kind="integer"),)
"""


def mypy(site: Path, *targets: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on ``targets``, with dossiersync found where ``site`` holds it (the
    directory comes first on the path of the interpreter mypy asks)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            *map(str, targets),
        ],
        capture_output=True,
        text=True,
        cwd=site.parent,  # away from the repository, whose core/ is not "dossiersync"
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=600,
    )


@pytest.mark.slow
def test_the_examples_type_check_against_the_installed_package(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
        + [str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (site / "dossiersync" / "py.typed").is_file()
    assert (site / "dossiersync" / "plugin.py").is_file()

    checked = mypy(site, *PACKAGES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("Success: no issues found")

    # and it does check: a kind the API does not have is an error naming it
    careless = tmp_path / "careless.py"
    careless.write_text(CARELESS, encoding="utf-8")
    refused = mypy(site, careless)
    assert refused.returncode == 1
    assert 'Argument "kind" to "FieldSpec" has incompatible type "Literal[\'integer\']"' in (
        refused.stdout
    )
