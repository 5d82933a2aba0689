"""An SSM endpoint's settings are its plugin's: declared as a JSON Schema
(``dossiersync_endpoint_settings``), validated with the rest of the configuration when it
is read, and handed to the endpoint, which makes itself from them (``from_settings``).
The built-in Sales Management endpoint declares its own the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_plugins import fake_distribution

ACME = """
from dossiersync.plugin import hookimpl

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tenant", "token"],
    "properties": {
        "tenant": {"type": "string", "pattern": "^[a-z]+$"},
        "token": {"type": "string", "minLength": 8, "secret": True},
    },
}


@hookimpl
def dossiersync_endpoint_settings(endpoint):
    return SCHEMA if endpoint == "acme_ssm" else None


class Endpoint:
    def __init__(self, tenant, token):
        self.tenant, self.token = tenant, token

    @classmethod
    def from_settings(cls, implementation, max_retries=None):
        settings = implementation.settings
        return cls(settings["tenant"], settings["token"].reveal())

    def close(self):
        pass
"""

PROBE = """
import json, sys
from dossiersync.config import load
from dossiersync.runner import ssm_client
config = load(sys.argv[1])
client = ssm_client(config)
print(json.dumps([client.tenant, client.token, repr(config.implementation.settings["token"])]))
"""


def configuration(tmp_path: Path, implementation: str) -> Path:
    path = tmp_path / "dossiersync.toml"
    path.write_text(
        f'[implementation]\nname = "Acme"\n{implementation}\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    return path


def run(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    fake_distribution(
        tmp_path / "site",
        "acme-ssm",
        "[dossiersync.endpoints]\nacme_ssm = acme_ssm:Endpoint\n"
        "[dossiersync]\nacme_ssm = acme_ssm\n",
        ACME,
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "ACME_TOKEN": "t0ken-acme-42"}
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, env=env
    )


def test_a_third_party_endpoint_is_made_from_the_settings_its_plugin_declares(
    tmp_path: Path,
) -> None:
    config = configuration(
        tmp_path, 'endpoint = "acme_ssm"\ntenant = "nord"\ntoken = "env:ACME_TOKEN"'
    )
    done = run(tmp_path, config)
    assert done.returncode == 0, done.stderr
    tenant, token, shown = json.loads(done.stdout)
    assert (tenant, token) == ("nord", "t0ken-acme-42")
    assert "t0ken" not in shown  # a setting declared secret is held as a Secret


def test_its_settings_are_checked_with_the_rest_of_the_configuration(tmp_path: Path) -> None:
    config = configuration(
        tmp_path,
        'endpoint = "acme_ssm"\ntenant = "Nord!"\ntoken = "short"\napi_url = "http://x"',
    )
    done = run(tmp_path, config)
    assert done.returncode != 0
    for problem in (
        "$.implementation.tenant: 'Nord!' does not match",
        "$.implementation.token: invalid value (minLength)",
        "$.implementation: Additional properties are not allowed ('api_url' was unexpected)",
    ):
        assert problem in done.stderr, done.stderr
    assert "short" not in done.stderr  # a secret's value is never quoted


def test_the_built_in_endpoint_declares_its_settings_the_same_way(tmp_path: Path) -> None:
    config = configuration(tmp_path, 'api_url = "ftp://ssm"\npublic_key = "p"\nmax_retries = -1')
    done = run(tmp_path, config)
    assert done.returncode != 0
    for problem in (
        "$.implementation: 'private_key' is a required property",
        "$.implementation.api_url: 'ftp://ssm' does not match '^https?://'",
        "$.implementation.max_retries: -1 is less than the minimum of 0",
    ):
        assert problem in done.stderr, done.stderr


# A dossier's Sage-side settings are its endpoint's too: declared by its plugin
# (``dossiersync_dossier_settings``), checked with the rest, kept as DossierConfig.settings.

SSM = 'api_url = "http://ssm"\npublic_key = "p"\nprivate_key = "k"\n'

ACME_ERP = """
from dossiersync.plugin import hookimpl

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["company"],
    "properties": {
        "company": {"type": "string", "pattern": "^[A-Z]+$"},
        "password": {"type": "string", "minLength": 8, "secret": True},
    },
}


@hookimpl
def dossiersync_dossier_settings(endpoint):
    return SCHEMA if endpoint == "acme_erp" else None


class Endpoint:
    pass
"""

LOAD = """
import json, sys
from dossiersync.config import load
config = load(sys.argv[1])
print(json.dumps({
    d.id: {k: repr(v) if k == "password" else v for k, v in d.settings.items()}
    | {"secret": d.settings["password"].reveal()}
    for d in config.dossiers.values()
}))
"""


def load_with_acme_erp(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    fake_distribution(
        tmp_path / "site",
        "acme-erp",
        "[dossiersync.endpoints]\nacme_erp = acme_erp:Endpoint\n"
        "[dossiersync]\nacme_erp = acme_erp\n",
        ACME_ERP,
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "ERP_PASSWORD": "s3cret-erp-7"}
    return subprocess.run(
        [sys.executable, "-c", LOAD, str(config)], capture_output=True, text=True, env=env
    )


def test_a_third_party_sage_side_endpoint_declares_its_dossier_keys(tmp_path: Path) -> None:
    config = configuration(
        tmp_path,
        SSM + '[dossiers.nord]\nendpoint = "acme_erp"\ncompany = "NORD"\n'
        'password = "env:ERP_PASSWORD"\nentities = []\n'
        # no connection: two such dossiers share no Sage source
        '[dossiers.sud]\nendpoint = "acme_erp"\ncompany = "SUD"\n'
        'password = "env:ERP_PASSWORD"\nentities = []\n',
    )
    done = load_with_acme_erp(tmp_path, config)
    assert done.returncode == 0, done.stderr
    nord = json.loads(done.stdout)["nord"]
    assert nord["company"] == "NORD" and nord["secret"] == "s3cret-erp-7"
    assert "s3cret" not in nord["password"]  # a key declared secret is held as a Secret
    assert json.loads(done.stdout)["sud"]["company"] == "SUD"


def test_a_dossiers_keys_are_checked_against_its_endpoints_schema(tmp_path: Path) -> None:
    config = configuration(
        tmp_path,
        SSM + '[dossiers.nord]\nendpoint = "acme_erp"\ncompany = "Nord"\npassword = "short"\n'
        'connection = "DSN=x"\n'
        '[dossiers.sage]\nconnection = ""\nmapings = "v2"\n'
        '[dossiers.sud]\nmapping = "v2"\n',
    )
    done = load_with_acme_erp(tmp_path, config)
    assert done.returncode != 0
    for problem in (
        "$.dossiers.nord.company: 'Nord' does not match '^[A-Z]+$'",
        "$.dossiers.nord.password: invalid value (minLength)",
        "$.dossiers.nord: Additional properties are not allowed ('connection' was unexpected)",
        # the built-in Sage 50FR endpoint declares connection and mapping the same way
        "$.dossiers.sage.connection: invalid value (minLength)",
        "$.dossiers.sage: Additional properties are not allowed ('mapings' was unexpected)",
        "$.dossiers.sud: 'connection' is a required property",
    ):
        assert problem in done.stderr, done.stderr
    assert "short" not in done.stderr  # a secret's value is never quoted
