"""dossiersync's test kit: a pytest plugin, loaded by pytest through the ``pytest11``
entry point of the ``dossiersync`` distribution (``-p no:dossiersync`` turns it off).

It gives a plugin's tests what the connector's own tests run on, with real parts only:
a Sage 50FR demo dossier read through the SQLite3 ODBC driver, the Sales Management
simulator as a real HTTP server, a configuration naming both, the CLI, and the check
that the simulator refused nothing the connector sent.

Fixtures:

- ``ssm_simulator``: a fresh simulator (no business data) for one test;
- ``demo_dossier``: ``demo_dossier("nord", clients=30, seed=1, orders=5)`` writes a demo
  dossier file and returns its path;
- ``dossiersync_workspace``: a :class:`Workspace` (dossiers, configuration, state, the
  CLI, ways to look at SSM) on ``ssm_simulator``; when the test ends, the simulator must
  have refused no request, unless the test is marked ``ssm_refusals``;
- ``sync_runner``: ``sync_runner("--full")`` runs ``dossiersync sync --json`` on the
  workspace in a new process, as a user does (an installed plugin's entry points read
  afresh), and returns its answer;
- ``cli_speaks``: ``cli_speaks("fr")`` has the command line speak French for the rest
  of the test (in its process and the ones it starts).

The command line speaks English in the tests whatever the machine's locale (``LANGUAGE``
is set to ``en`` when pytest starts), so that what they read of it is the same
everywhere; the ini option ``dossiersync_language`` says otherwise for a whole suite
(``fr``, or ``locale``: the machine's locale variables as they are).

Nothing here is imported before a fixture is used, but pytest: every pytest run of an
environment where dossiersync is installed loads this module.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    from click.testing import Result

    from .plugins.sales_management.simulator.process import SimulatorProcess

__all__ = ["SAGE_NOW", "Workspace", "assert_no_refusals", "totals", "write_demo_dossier"]

REFUSALS_MARKER = "ssm_refusals"
#: the ini option naming the command line's language in the tests (``en`` by default)
LANGUAGE_OPTION = "dossiersync_language"
#: a Sage write's modification time, from SQLite's clock (``YYYY-MM-DD hh:mm:ss.fff``)
SAGE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        LANGUAGE_OPTION,
        "the language dossiersync's command line speaks in the tests: en (the default), "
        "fr, or locale (the machine's locale variables decide)",
        default="en",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{REFUSALS_MARKER}: the test makes the SSM simulator refuse requests on purpose",
    )
    # LANGUAGE is the first locale variable the command line reads: a French machine
    # would otherwise translate what a plugin's tests read of it
    language = str(config.getini(LANGUAGE_OPTION) or "en").strip()
    if language != "locale":
        if language not in ("en", "fr"):
            raise pytest.UsageError(f"{LANGUAGE_OPTION}: en, fr or locale, not {language!r}")
        os.environ["LANGUAGE"] = language


# -- the parts ---------------------------------------------------------------------------


def write_demo_dossier(path: Path, **options: Any) -> Any:
    """A Sage 50FR demo dossier at ``path`` (SQLite, in the reference layout unless
    ``layout`` says another): French data, the same for the same ``seed``; ``clients``,
    ``contacts``, ``products``, ``orders`` as ``dossiersync demo-dossier`` takes them.
    Returns what was written, counted."""
    from .plugins.sage50fr_odbc.demo_dossier import write_demo_dossier as write

    return write(path, **options)


def assert_no_refusals(simulator: SimulatorProcess) -> None:
    """The simulator refused nothing it was sent (it counts each refusal and its reason,
    ``GET /_simulator/stats``): whatever the connector sends is what the API documents."""
    stats = simulator.stats()
    assert stats["refusals"] == 0, f"the simulator refused requests: {stats['reasons']}"


def totals(
    runs: list[dict[str, Any]], direction: str = "sage_to_ssm", entity: str | None = None
) -> Counter[str]:
    """The counts of a ``sync --json`` answer's runs in ``direction`` (of ``entity`` only,
    when given), added up."""
    out: Counter[str] = Counter()
    for dossier in runs:
        for run in dossier["runs"]:
            if run["direction"] == direction and entity in (None, run["entity"]):
                out.update(run["counts"])
    return out


class Workspace:
    """Dossiers, configuration and state of one test, plus ways to look at SSM."""

    def __init__(self, root: Path, simulator: SimulatorProcess) -> None:
        self.root = root
        self.simulator = simulator
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.state_url = f"sqlite:///{root / 'state.db'}"
        self.extra_config = ""
        self.sync_settings: dict[str, float] = {"batch_size": 50}
        self._http: httpx.Client | None = None

    # -- set-up ----------------------------------------------------------------------

    def add_dossier(
        self,
        dossier_id: str,
        *,
        clients: int = 30,
        seed: int = 0,
        branch_id: int | None = None,
        entities: tuple[str, ...] = ("clients",),
        layout: str = "reference",
        **counts: int,
    ) -> Path:
        """A demo dossier in a built-in ``layout``; ``counts`` are the generator's
        (contacts, products, orders)."""
        path = self.root / f"{dossier_id}.db"
        write_demo_dossier(path, clients=clients, seed=seed, layout=layout, **counts)
        self.dossiers[dossier_id] = {
            "path": path,
            "branch_id": branch_id,
            "entities": entities,
            "layout": layout,
        }
        self.write_config()
        return path

    @property
    def config_path(self) -> Path:
        return self.root / "dossiersync.toml"

    def write_config(self) -> None:
        lines = [
            "[implementation]",
            'name = "Groupe de test"',
            f'api_url = "{self.simulator.url}"',
            'public_key = "env:SSM_PUBLIC_KEY"',
            'private_key = "env:SSM_PRIVATE_KEY"',
            "max_requests_per_second = 0",
            "max_retries = 3",
            "[state]",
            f'url = "{self.state_url}"',
            "[sync]",
            *(f"{k} = {v}" for k, v in self.sync_settings.items()),
        ]
        for dossier_id, d in self.dossiers.items():
            lines += [
                f"[dossiers.{dossier_id}]",
                f'name = "Dossier {dossier_id}"',
                f'connection = "DRIVER={{SQLite3}};Database={d["path"]}"',
                "entities = [" + ", ".join(f'"{e}"' for e in d["entities"]) + "]",
            ]
            if d["branch_id"] is not None:
                lines.append(f"branch_id = {d['branch_id']}")
            if d.get("layout", "reference") != "reference":
                lines.append(f'mapping = "{d["layout"]}"')
            if d.get("plugins") is not None:
                lines.append("plugins = [" + ", ".join(f'"{p}"' for p in d["plugins"]) + "]")
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra_config, encoding="utf-8")

    # -- running the CLI ---------------------------------------------------------------

    def cli(self, *args: str, expect: int | None = 0) -> Result:
        """The command in this process (its plugins are those installed when it started)."""
        from click.testing import CliRunner

        from .cli import cli

        result = CliRunner().invoke(
            cli, ["--config", str(self.config_path), *args], catch_exceptions=False
        )
        if expect is not None:
            assert result.exit_code == expect, result.output
        return result

    def cli_json(self, *args: str, expect: int | None = 0) -> Any:
        return json.loads(self.cli(*args, "--json", expect=expect).stdout)

    def subprocess(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """The real command in a new process (as a user would run it)."""
        return subprocess.run(
            [sys.executable, "-m", "dossiersync.cli", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=600,
            **kwargs,
        )

    def activate_all(self) -> None:
        self.cli("dossiers", "activate", *self.dossiers)

    def sync(self, *args: str, expect: int | None = 0) -> list[dict[str, Any]]:
        """``sync --json`` in this process."""
        data: list[dict[str, Any]] = self.cli_json("sync", *args, expect=expect)
        return data

    def sync_in_new_process(self, *args: str, expect: int = 0) -> list[dict[str, Any]]:
        """``sync --json`` in a new process, as a user runs it."""
        done = self.subprocess("sync", "--json", *args)
        assert done.returncode == expect, done.stdout + done.stderr
        result: list[dict[str, Any]] = json.loads(done.stdout)
        return result

    # -- Sage side ---------------------------------------------------------------------

    def sage(self, dossier_id: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.dossiers[dossier_id]["path"])
        conn.row_factory = sqlite3.Row
        return conn

    def sage_rows(self, dossier_id: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.sage(dossier_id) as conn:
            return conn.execute(sql, params).fetchall()

    def sage_clients(self, dossier_id: str) -> dict[str, sqlite3.Row]:
        with self.sage(dossier_id) as conn:
            rows = conn.execute("SELECT * FROM F_COMPTET WHERE CT_Type = 0").fetchall()
        return {r["CT_Num"]: r for r in rows}

    def sage_execute(self, dossier_id: str, sql: str, params: tuple[Any, ...] = ()) -> None:
        conn = self.sage(dossier_id)
        with conn:
            conn.execute(sql, params)
        conn.close()

    def sage_insert(self, dossier_id: str, table: str, row: dict[str, Any]) -> None:
        """One row written as Sage writes it: its modification time from SQLite's clock
        (money as text: ``"12.5"``)."""
        names = ", ".join([*row, "cbModification"])
        marks = ", ".join(["?"] * len(row) + [SAGE_NOW])
        # the table and column names are the test's own, never data
        self.sage_execute(
            dossier_id,
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608
            tuple(row.values()),
        )

    # -- SSM side ----------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            import httpx

            client = httpx.Client(base_url=self.simulator.url, timeout=30)
            token = client.post(
                "/login",
                json={
                    "username": self.simulator.public_key,
                    "password": self.simulator.private_key,
                },
            ).json()["token"]
            client.headers["X-Session-Key"] = token
            self._http = client
        return self._http

    def ssm_list(self, resource: str, where: str | None = None) -> list[dict[str, Any]]:
        """Every record matching ``where`` (deleted ones included, as the API lists them)."""
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            params: dict[str, Any] = {"page": page}
            if where:
                params["where"] = where
            headers = {"X-FM-Entity-Count": "500"}
            response = self.http.get(f"/{resource}", params=params, headers=headers)
            response.raise_for_status()
            records = response.json()
            if not records:  # the end of a list is not documented: read to an empty page
                return out
            out.extend(records)
            page += 1

    def records(
        self, resource: str, dossier_id: str | None = None, deleted: bool = False
    ) -> list[dict[str, Any]]:
        """The live (or with ``deleted``, the deleted) records, of one dossier or all."""
        where = f"extId LIKE '{dossier_id}:%'" if dossier_id else None
        return [r for r in self.ssm_list(resource, where) if bool(r.get("deleted")) == deleted]

    def simulator_stats(self) -> dict[str, Any]:
        """Requests and refusals the simulator counted (``GET /_simulator/stats``)."""
        return self.simulator.stats()

    def accounts(
        self, dossier_id: str | None = None, deleted: bool = False
    ) -> list[dict[str, Any]]:
        return self.records("accounts", dossier_id, deleted)

    def record(self, resource: str, ext_id: str) -> dict[str, Any]:
        found = [r for r in self.ssm_list(resource, f"extId = '{ext_id}'") if not r["deleted"]]
        assert len(found) == 1, found
        return found[0]

    def account(self, ext_id: str) -> dict[str, Any]:
        return self.record("accounts", ext_id)

    def ssm_put(self, resource: str, record_id: int, body: dict[str, Any]) -> None:
        self.http.put(f"/{resource}/{record_id}", json=body).raise_for_status()

    def ssm_post(self, resource: str, body: dict[str, Any]) -> int:
        response = self.http.post(f"/{resource}", json=body)
        response.raise_for_status()
        return int(response.json()["id"])

    def ssm_delete(self, resource: str, record_id: int) -> None:
        self.http.delete(f"/{resource}/{record_id}").raise_for_status()


# -- the fixtures --------------------------------------------------------------------------


@pytest.fixture
def ssm_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """A fresh Sales Management simulator (empty business data) for one test: ``url``,
    ``public_key``, ``private_key``, ``stats()``."""
    from .plugins.sales_management.simulator.process import running_simulator

    db = tmp_path_factory.mktemp("ssm") / "ssm.sqlite"
    with running_simulator(str(db)) as sim:
        yield sim


@pytest.fixture
def demo_dossier(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``demo_dossier(name, clients=30, seed=0, **counts)``: a demo dossier file written
    for the test (see :func:`write_demo_dossier`), its path."""
    folder = tmp_path_factory.mktemp("dossiers")

    def write(name: str = "nord", *, clients: int = 30, seed: int = 0, **options: Any) -> Path:
        path = folder / f"{name}.db"
        write_demo_dossier(path, clients=clients, seed=seed, **options)
        return path

    return write


