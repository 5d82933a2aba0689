"""Secrets outside ``PWD=``: a state URL's password, an API URL's user and password, a
braced ODBC password holding ``}}`` — never printed, never journaled
(docs/security.md)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dossiersync.plugins.sage50fr_odbc.connection import mask_connection
from dossiersync.secrets import mask_urls, scrub

from support.workspace import Workspace


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_braced_odbc_password_is_masked_whole() -> None:
    assert mask_connection("DRIVER=x;PWD={a}}b;c};UID=u") == "DRIVER=x;PWD=***;UID=u"
    assert mask_connection("Password={p;w}};x}") == "Password=***"
    assert scrub("cannot open DSN=x;PWD={a}}b;c}: refused", []) == (
        "cannot open DSN=x;PWD=***: refused"
    )


def test_urls_lose_their_user_password_and_secret_query_values() -> None:
    said = mask_urls(
        "GET http://ssm-user:pa55@127.0.0.1:9/api/v4/accounts failed; state "
        "postgresql+psycopg://ds@db/s?password=X1y2&sslmode=require&token=T0k"
    )
    for secret in ("ssm-user", "pa55", "ds@", "X1y2", "T0k"):
        assert secret not in said
    assert "http://***@127.0.0.1:9/api/v4/accounts" in said and "sslmode=require" in said


def test_a_state_url_password_is_never_printed(tmp_path: Path) -> None:
    config = tmp_path / "dossiersync.toml"
    config.write_text(
        "[implementation]\n"
        'name = "A"\napi_url = "http://127.0.0.1:9/api/v4"\n'
        'public_key = "p"\nprivate_key = "q"\n'
        "[state]\n"
        f'url = "postgresql+psycopg://dsuser@127.0.0.1:{closed_port()}/db?password=S3cretPW"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(config), "status"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot open the state store" in done.stderr
    assert "S3cretPW" not in done.stderr + done.stdout
    assert "dsuser" not in done.stderr + done.stdout


@pytest.mark.ssm_refusals
def test_an_api_url_with_credentials_is_printed_and_journaled_without_them(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.activate_all()
    text = workspace.config_path.read_text(encoding="utf-8")
    hidden = f"http://ssm-user:pa55word@127.0.0.1:{closed_port()}/api/v4"
    text = text.replace(workspace.simulator.url, hidden)
    workspace.config_path.write_text(text, encoding="utf-8")
    done = workspace.subprocess("sync")
    assert done.returncode == 1
    said = done.stdout + done.stderr
    assert "127.0.0.1" in said, said
    journal = workspace.cli("journal", "--dossier", "nord", "--json").stdout
    incidents = workspace.cli("incidents", "--json").stdout
    for text in (said, journal, incidents):
        assert "pa55word" not in text and "ssm-user" not in text
