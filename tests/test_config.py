"""The configuration file: where it is found, how it is validated, how secrets resolve."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossiersync.cli import cli
from dossiersync.config import Config, load
from dossiersync.errors import ConfigError
from dossiersync.hookspecs import hookimpl
from dossiersync.registry import plugin_manager

VALID = """
[implementation]
name = "Acme group"
api_url = "http://127.0.0.1:8765/api/v4"
public_key = "env:SSM_PUBLIC_KEY"
private_key = "env:SSM_PRIVATE_KEY"
[state]
url = "sqlite:///dossiersync.db"
[dossiers.acme-fr]
name = "Acme France"
connection = "DRIVER={SQLite3};Database=/srv/acme-fr.db"
entities = ["clients"]
"""


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSM_PUBLIC_KEY", "pub-123456")
    monkeypatch.setenv("SSM_PRIVATE_KEY", "priv-abcdef")


def reachable(tmp_path: Path) -> str:
    """VALID with a dossier file that exists (``dossiers discover`` opens each source)."""
    dossier = tmp_path / "acme-fr.db"
    sqlite3.connect(dossier).execute("CREATE TABLE IF NOT EXISTS t (x)").connection.close()
    return VALID.replace("/srv/acme-fr.db", str(dossier))


def write(tmp_path: Path, text: str, name: str = "dossiersync.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load(write(tmp_path, VALID))
    assert config.implementation.name == "Acme group"
    assert config.implementation.settings["private_key"].reveal() == "priv-abcdef"
    assert "priv-abcdef" not in repr(config)
    dossier = config.dossiers["acme-fr"]
    assert dossier.entities == ("clients",)
    # a relative SQLite state file lives beside the configuration
    assert config.state_url == f"sqlite:///{tmp_path.resolve() / 'dossiersync.db'}"


def test_invalid_file_is_refused_with_the_json_path_of_each_problem(tmp_path: Path) -> None:
    text = VALID.replace('api_url = "http://', 'api_url = "ftp://').replace(
        'entities = ["clients"]', 'entities = ["clients", 3]\ncolour = "blue"'
    )
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert "$.implementation.api_url" in message
    assert "$.dossiers.acme-fr.entities[1]" in message
    assert "$.dossiers.acme-fr" in message and "colour" in message


def test_bad_dossier_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\.dossiers"):
        load(write(tmp_path, VALID.replace("[dossiers.acme-fr]", '[dossiers."acme fr!"]')))


def test_missing_environment_variable_is_named_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSM_PRIVATE_KEY")
    config = load(write(tmp_path, VALID))  # the API keys are read when first needed
    with pytest.raises(ConfigError, match="implementation.private_key: environment variable"):
        config.implementation.settings["private_key"].reveal()


def test_local_views_need_no_api_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``status`` reads only the state store; asking SSM says which key is missing."""
    monkeypatch.delenv("SSM_PUBLIC_KEY")
    monkeypatch.delenv("SSM_PRIVATE_KEY")
    path = str(write(tmp_path, reachable(tmp_path)))
    status = CliRunner().invoke(cli, ["--config", path, "status"])
    assert status.exit_code == 0, status.output
    discover = CliRunner().invoke(cli, ["--config", path, "dossiers", "discover"])
    assert discover.exit_code == 0
    assert "Sales Management not asked" in discover.output
    assert "environment variable SSM_PUBLIC_KEY is not set" in discover.output


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "private.key"
    secret.write_text("from-a-file\n")
    secret.chmod(0o644)
    text = VALID.replace('"env:SSM_PRIVATE_KEY"', f'"file:{secret}"')
    with pytest.raises(ConfigError, match="readable by others"):
        load(write(tmp_path, text)).implementation.settings["private_key"].reveal()
    secret.chmod(0o600)
    assert (
        load(write(tmp_path, text)).implementation.settings["private_key"].reveal() == "from-a-file"
    )


def test_config_option_then_environment_then_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    valid = reachable(tmp_path)
    write(here, valid.replace("Acme France", "from cwd"))
    env_file = write(tmp_path, valid.replace("Acme France", "from env"), "env.toml")
    opt_file = write(tmp_path, valid.replace("Acme France", "from option"), "opt.toml")
    monkeypatch.chdir(here)

    def names(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args, "dossiers", "discover"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    monkeypatch.delenv("DOSSIERSYNC_CONFIG", raising=False)
    assert "from cwd" in names()
    monkeypatch.setenv("DOSSIERSYNC_CONFIG", str(env_file))
    assert "from env" in names()
    assert "from option" in names("--config", str(opt_file))


def test_cli_reports_an_invalid_file_and_fails(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = write(tmp_path, VALID.replace('name = "Acme group"', "name = 12"))
    result = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(bad), "dossiers", "list"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "$.implementation.name" in result.stderr


def test_a_misspelled_entity_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    text = VALID.replace('entities = ["clients"]', 'entities = ["clients", "contact"]')
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert "dossiers.acme-fr.entities" in message and "'contact'" in message
    installed = message.split("(installed: ", 1)[1].rstrip(")").split(", ")
    assert {"clients", "contacts", "orders", "products"} <= set(installed)
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "dossiersync.toml"), "status"])
    assert isinstance(result.exception, ConfigError) and "'contact'" in str(result.exception)


