"""A throw-away PostgreSQL server for tests: initdb in a temporary folder, gone on exit.

The server listens on 127.0.0.1 on a free port and on a Unix socket inside its folder.
The superuser ``postgres`` has no password (trust); the role ``dossiersync`` has a random
password that the server really checks (scram-sha-256), so connection strings carry a
real secret.  initdb refuses to run as root: when the tests run as root the folder is
owned by the ``postgres`` system user and the binaries run as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SYSTEM_USER = "postgres"
_SUPERUSER = "postgres"
_ROLE = "dossiersync"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine, or the server would not start."""


def find_bin_dir() -> Path:
    """The newest PostgreSQL ``bin`` folder holding ``initdb`` and ``pg_ctl``."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates += glob.glob("/usr/pgsql-*/bin/initdb")
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(on_path)

    def version(path: str) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", path)
        return tuple(int(n) for n in numbers) or (0,)

    for initdb in sorted(candidates, key=version, reverse=True):
        folder = Path(initdb).parent
        if (folder / "pg_ctl").exists():
            return folder
    raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A running throw-away server and the ways to reach it."""

    host: str
    port: int
    user: str
    password: str
    socket_dir: Path

    def _admin_connection(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=_SUPERUSER,
            dbname=dbname,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database owned by :attr:`user`; returns its name."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self._admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        return name

    def execute(self, database: str, sql: str) -> None:
        """Run one statement as the superuser in ``database`` (test set-up and clean-up)."""
        with self._admin_connection(database) as conn:
            conn.execute(sql)

    def sqlalchemy_url(self, database: str) -> str:
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def odbc_connection_string(self, database: str) -> str:
        return (
            "DRIVER={PostgreSQL Unicode};"
            f"SERVER={self.host};PORT={self.port};DATABASE={database};"
            f"UID={self.user};PWD={self.password}"
        )


def _runner() -> tuple[list[str], int | None, int | None]:
    """Command prefix and owner (uid, gid) for the server files."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam(_SYSTEM_USER)
    except KeyError as exc:
        raise PostgresUnavailable(f"running as root but no {_SYSTEM_USER!r} user") from exc
    runuser = shutil.which("runuser")
    if runuser:
        prefix = [runuser, "-u", _SYSTEM_USER, "--"]
    else:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise PostgresUnavailable("running as root and neither runuser nor setpriv found")
        prefix = [
            setpriv,
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--init-groups",
        ]
    return prefix, entry.pw_uid, entry.pw_gid


def _run(prefix: Sequence[str], args: Sequence[str]) -> None:
    result = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False, cwd="/")
    if result.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
        )


_HBA = """\
local all all trust
host all {superuser} 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@contextmanager
def throwaway_postgres() -> Iterator[PgServer]:
    """Start a fresh server, yield it, then stop it and delete every file it wrote."""
    bin_dir = find_bin_dir()
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="dossiersync-pg-"))
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    data = root / "data"
    sockets = root / "sockets"
    log = root / "server.log"
    started = False
    try:
        _run(
            prefix,
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                _SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
        )
        (data / "pg_hba.conf").write_text(_HBA.format(superuser=_SUPERUSER))
        sockets.mkdir()
        if uid is not None and gid is not None:
            os.chown(sockets, uid, gid)
        port = 0
        for _attempt in range(5):
            port = _free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories={sockets}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=40",
                ]
            )
            try:
                _run(
                    prefix,
                    [
                        str(bin_dir / "pg_ctl"),
                        "start",
                        "--pgdata",
                        str(data),
                        "--log",
                        str(log),
                        "--wait",
                        "--timeout",
                        "30",
                        "-o",
                        options,
                    ],
                )
            except PostgresUnavailable:
                time.sleep(0.1)
                continue
            started = True
            break
        if not started:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"the server did not start:\n{tail}")
        server = PgServer(
            host="127.0.0.1",
            port=port,
            user=_ROLE,
            password=secrets.token_urlsafe(18),
            socket_dir=sockets,
        )
        with server._admin_connection() as conn:
            conn.execute(f"CREATE ROLE \"{_ROLE}\" LOGIN CREATEDB PASSWORD '{server.password}'")
        yield server
    finally:
        if started:
            subprocess.run(
                [
                    *prefix,
                    str(bin_dir / "pg_ctl"),
                    "stop",
                    "--pgdata",
                    str(data),
                    "-m",
                    "immediate",
                ],
                capture_output=True,
                check=False,
                cwd="/",
            )
        shutil.rmtree(root, ignore_errors=True)
