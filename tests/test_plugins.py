"""Plugins are found through entry points; a broken one is an error naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossiersync.cli import cli
from dossiersync.entities.clients import ClientsEntity
from dossiersync.errors import PluginError
from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint
from dossiersync.plugins.sales_management import SalesManagementClient
from dossiersync.registry import load_endpoint, load_entities, plugin_manager


def fake_distribution(root: Path, name: str, entry_points: str, module: str = "") -> None:
    """An installed distribution on sys.path, as pip would leave it."""
    info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module:
        (root / f"{name.replace('-', '_')}.py").write_text(module)


def test_builtins_are_listed_with_distribution_and_version() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = {(p["group"], p["name"]): p for p in json.loads(result.stdout)}
    for key in [
        ("dossiersync.endpoints", "sage50fr_odbc"),
        ("dossiersync.endpoints", "sales_management"),
        ("dossiersync.entities", "clients"),
    ]:
        assert found[key]["distribution"] == "dossiersync"
        assert found[key]["version"] == "0.1.0"
        assert found[key]["error"] is None


def test_loading_by_name() -> None:
    assert load_endpoint("sage50fr_odbc") is Sage50OdbcEndpoint
    assert load_endpoint("sales_management") is SalesManagementClient
    (clients,) = load_entities(["clients"])
    assert isinstance(clients, ClientsEntity)


def test_a_plugin_that_fails_to_load_is_an_error_naming_it(tmp_path: Path) -> None:
    fake_distribution(
        tmp_path,
        "acme-broken",
        "[dossiersync.entities]\ninvoices = acme_broken:Invoices\n",
        module="raise ImportError('acme_broken needs a library that is not installed')\n",
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    loading = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dossiersync.registry import load_entities\n"
            "load_entities(['clients', 'invoices'])",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert loading.returncode != 0
    assert "PluginError" in loading.stderr
    assert "plugin 'invoices'" in loading.stderr and "from acme-broken" in loading.stderr
    assert "not installed" in loading.stderr

    listing = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "plugins"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listing.returncode == 1
    assert "acme-broken" in listing.stdout and "ImportError" in listing.stdout


def test_unknown_entity_or_endpoint_is_named() -> None:
    with pytest.raises(PluginError, match="'nope'"):
        load_endpoint("nope")
    with pytest.raises(PluginError, match="invoicez"):
        load_entities(["invoicez"])


def test_third_party_entity_is_loaded_like_a_builtin(tmp_path: Path) -> None:
    fake_distribution(
        tmp_path,
        "acme-extra",
        "[dossiersync.entities]\nnotes = acme_extra:Notes\n",
        module=(
            "from dossiersync.entities.clients import ClientsEntity\n"
            "class Notes(ClientsEntity):\n"
            "    name = 'notes'\n"
            "    depends_on = ('clients',)\n"
        ),
    )
    loading = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dossiersync.registry import load_entities; "
            "print([e.name for e in load_entities(['notes', 'clients'])])",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert loading.returncode == 0, loading.stderr
    assert loading.stdout.strip() == "['clients', 'notes']"


def test_misspelled_hook_fails_at_start() -> None:
    from dossiersync.hookspecs import hookimpl

    class Careless:
        @hookimpl
        def dossiersync_run_finsihed(self, run: object) -> None:  # misspelled
            pass

    pm = plugin_manager()
    careless = Careless()
    pm.register(careless)
    try:
        with pytest.raises(Exception, match="dossiersync_run_finsihed"):
            pm.check_pending()
    finally:
        pm.unregister(careless)


def test_hooks_are_called() -> None:
    from dossiersync.hookspecs import hookimpl

    seen: list[str] = []

    class Upper:
        @hookimpl
        def dossiersync_transform_record(
            self, dossier: str, entity: str, direction: str, record: dict[str, object]
        ) -> None:
            seen.append(dossier)
            record["name"] = str(record["name"]).upper()

    pm = plugin_manager()
    upper = Upper()
    pm.register(upper)
    try:
        record: dict[str, object] = {"name": "Café"}
        pm.hook.dossiersync_transform_record(
            dossier="nord", entity="clients", direction="sage_to_ssm", record=record
        )
    finally:
        pm.unregister(upper)
    assert record == {"name": "CAFÉ"} and seen == ["nord"]


def test_a_plugin_installed_while_the_process_runs_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [e.name for e in load_entities(["clients"])] == ["clients"]  # caches entry points
    fake_distribution(
        tmp_path,
        "acme-late",
        "[dossiersync.entities]\nlate_notes = acme_late:Notes\n",
        module=(
            "from dossiersync.entities.clients import ClientsEntity\n"
            "class Notes(ClientsEntity):\n"
            "    name = 'late_notes'\n"
        ),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [e.name for e in load_entities(["clients", "late_notes"])] == [
        "clients",
        "late_notes",
    ]


def test_an_endpoint_installed_while_the_process_runs_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_endpoint("sales_management") is SalesManagementClient  # caches entry points
    fake_distribution(
        tmp_path,
        "acme-endpoint",
        "[dossiersync.endpoints]\nlate_odbc = acme_endpoint:Endpoint\n",
        module="class Endpoint:\n    name = 'late_odbc'\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_endpoint("late_odbc").name == "late_odbc"


def test_an_entity_with_its_own_pass_is_refused_naming_it(tmp_path: Path) -> None:
    """Custom passes are gone: an entity that still brings one would silently run the
    generic pass instead, so it is refused when loaded."""
    fake_distribution(
        tmp_path,
        "acme-snapshots",
        "[dossiersync.entities]\nsnapshots = acme_snapshots:Snapshots\n",
        module=(
            "from dossiersync.entities.clients import ClientsEntity\n"
            "class Snapshots(ClientsEntity):\n"
            "    name = 'snapshots'\n"
            "    def pass_class(self, direction):\n"
            "        return None\n"
        ),
    )
    loading = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dossiersync.registry import load_entities; load_entities(['snapshots'])",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert loading.returncode != 0
    assert "plugin 'snapshots' (acme_snapshots:Snapshots) defines pass_class" in loading.stderr
