"""Every hook the core declares fires, with what its spec promises, for a hook-only
plugin found through the ``dossiersync`` entry-point group (no entity, no endpoint)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from test_plugins import fake_distribution

from dossiersync import hookspecs

from support.workspace import Workspace

RECORDER = """
import json, os
from dossiersync.hookspecs import hookimpl

LOG = os.environ["HOOK_LOG"]

def _log(name, **kwargs):
    with open(LOG, "a", encoding="utf-8") as out:
        out.write(json.dumps({"hook": name, **kwargs}, default=str) + "\\n")

@hookimpl
def dossiersync_register_commands(cli):
    import click

    _log("dossiersync_register_commands", group=cli.name)

    @cli.command("recorder-hello", help="Say hello from a plugin.")
    def hello():
        click.echo("hello from acme-recorder")

@hookimpl
def dossiersync_configure(config):
    _log("dossiersync_configure", implementation=config.implementation.name,
         plugins=sorted(config.plugins))

@hookimpl
def dossiersync_source_identity(endpoint, connection):
    _log("dossiersync_source_identity", endpoint=endpoint)  # the Sage plugin answers

@hookimpl
def dossiersync_connection_secrets(endpoint, connection):
    _log("dossiersync_connection_secrets", endpoint=endpoint)

@hookimpl
def dossiersync_endpoint_settings(endpoint):
    _log("dossiersync_endpoint_settings", endpoint=endpoint)  # the SSM plugin answers

@hookimpl
def dossiersync_dossier_settings(endpoint):
    _log("dossiersync_dossier_settings", endpoint=endpoint)  # the Sage plugin answers

@hookimpl
def dossiersync_mask_secrets(text):
    if "dossiersync_mask_secrets" not in open(LOG, encoding="utf-8").read():
        _log("dossiersync_mask_secrets")  # once: it is called for every message

@hookimpl
def dossiersync_transform_record(dossier, entity, direction, record):
    _log("dossiersync_transform_record", dossier=dossier, entity=entity,
         direction=direction, keys=sorted(record))
    if entity == "clients" and record.get("city"):
        record["city"] = record["city"].upper()

@hookimpl
def dossiersync_dossier_activated(dossier, trigger):
    _log("dossiersync_dossier_activated", dossier=dossier, trigger=trigger)

@hookimpl
def dossiersync_dossier_deactivated(dossier):
    _log("dossiersync_dossier_deactivated", dossier=dossier)

@hookimpl
def dossiersync_run_started(run):
    _log("dossiersync_run_started", dossier=run.dossier_id, entity=run.entity,
         direction=run.direction, outcome=run.outcome)

@hookimpl
def dossiersync_run_finished(run):
    _log("dossiersync_run_finished", dossier=run.dossier_id, entity=run.entity,
         direction=run.direction, outcome=run.outcome, counts=run.counts)

@hookimpl
def dossiersync_incident_opened(dossier, entity, record_key, kind, message):
    _log("dossiersync_incident_opened", dossier=dossier, entity=entity,
         record_key=record_key, kind=kind, message=message)

@hookimpl
def dossiersync_incident_occurred(incident):
    _log("dossiersync_incident_occurred", dossier=incident.dossier_id, entity=incident.entity,
         record_key=incident.record_key, kind=incident.kind, occurrences=incident.occurrences)
"""


def test_every_hookspec_fires_for_a_hook_only_plugin(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "site"
    fake_distribution(
        plugins, "acme-recorder", "[dossiersync]\nrecorder = acme_recorder\n", module=RECORDER
    )
    log = tmp_path / "hooks.jsonl"
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'nope' WHERE CT_Num = 'CL00002'"
    )
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    monkeypatch.setenv("HOOK_LOG", str(log))

    listed = workspace.subprocess("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    recorder = [p for p in json.loads(listed.stdout) if p["name"] == "recorder"]
    assert recorder and recorder[0]["group"] == "dossiersync"
    assert recorder[0]["distribution"] == "acme-recorder"
    assert recorder[0]["hooks"] == sorted(
        n
        for n, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if n.startswith("dossiersync_")
    )

    hello = workspace.subprocess("recorder-hello")
    assert (hello.returncode, hello.stdout) == (0, "hello from acme-recorder\n"), hello.stderr
    assert "recorder-hello" in workspace.subprocess("--help").stdout

    for args in (("dossiers", "activate", "nord"), ("sync",), ("dossiers", "deactivate", "nord")):
        done = workspace.subprocess(*args)
        assert done.returncode in (0, 1), done.stderr

    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    fired = {c["hook"] for c in calls}
    declared = {n for n, _ in inspect.getmembers(hookspecs, inspect.isfunction)}
    assert {n for n in declared if n.startswith("dossiersync_")} <= fired

    by_hook: dict[str, list[dict]] = {}
    for c in calls:
        by_hook.setdefault(c["hook"], []).append(c)
    # told the configuration before any other hook but the command's own set-up and those
    # that help read the configuration (what a connection reaches and holds secret)
    reading = {
        "dossiersync_register_commands",
        "dossiersync_source_identity",
        "dossiersync_connection_secrets",
        "dossiersync_mask_secrets",
        "dossiersync_endpoint_settings",
        "dossiersync_dossier_settings",
    }
    during = [c["hook"] for c in calls if c["hook"] not in reading]
    assert during[0] == "dossiersync_configure"
    assert {c["implementation"] for c in by_hook["dossiersync_configure"]} == {"Groupe de test"}
    assert by_hook["dossiersync_dossier_activated"] == [
        {"hook": "dossiersync_dossier_activated", "dossier": "nord", "trigger": "activation"}
    ]
    assert by_hook["dossiersync_dossier_deactivated"] == [
        {"hook": "dossiersync_dossier_deactivated", "dossier": "nord"}
    ]
    started = [
        (c["entity"], c["direction"], c["outcome"]) for c in by_hook["dossiersync_run_started"]
    ]
    assert started == [("clients", "sage_to_ssm", "running"), ("clients", "ssm_to_sage", "running")]
    finished = {c["direction"]: c for c in by_hook["dossiersync_run_finished"]}
    assert finished["sage_to_ssm"]["outcome"] == "partial"
    assert finished["sage_to_ssm"]["counts"]["created"] == 4
    (incident,) = by_hook["dossiersync_incident_opened"]
    assert (incident["dossier"], incident["entity"], incident["record_key"], incident["kind"]) == (
        "nord",
        "clients",
        "CL00002",
        "invalid_record",
    )
    (occurred,) = by_hook["dossiersync_incident_occurred"]
    assert (occurred["record_key"], occurred["kind"], occurred["occurrences"]) == (
        "CL00002",
        "invalid_record",
        1,
    )
    transforms = by_hook["dossiersync_transform_record"]
    assert {(c["dossier"], c["entity"], c["direction"]) for c in transforms} >= {
        ("nord", "clients", "sage_to_ssm")
    }
    assert all("city" in c["keys"] for c in transforms)
    # what the transform did reached SSM
    cities = {a["extId"]: a.get("city") for a in workspace.accounts("nord")}
    assert cities and all(c is None or c == c.upper() for c in cities.values())


UPPER_CITY = """
from dossiersync.hookspecs import hookimpl

