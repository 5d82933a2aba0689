"""``dossiersync.plugin`` is the one module plugins import: the built-in plugins and the
examples import nothing else of dossiersync, every public name is documented, and names
that moved keep working with a warning naming their new place."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import dossiersync.plugin as api

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"


def plugin_files() -> dict[Path, str]:
    """Each file of a built-in plugin or an example, with the package it belongs to
    (which it may import from freely)."""
    found: dict[Path, str] = {}
    for path in (ROOT / "entities").glob("*.py"):
        found[path] = "dossiersync.entities"
    for folder in (ROOT / "plugins").iterdir():
        if folder.is_dir() and not folder.name.startswith("_"):
            for path in folder.rglob("*.py"):
                found[path] = f"dossiersync.plugins.{folder.name}"
    for example in (ROOT / "docs" / "examples").glob("dossiersync-*"):
        for path in example.rglob("*.py"):
            found[path] = example.name.replace("-", "_")
    return found


def dossiersync_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of dossiersync in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, m) for line, m in out if m == "dossiersync" or m.startswith("dossiersync.")]


def test_plugins_and_examples_import_only_the_public_api() -> None:
    files = plugin_files()
    assert len(files) > 25  # entities, both endpoints and their simulator, both examples
    allowed_everywhere = {"dossiersync.plugin", "dossiersync.testing"}
    wrong = []
    for path, own in sorted(files.items()):
        for line, module in dossiersync_imports(path):
            if module in allowed_everywhere or module == own or module.startswith(own + "."):
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert wrong == []


def test_every_public_name_resolves_and_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Za-z_]+)`", text, re.MULTILINE))
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) <= documented, sorted(set(api.__all__) - documented)
    assert sorted(dir(api)) == sorted(api.__all__)
    with pytest.raises(AttributeError, match="Entty"):
        api.Entty  # noqa: B018 - a typo is an error, not None


def test_names_that_did_not_move_are_the_same_objects_without_warning() -> None:
    from dossiersync.entity import Entity, FieldSpec
    from dossiersync.errors import RecordRefused
    from dossiersync.hookspecs import hookimpl
    from dossiersync.journal import IncidentRecord

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert api.Entity is Entity and api.FieldSpec is FieldSpec
        assert api.RecordRefused is RecordRefused and api.hookimpl is hookimpl
        assert api.IncidentRecord is IncidentRecord


def test_a_moved_name_still_works_and_names_its_new_place() -> None:
    with pytest.warns(DeprecationWarning, match=r"use dossiersync\.plugin\.SAGE_TO_SSM"):
        from dossiersync.entity import SAGE_TO_SSM
    assert SAGE_TO_SSM == "sage_to_ssm" and SAGE_TO_SSM is api.SAGE_TO_SSM
    with pytest.warns(DeprecationWarning, match=r"use dossiersync\.plugin\.SSM_TO_SAGE"):
        from dossiersync.entity import SSM_TO_SAGE
    assert SSM_TO_SAGE == "ssm_to_sage"


def test_the_public_module_costs_nothing_until_a_name_is_used() -> None:
    probe = (
        "import json, sys\n"
        "from dossiersync.plugin import hookimpl\n"
        "heavy = {'jsonschema', 'fastjsonschema', 'sqlalchemy', 'httpx', 'pyodbc'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