class TableReader:
    """A plugin reading its ``[plugins.clients]`` table; it refuses ``level = "loud"``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    @hookimpl
    def dossiersync_configure(self, config: Config) -> None:
        table = dict(config.plugins.get("clients", {}))
        if table.get("level") == "loud":
            raise ConfigError("plugins.clients.level: 'loud' is not a level")
        self.seen.append(table)


@pytest.fixture
def reader() -> Iterator[TableReader]:
    plugin = TableReader()
    pm = plugin_manager()
    pm.register(plugin, name="test-table-reader")
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def test_a_plugin_receives_its_table_when_the_file_is_read(
    tmp_path: Path, reader: TableReader
) -> None:
    config = load(write(tmp_path, VALID + '[plugins.clients]\nlevel = "quiet"\nevery = 3\n'))
    assert config.plugins["clients"] == {"level": "quiet", "every": 3}
    assert reader.seen[-1] == {"level": "quiet", "every": 3}

    # a table the plugin refuses refuses the file
    with pytest.raises(ConfigError, match="plugins.clients.level"):
        load(write(tmp_path, VALID + '[plugins.clients]\nlevel = "loud"\n'))
    assert reader.seen[-1] == {"level": "quiet", "every": 3}


def test_a_table_for_no_installed_plugin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load(write(tmp_path, VALID + '[plugins.alrets]\nwebhook_url = "env:HOOK"\n'))
    message = str(refused.value)
    assert "plugins: no installed plugin is named 'alrets'" in message
    assert "clients" in message  # what is installed

    with pytest.raises(ConfigError, match=r"\$\.plugins\.clients: 'loud' is not of type 'object'"):
        load(write(tmp_path, 'plugins.clients = "loud"\n' + VALID))


@pytest.mark.parametrize(
    "second",
    [
        "DRIVER={SQLite3};Database=/srv/acme-fr.db",
        "Driver={SQLite3}; database = /srv/./acme-fr.db;NoCreat=1",
        "DRIVER={SQLite3};Database=/srv/link/../acme-fr.db",
    ],
)
def test_one_sage_file_in_two_dossiers_is_refused(tmp_path: Path, second: str) -> None:
    """Two dossiers on one file would create every record twice in Sales Management."""
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "link").mkdir()
    text = VALID.replace("/srv/", f"{tmp_path}/srv/") + (
        f'[dossiers.acme-bis]\nconnection = "{second.replace("/srv/", f"{tmp_path}/srv/")}"\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "dossiers.acme-fr and dossiers.acme-bis" in message
    assert f"{tmp_path}/srv/acme-fr.db" in message and "Sage source" in message
    state = tmp_path / "dossiersync.db"
    result = CliRunner().invoke(cli, ["--config", str(path), "sync"])
    assert isinstance(result.exception, ConfigError)
    assert not state.exists(), "something was written before the configuration was refused"


def test_one_data_source_or_server_database_in_two_dossiers_is_refused(tmp_path: Path) -> None:
    text = VALID.replace("DRIVER={SQLite3};Database=/srv/acme-fr.db", "DSN=Acme_FR") + (
        '[dossiers.acme-bis]\nconnection = "dsn=acme_fr;UID=compta;PWD=s3cret-pwd"\n'
    )
    with pytest.raises(ConfigError, match="dsn:acme_fr") as caught:
        load(write(tmp_path, text))
    assert "s3cret-pwd" not in str(caught.value) and "compta" not in str(caught.value)
    server = "DRIVER={PostgreSQL Unicode};Server=db.local;Port=5432;Database=sage"
    text = VALID.replace("DRIVER={SQLite3};Database=/srv/acme-fr.db", server) + (
        "[dossiers.acme-bis]\nconnection = "
        '"Driver={PostgreSQL Unicode};SERVER=DB.local;Port=5432;Database=sage;PWD={a}}b;c}"\n'
    )
    with pytest.raises(ConfigError, match=r"server:db\.local:5432/sage"):
        load(write(tmp_path, text))
    # another database on the same server is another dossier
    load(write(tmp_path, text.replace("Database=sage;PWD", "Database=sage2;PWD")))


def test_one_branch_in_two_dossiers_is_refused(tmp_path: Path) -> None:
    """Accounts created in SSM belong to the dossier of their branch: one branch, one
    dossier."""
    text = VALID.replace('entities = ["clients"]', 'entities = ["clients"]\nbranch_id = 4') + (
        '[dossiers.acme-be]\nconnection = "DRIVER={SQLite3};Database=/srv/acme-be.db"\n'
        "branch_id = 4\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert "dossiers.acme-fr and dossiers.acme-be share one branch_id (4)" in message
    result = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(tmp_path / "dossiersync.toml"),
         "sync"], capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "branch_id (4)" in result.stderr
    assert not (tmp_path / "dossiersync.db").exists()
    load(write(tmp_path, text[: text.rindex("branch_id = 4")] + "branch_id = 5\n"))
