"""``dossiersync`` imports what a command needs and nothing more: the libraries of the
state store, the Sage driver, the HTTP client and the web server stay unloaded for
``--help``, and ``status`` (local state only) loads no driver and no HTTP client.
Checked by the modules loaded, not by a stopwatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.workspace import Workspace

PROBE = """
import json, sys
from dossiersync.cli import main
sys.argv = ["dossiersync", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
heavy = {"sqlalchemy", "alembic", "pyodbc", "httpx", "jsonschema", "fastjsonschema",
         "starlette", "uvicorn", "jinja2", "faker", "psycopg", "stevedore",
         "celery", "kombu", "redis", "billiard"}
print("MODULES", json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


def loaded(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return list(json.loads(line.removeprefix("MODULES ")))


def test_help_loads_no_heavy_library() -> None:
    assert loaded("--help") == []
    assert loaded("sync", "--help") == []
    # the distributed engine's commands load Celery only when they start
    assert loaded("worker", "--help") == []
    assert loaded("scheduler", "--help") == []


def test_status_loads_no_driver_and_no_http_client(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.activate_all()
    modules = loaded("--config", str(workspace.config_path), "status")
    assert "sqlalchemy" in modules  # it reads the state store
    assert not {"pyodbc", "httpx", "starlette", "uvicorn", "faker"} & set(modules)


def test_the_default_path_loads_nothing_of_the_distributed_engine(workspace: Workspace) -> None:
    """`sync` and `run` (the service, one cycle) need neither Celery nor Redis."""
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.activate_all()
    config = str(workspace.config_path)
    for args in (["sync"], ["run", "--cycles", "1", "--no-web"]):
        modules = loaded("--config", config, *args)
        assert "sqlalchemy" in modules and "pyodbc" in modules, args
        assert not {"celery", "kombu", "redis", "billiard"} & set(modules), args


def test_without_the_celery_extra_the_worker_says_what_to_install(tmp_path: Path) -> None:
    config = tmp_path / "acme.toml"
    config.write_text("")
    script = (
        "import sys; sys.modules['celery'] = None\n"  # as if the extra were not installed
        "from dossiersync.cli import main\n"
        f"sys.argv = ['dossiersync', 'worker', '--configs', {str(config)!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "pip install 'dossiersync[celery]'" in done.stderr
    assert "Traceback" not in done.stderr
