"""``pip install dossiersync-….whl`` is a way in beside ``make``: the wheel built by
``python -m build`` carries everything the connector reads at run time, and installed in
a fresh virtualenv (no system site-packages, dependencies from the package index) it
runs ``dossiersync demo`` from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: what the wheel is built from (the rest of the checkout is not the package's)
SOURCES = ("pyproject.toml", "README.md", "core", "plugins", "entities", "schemas")
#: source folder -> where pyproject.toml puts it in the package
PACKAGE_DIRS = {
    "core": "dossiersync",
    "plugins": "dossiersync/plugins",
    "entities": "dossiersync/entities",
    "schemas": "dossiersync/schemas",
}
#: files the connector reads at run time; .po/.pot and babel.cfg are the catalogues'
#: sources, compiled into the .mo files it reads
RUNTIME_SUFFIXES = {".py", ".json", ".html", ".css", ".js", ".mo", ".mako", ".typed"}
DEMO_DOSSIERS = ("nord", "sud", "ouest")


def run(args: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # the environment of a person at a shell: no checkout on the path, no virtualenv
    # active, the C locale (a translated table would not be the one asserted)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("LANGUAGE", None)
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def expected_in_wheel() -> set[str]:
    """Every run-time file of the source folders, named as the wheel names it."""
    found = set()
    for folder, package in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in RUNTIME_SUFFIXES:
                found.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources: setuptools' build/ folder in the checkout could
    carry a file since deleted into the wheel."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", out, source], out, timeout=300
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(out.glob("dossiersync-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_carries_every_file_the_connector_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected_in_wheel() - names)
    assert missing == [], f"not in the wheel: {missing}"
    # the ones a missing package-data glob loses without an import failing
    for name in (
        "dossiersync/py.typed",
        "dossiersync/schemas/config.schema.json",
        "dossiersync/schemas/sage50fr/ciel-mapping.json",
        "dossiersync/web/templates/status.html",
        "dossiersync/web/static/app.css",
        "dossiersync/web/locale/fr/LC_MESSAGES/messages.mo",
        "dossiersync/migrations/script.py.mako",
    ):
        assert name in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(info).decode()
    assert "dossiersync = dossiersync.cli:main" in entry_points


def test_the_wheel_installs_on_a_32_bit_windows_python(wheel: Path) -> None:
    """A 32-bit Sage ODBC driver needs a 32-bit Python, for which psycopg's binary build
    has no wheel: on Windows the wheel asks for psycopg alone (docs/windows.md)."""
    from packaging.requirements import Requirement

    archive = zipfile.ZipFile(wheel)
    metadata = archive.read(next(n for n in archive.namelist() if n.endswith("/METADATA")))
    wanted = [
        Requirement(line.split(":", 1)[1].strip())
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]

    def installed_on(platform: str) -> dict[str, set[str]]:
        system = "Windows" if platform == "win32" else "Linux"
        where = {"sys_platform": platform, "platform_system": system, "extra": ""}
        return {
            r.name.lower(): set(r.extras)
            for r in wanted
            if r.marker is None or r.marker.evaluate(where)
        }

    on_windows = installed_on("win32")
    assert on_windows["psycopg"] == set()
    assert "psycopg-binary" not in on_windows and "pyodbc" in on_windows
    # elsewhere the binary build stays: no libpq to install for a PostgreSQL state store
    assert installed_on("linux")["psycopg"] == {"binary"}


def test_the_wheel_installed_in_a_fresh_virtualenv_runs_the_demo(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", venv], tmp_path, timeout=120)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run([python, "-m", "pip", "install", "-q", wheel], tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    elsewhere = tmp_path / "any folder"
    elsewhere.mkdir()
    where = run([python, "-c", "import dossiersync; print(dossiersync.__file__)"], elsewhere, 60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    plugins = run([venv / "bin" / "dossiersync", "plugins"], elsewhere, timeout=60)
    assert plugins.returncode == 0, plugins.stdout + plugins.stderr

    demo = run([venv / "bin" / "dossiersync", "demo"], elsewhere, timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    lines = demo.stdout.splitlines()
    status = lines.index("== Status: dossiersync status")
    header = lines[status + 1].split()
    assert header[:4] == ["DOSSIER", "NAME", "STATE", "ENTITY"], lines[status + 1]
    rows = [line.split() for line in lines[status + 2 :] if line.strip()]
    rows = rows[: next((i for i, r in enumerate(rows) if r[0] == "=="), len(rows))]
    assert {r[0] for r in rows} == set(DEMO_DOSSIERS)
    for dossier in DEMO_DOSSIERS:
        entities = {r[r.index("active") + 1] for r in rows if r[0] == dossier}
        assert {"clients", "contacts", "products", "orders"} <= entities
    assert all("succeeded" in r and "failed" not in r for r in rows)
    assert "0 refused" in demo.stdout
    # the demo's files are in ./demo of the folder it ran in
    made_there = {p.name for p in (elsewhere / "demo").iterdir()}
    assert {"dossiersync.toml", "dossiersync.db", *(f"{d}.db" for d in DEMO_DOSSIERS)} <= made_there
