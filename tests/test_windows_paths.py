"""Windows-style values where the connector handles paths: a configuration written for the
PC next to Sage 50FR (drive letters, backslashes, TOML literal strings) reads the same on
any machine, and what depends on the system (a process's liveness, a file's mode) asks
the system it runs on. Run here on Linux: what only Windows can show is in docs/windows.md."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from dossiersync.config import load, sqlite_url
from dossiersync.errors import ConfigError
from dossiersync.lease import holder_is_dead
from dossiersync.plugins.sage50fr_odbc.connection import source_identity
from dossiersync.plugins.sales_management.demo import write_config
from dossiersync.secrets import open_to_others, resolve

#: as docs/windows.md writes it: literal strings, so a backslash is a backslash
WINDOWS_CONFIG = r"""
[implementation]
name = "Cabinet Martin"
api_url = "https://api.forcemanager.com/api/v4"
public_key = "env:SSM_PUBLIC_KEY"
private_key = "env:SSM_PRIVATE_KEY"

[state]
url = 'sqlite:///C:\dossiersync\state.db'

[dossiers.acme]
name = "Acme"
connection = 'DRIVER={SQLite3 ODBC Driver};Database=C:\Sage\Dossiers\acme.db'
mapping = 'C:\dossiersync\ciel-acme.toml'
"""


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSM_PUBLIC_KEY", "pub-123456")
    monkeypatch.setenv("SSM_PRIVATE_KEY", "priv-abcdef")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dossiersync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_configuration_written_on_windows_keeps_its_drive_paths(tmp_path: Path) -> None:
    config = load(write(tmp_path, WINDOWS_CONFIG))
    # SQLAlchemy's form of a Windows file, not a file named "C:\…" in the config's folder
    assert config.state_url == "sqlite:///C:/dossiersync/state.db"
    dossier = config.dossiers["acme"]
    assert dossier.mapping == r"C:\dossiersync\ciel-acme.toml"
    assert dossier.connection.reveal() == (
        r"DRIVER={SQLite3 ODBC Driver};Database=C:\Sage\Dossiers\acme.db"
    )


@pytest.mark.parametrize(
    "written",
    [
        r"'sqlite:///C:\dossiersync\state.db'",  # a literal string
        r'"sqlite:///C:\\dossiersync\\state.db"',  # a basic string, backslashes doubled
        '"sqlite:///C:/dossiersync/state.db"',  # forward slashes
        r"'sqlite:///c:\dossiersync\state.db'",
    ],
)
def test_every_way_of_writing_a_windows_state_file_is_one_url(tmp_path: Path, written: str) -> None:
    text = WINDOWS_CONFIG.replace(r"'sqlite:///C:\dossiersync\state.db'", written)
    url = load(write(tmp_path, text)).state_url
    assert url.lower() == "sqlite:///c:/dossiersync/state.db"


def test_a_relative_state_file_is_in_the_configurations_folder_on_either_system() -> None:
    windows = PureWindowsPath(r"C:\ProgramData\dossiersync")
    assert sqlite_url(windows, "sqlite:///dossiersync.db") == (
        "sqlite:///C:/ProgramData/dossiersync/dossiersync.db"
    )
    assert sqlite_url(windows, r"sqlite:///state\dossiersync.db") == (
        "sqlite:///C:/ProgramData/dossiersync/state/dossiersync.db"
    )
    posix = PurePosixPath("/etc/dossiersync")
    assert sqlite_url(posix, "sqlite:///dossiersync.db") == (
        "sqlite:////etc/dossiersync/dossiersync.db"
    )
    # an absolute POSIX file, memory and other databases are left as they are
    assert sqlite_url(windows, "sqlite:////srv/state.db") == "sqlite:////srv/state.db"
    assert sqlite_url(windows, "sqlite:///:memory:") == "sqlite:///:memory:"
    pg = "postgresql+psycopg://sync@db/dossiersync"
    assert sqlite_url(windows, pg) == pg


@pytest.mark.parametrize(
    "other",
    [
        r"DRIVER={SQLite3 ODBC Driver};Database=C:\Sage\Dossiers\acme.db",
        "Driver={SQLite3 ODBC Driver}; dbq = c:/sage/dossiers/./ACME.DB",
        r"DRIVER={SQLite3 ODBC Driver};Database=C:\Sage\Archives\..\Dossiers\Acme.db",
    ],
)
def test_one_windows_file_written_two_ways_in_two_dossiers_is_refused(
    tmp_path: Path, other: str
) -> None:
    """Windows paths ignore case and take / for \\: the same file, however written."""
    text = WINDOWS_CONFIG + f"\n[dossiers.acme-bis]\nconnection = '{other}'\n"
    with pytest.raises(ConfigError) as refused:
        load(write(tmp_path, text))
    message = str(refused.value)
    assert "dossiers.acme and dossiers.acme-bis" in message
    assert r"c:\sage\dossiers\acme.db" in message


def test_source_identity_of_windows_paths() -> None:
    def identity(database: str) -> str:
        return source_identity(f"DRIVER={{Sage 50 ODBC}};Database={database}")

    assert identity(r"C:\Sage\Dossiers\ACME.db") == r"file:c:\sage\dossiers\acme.db"
    assert identity("C:/Sage/Dossiers/acme.db") == r"file:c:\sage\dossiers\acme.db"
    assert identity(r"\\serveur\Sage\Dossiers\acme.db") == r"file:\\serveur\sage\dossiers\acme.db"
    # another folder or another drive is another file
    assert identity(r"C:\Sage\Archives\acme.db") != identity(r"C:\Sage\Dossiers\acme.db")
    assert identity(r"D:\Sage\Dossiers\acme.db") != identity(r"C:\Sage\Dossiers\acme.db")
    # a POSIX path keeps its case: there, two cases are two files
    assert identity("/srv/Acme.db") != identity("/srv/acme.db")


def test_the_demo_configuration_holds_a_path_with_backslashes(tmp_path: Path) -> None:
    """On Windows every path has backslashes: in a TOML basic string, ``\\D`` would be an
    invalid escape and ``\\b`` a backspace."""
    folder = tmp_path / "Sage\\Dossiers\\bureau"  # one folder, named with backslashes
    folder.mkdir()
    config = load(write_config(folder, "http://127.0.0.1:8765/api/v4"))
    for dossier_id in ("nord", "sud", "ouest"):
        connection = config.dossiers[dossier_id].connection.reveal()
        assert connection.endswith(f"Database={(folder / f'{dossier_id}.db').resolve()}")


def test_a_files_mode_says_who_may_read_it_on_posix_only(tmp_path: Path) -> None:
    # Windows shows 0o666 for every writable file: no file is refused for its mode there
    assert open_to_others(0o100666, "nt") is False
    assert open_to_others(0o100444, "nt") is False
    assert open_to_others(0o100644, "posix") is True
    assert open_to_others(0o100600, "posix") is False
    secret = tmp_path / "ssm-private-key"
    secret.write_text("priv-abcdef\n", encoding="utf-8")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        resolve(f"file:{secret}", "implementation.private_key")
    secret.chmod(0o600)
    assert resolve(f"file:{secret}", "implementation.private_key").reveal() == "priv-abcdef"


def test_a_lease_holders_process_is_looked_up_not_signalled() -> None:
    host = socket.gethostname()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert holder_is_dead(f"{host}:{ended.stdout.strip()}/1") is True
    assert holder_is_dead(f"{host}:{os.getpid()}/1") is False
    # another machine's process is never judged from here
    assert holder_is_dead(f"not-{host}:{ended.stdout.strip()}/1") is False
    # and the process looked up is still there afterwards
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert holder_is_dead(f"{host}:{sleeper.pid}/1") is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_files_saved_by_notepad_are_read_without_their_byte_order_mark(tmp_path: Path) -> None:
    key = tmp_path / "ssm-private-key.txt"
    key.write_bytes(b"\xef\xbb\xbfpriv-abcdef\r\n")  # UTF-8 with BOM, CRLF
    key.chmod(0o600)
    text = WINDOWS_CONFIG.replace('"env:SSM_PRIVATE_KEY"', f"'file:{key}'")
    path = tmp_path / "dossiersync.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    config = load(path)
    assert config.implementation.name == "Cabinet Martin"
    assert config.implementation.settings["private_key"].reveal() == "priv-abcdef"
