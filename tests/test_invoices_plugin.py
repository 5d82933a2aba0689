"""The example third-party plugin, ``docs/examples/dossiersync-invoices``, installed and
tested by its own tests, as its author runs them.

The module installs the example distribution into the running environment the way a
user would (``pip install``, a regular non-editable install built from a copy of its
folder, so nothing is written next to its sources) and leaves it installed: the next
session finds the installed copy identical to the sources (same version, entry points
and file hashes) and skips pip; it reinstalls as soon as the sources change.  Leaving
it avoids a half-removed distribution under a concurrent run sharing the environment;
``pip uninstall dossiersync-invoices`` removes it.

Then ``pytest`` runs the example's own tests (``docs/examples/dossiersync-invoices/tests``)
in a new process, from the example's folder and with its configuration, as the plugin's
author does: no conftest, the fixtures are those of ``dossiersync.testing``, found
through dossiersync's ``pytest11`` entry point.  Real parts only: reference dossiers
through the SQLite3 ODBC driver, the SSM simulator as a real HTTP server.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "dossiersync-invoices"
DISTRIBUTION = "dossiersync-invoices"
PACKAGE = "dossiersync_invoices"


# -- installing the example distribution -------------------------------------------------


def _record_hash(path: Path) -> str:
    """A file's hash as a wheel's RECORD writes it (sha256, urlsafe base64, no padding)."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def installed_copy_is_current() -> bool:
    """Whether the installed distribution is exactly the example's sources."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        (group, name, target)
        for group, points in project["entry-points"].items()
        for name, target in points.items()
    }
    installed = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    if dist.version != project["version"] or installed != declared:
        return False
    recorded = {str(f): f.hash.value for f in dist.files or () if f.hash is not None}
    sources = [
        p for p in (EXAMPLE / PACKAGE).rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    return all(recorded.get(p.relative_to(EXAMPLE).as_posix()) == _record_hash(p) for p in sources)


@pytest.fixture(scope="module")
def invoices_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # one installer at a time per environment, whatever runs the tests concurrently
    tag = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"dossiersync-invoices-install-{tag}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed_copy_is_current():
            source = tmp_path_factory.mktemp("example") / EXAMPLE.name
            shutil.copytree(
                EXAMPLE,
                source,
                ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "build", "*.egg-info"),
            )
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(source)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            importlib.invalidate_caches()
        assert installed_copy_is_current()
    yield


def test_the_examples_own_tests_pass_with_the_test_kit(
    invoices_plugin: None, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(EXAMPLE / "pyproject.toml"),
            "--rootdir",
            str(EXAMPLE),
            "--basetemp",
            str(tmp_path / "example"),
            str(EXAMPLE / "tests"),
        ],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # every test of the example ran, none was skipped: the fixtures were found
    summary = done.stdout.strip().splitlines()[-1]
    assert re.match(r"^4 passed in ", summary), summary