@hookimpl
def dossiersync_transform_record(dossier, entity, direction, record):
    if entity == "clients" and direction == "sage_to_ssm" and record.get("city"):
        record["city"] = record["city"].upper()
"""


def test_a_transform_does_not_turn_an_ssm_edit_into_a_conflict(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Sage row re-read before writing an SSM edit is transformed like every Sage row,
    so it compares equal to what was agreed (not as a change made in Sage meanwhile), and
    the edit is written."""
    plugins = tmp_path / "site"
    fake_distribution(plugins, "acme-upper", "[dossiersync]\nupper = acme_upper\n", UPPER_CITY)
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    workspace.add_dossier("nord", clients=30, seed=1)
    assert workspace.subprocess("dossiers", "activate", "nord").returncode == 0
    assert workspace.subprocess("sync").returncode == 0
    sage = workspace.sage_clients("nord")
    code = next(c for c, row in sage.items() if row["CT_Prospect"] == 1 and row["CT_Ville"])
    prospect = workspace.account(f"nord:{code}")
    assert prospect["city"] == sage[code]["CT_Ville"].upper()

    workspace.ssm_put("accounts", prospect["id"], {"city": "Rodez"})
    done = workspace.subprocess("sync", "--json")
    assert done.returncode == 0, done.stderr
    runs = [r for d in json.loads(done.stdout) for r in d["runs"]]
    back = next(r for r in runs if r["direction"] == "ssm_to_sage")
    assert back["counts"]["updated"] == 1
    assert workspace.sage_clients("nord")[code]["CT_Ville"] == "Rodez"
    run_id = back.get("run_id", back.get("id"))
    events = workspace.cli_json("journal", "--dossier", "nord", "--run", str(run_id))
    assert "conflict" not in {e["action"] for e in events}


FAILURE_LOG = """
import json, os
from dossiersync.plugin import hookimpl

@hookimpl
def dossiersync_run_finished(run):
    with open(os.environ["FAILURE_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps([run.dossier_id, run.entity, run.direction]) + "\\n")
"""


def test_a_dossier_naming_its_hook_only_plugins_tells_only_those(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "site"
    fake_distribution(
        plugins, "acme-failure-log", "[dossiersync]\nfailure-log = acme_failure_log\n", FAILURE_LOG
    )
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    monkeypatch.setenv("FAILURE_LOG", str(log))
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.add_dossier("sud", clients=3, seed=2)
    workspace.add_dossier("ouest", clients=3, seed=3)
    workspace.dossiers["nord"]["plugins"] = ["failure-log"]
    workspace.dossiers["sud"]["plugins"] = []  # none
    workspace.write_config()  # ouest names none: every installed hook-only plugin
    for args in (("dossiers", "activate", "nord", "sud", "ouest"), ("sync",)):
        done = workspace.subprocess(*args)
        assert done.returncode == 0, done.stderr

    told = {tuple(json.loads(line))[0] for line in log.read_text(encoding="utf-8").splitlines()}
    assert told == {"nord", "ouest"}

    workspace.dossiers["sud"]["plugins"] = ["failure-logs"]
    workspace.write_config()
    refused = workspace.subprocess("status")
    assert refused.returncode == 2
    assert "dossiers.sud.plugins: no installed hook-only plugin is named 'failure-logs'" in (
        refused.stderr
    )
    assert "failure-log" in refused.stderr.rsplit("installed:", 1)[1]