@pytest.fixture
def dossiersync_workspace(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ssm_simulator: SimulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Workspace]:
    """A :class:`Workspace` on ``ssm_simulator``; afterwards, the simulator must have
    refused nothing the connector sent (a test that provokes refusals on purpose is
    marked ``ssm_refusals``)."""
    monkeypatch.setenv("SSM_PUBLIC_KEY", ssm_simulator.public_key)
    monkeypatch.setenv("SSM_PRIVATE_KEY", ssm_simulator.private_key)
    workspace = Workspace(tmp_path, ssm_simulator)
    yield workspace
    if request.node.get_closest_marker(REFUSALS_MARKER) is None:
        assert_no_refusals(ssm_simulator)


@pytest.fixture
def cli_speaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """``cli_speaks("fr")``: the command line speaks ``fr`` (or ``en``) for the rest of
    the test, in the test's process (``Workspace.cli``) and in the processes it starts
    (``Workspace.subprocess``, ``sync_runner``); as the suite's language after it."""
    from . import lang

    before = os.environ.get("LANGUAGE")

    def speak(language: str) -> None:
        if language not in lang.LANGUAGES:
            raise ValueError(f"the command line speaks {', '.join(lang.LANGUAGES)}")
        monkeypatch.setenv("LANGUAGE", language)
        lang.choose(language)

    yield speak
    restored = dict(os.environ)
    restored.pop("LANGUAGE", None)
    if before is not None:
        restored["LANGUAGE"] = before
    lang.choose(lang.from_environment(restored))


@pytest.fixture
def sync_runner(dossiersync_workspace: Workspace) -> Callable[..., list[dict[str, Any]]]:
    """``sync_runner(*args, expect=0)``: ``dossiersync sync --json *args`` on the
    workspace, in a new process; its answer, once its exit status is ``expect``."""
    return dossiersync_workspace.sync_in_new_process
