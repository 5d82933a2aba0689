"""The example hook-only plugin, ``docs/examples/dossiersync-alerts``, found through its
entry point and run end to end.

The distribution is laid on ``PYTHONPATH`` as pip would leave it (its ``.dist-info`` with
the entry points of its ``pyproject.toml``, and the package from the example's own
folder), so every command run in a new process finds it, and the test process does not.
Real parts only: a reference dossier through the SQLite3 ODBC driver, the SSM simulator
and its workspace (dossiersync's test kit, ``dossiersync.testing``), a webhook endpoint
and an SMTP server (aiosmtpd) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dossiersync.testing import Workspace

from support.receivers import Mailbox, Webhook, smtp_receiver, webhook_receiver

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "dossiersync-alerts"
SMTP_USER = "alerts@groupe-test.fr"
SMTP_PASSWORD = "smtp-pw-7f3a9c1e"  # noqa: S105 - a test value
HOOK_TOKEN = "T0KEN-b81d5e2f"  # noqa: S105 - a webhook URL carries its secret

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def alerts_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example distribution on PYTHONPATH, with the entry points it declares."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = tmp_path / "site"
    info = site / f"dossiersync_alerts-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, points in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(EXAMPLE)]))


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as received:
        yield received


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_receiver(SMTP_USER, SMTP_PASSWORD) as received:
        yield received


def configure_alerts(
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    mailbox: Mailbox,
    **thresholds: int,
) -> None:
    monkeypatch.setenv("ALERTS_WEBHOOK_URL", f"{webhook.url}/hooks/{HOOK_TOKEN}")
    monkeypatch.setenv("ALERTS_SMTP_PASSWORD", SMTP_PASSWORD)
    workspace.extra_config = "\n".join(
        [
            "[plugins.alerts]",
            *(f"{name} = {value}" for name, value in thresholds.items()),
            'webhook_url = "env:ALERTS_WEBHOOK_URL"',
            'smtp_host = "127.0.0.1"',
            f"smtp_port = {mailbox.port}",
            f'smtp_username = "{SMTP_USER}"',
            'smtp_password = "env:ALERTS_SMTP_PASSWORD"',
            'mail_from = "dossiersync@groupe-test.fr"',
            'mail_to = ["it@groupe-test.fr", "compta@groupe-test.fr"]',
            "",
        ]
    )
    workspace.write_config()


class Outputs:
    """Everything the commands printed (stdout, stderr with the logs)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.text: list[str] = []

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.workspace.subprocess("-v", *args)
        self.text += [done.stdout, done.stderr]
        assert done.returncode in (0, 1), done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def sync(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.run("sync", "--json").stdout)
        return data


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SMTP_PASSWORD not in text
        assert HOOK_TOKEN not in text


@pytest.mark.usefixtures("alerts_plugin")
def test_an_incident_seen_n_times_alerts_once_per_episode_by_webhook_and_mail(
    dossiersync_workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    mailbox: Mailbox,
) -> None:
    workspace = dossiersync_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    configure_alerts(workspace, monkeypatch, webhook, mailbox, after_occurrences=3)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'nope' WHERE CT_Num = 'CL00002'"
    )
    out = Outputs(workspace)
    listed = json.loads(out.run("plugins", "--json").stdout)
    (alerts,) = [p for p in listed if p["name"] == "alerts"]
    assert (alerts["group"], alerts["distribution"], alerts["error"]) == (
        "dossiersync",
        "dossiersync-alerts",
        None,
    )
    out.run("dossiers", "activate", "nord")

    out.sync()
    out.sync()
    assert webhook.posts == [] and mailbox.messages == []  # seen twice: not yet

    out.sync()
    ((path, post),) = webhook.posts
    assert path == f"/hooks/{HOOK_TOKEN}"
    assert {k: post[k] for k in ("implementation", "dossier", "entity", "record_key")} == {
        "implementation": "Groupe de test",
        "dossier": "nord",
        "entity": "clients",
        "record_key": "CL00002",
    }
    assert (post["kind"], post["occurrences"], post["direction"]) == (
        "invalid_record",
        3,
        "sage_to_ssm",
    )
    assert post["message"].startswith("Dossier nord, client CL00002: e-mail address is not valid")
    for words in ("Groupe de test", "nord", "CL00002", "invalid_record", "3", post["message"]):
        assert words in post["text"]
    assert "http" not in post["text"]  # links nowhere

    (mail,) = mailbox.messages
    assert mailbox.envelopes == [
        ("dossiersync@groupe-test.fr", ["it@groupe-test.fr", "compta@groupe-test.fr"])
    ]
    assert mailbox.logins == [(SMTP_USER, SMTP_PASSWORD)]  # the password reached the server
    assert mail["Subject"] == (
        "dossiersync: Groupe de test, dossier nord: invalid_record seen 3 times (clients CL00002)"
    )
    body = mail.get_content()
    for line in ("Implementation: Groupe de test", "Record:         CL00002", "Occurrences:    3"):
        assert line in body
    assert post["message"] in body

    out.sync()
    out.sync()
    assert len(webhook.posts) == 1 and len(mailbox.messages) == 1  # never twice

    # fixed, the incident resolves; broken again, it is a new episode: alerted after 3 again
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'contact@nord.fr', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'",
    )
    out.sync()
    assert json.loads(out.run("incidents", "--open", "--json").stdout) == []
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'still wrong', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'",
    )
    out.sync()
    out.sync()
    assert len(webhook.posts) == 1
    out.sync()
    assert len(webhook.posts) == 2 and len(mailbox.messages) == 2
    again = webhook.posts[1][1]
    assert (again["occurrences"], again["record_key"]) == (3, "CL00002")
    assert again["incident_id"] != post["incident_id"]
    assert "'still wrong'" in again["message"]

    # the secrets: sent where they belong, shown nowhere
    out.run("incidents", "--json")
    out.run("status", "--json")
    assert any("alert sent" in text for text in out.text)  # the logs were read
    assert_no_secret(*out.text, json.dumps([body for _, body in webhook.posts]))
    assert_no_secret(*(m.as_string() for m in mailbox.messages))


@pytest.mark.usefixtures("alerts_plugin")
def test_a_pass_failing_n_runs_in_a_row_alerts_once_per_streak(
    dossiersync_workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    mailbox: Mailbox,
) -> None:
    workspace = dossiersync_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    # the incident rule is on too: a failed run must not alert a second time through it
    configure_alerts(
        workspace, monkeypatch, webhook, mailbox, after_failed_runs=2, after_occurrences=2
    )
    out = Outputs(workspace)
    out.run("dossiers", "activate", "nord")
    out.sync()
    workspace.sage_execute("nord", "ALTER TABLE F_COMPTET RENAME TO F_COMPTET_gone")

    def failing() -> set[tuple[str, str]]:
        runs = out.sync()[0]["runs"]
        return {(r["entity"], r["direction"]) for r in runs if r["outcome"] == "failed"}

    failed = failing()
    assert ("clients", "sage_to_ssm") in failed
    assert webhook.posts == [] and mailbox.messages == []
    assert failing() == failed
    assert sorted((p["entity"], p["direction"]) for _, p in webhook.posts) == sorted(failed)
    assert len(mailbox.messages) == len(failed)
    post = next(p for _, p in webhook.posts if p["direction"] == "sage_to_ssm")
    assert (post["alert"], post["kind"], post["occurrences"], post["dossier"]) == (
        "failed_runs",
        "run_failed",
        2,
        "nord",
    )
    assert "F_COMPTET" in post["message"]
    assert "failed 2 runs in a row" in post["text"]

    failing()
    failing()
    assert len(webhook.posts) == len(failed)  # the same streak: no second alert

    # a run that gets through ends the streak; failing again, a new one alerts after 2
    workspace.sage_execute("nord", "ALTER TABLE F_COMPTET_gone RENAME TO F_COMPTET")
    assert all(r["outcome"] != "failed" for r in out.sync()[0]["runs"])
    workspace.sage_execute("nord", "ALTER TABLE F_COMPTET RENAME TO F_COMPTET_gone")
    failing()
    assert len(webhook.posts) == len(failed)
    failing()
    assert len(webhook.posts) == 2 * len(failed)
    assert_no_secret(*out.text, json.dumps([body for _, body in webhook.posts]))


@pytest.mark.usefixtures("alerts_plugin")
def test_a_table_the_plugin_refuses_is_a_configuration_error_without_its_secrets(
    dossiersync_workspace: Workspace,
) -> None:
    workspace = dossiersync_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    workspace.extra_config = (
        "[plugins.alerts]\n"
        'smtp_host = "127.0.0.1"\n'
        f'smtp_password = "{SMTP_PASSWORD}"\n'
        "after_occurrences = -1\n"
        f'webhook_url = "ftp://{HOOK_TOKEN}"\n'
    )
    workspace.write_config()

    done = workspace.subprocess("status")

    assert done.returncode != 0
    for problem in (
        "plugins.alerts.after_occurrences: -1 is less than the minimum of 0",
        "plugins.alerts.webhook_url: invalid value (pattern)",
        "plugins.alerts: 'mail_from' is a dependency of 'smtp_host'",
        "plugins.alerts: 'smtp_username' is a dependency of 'smtp_password'",
    ):
        assert problem in done.stderr, done.stderr
    assert_no_secret(done.stdout, done.stderr)


@pytest.mark.usefixtures("alerts_plugin")
def test_a_channel_that_fails_is_a_warning_and_the_other_still_alerts(
    dossiersync_workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    mailbox: Mailbox,
) -> None:
    workspace = dossiersync_workspace
    workspace.add_dossier("nord", clients=5, seed=1)
    configure_alerts(workspace, monkeypatch, webhook, mailbox, after_occurrences=1)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'nope' WHERE CT_Num = 'CL00002'"
    )
    webhook.status = 500
    out = Outputs(workspace)
    out.run("dossiers", "activate", "nord")

    runs = out.sync()[0]["runs"]

    assert [r["outcome"] for r in runs] == ["partial", "succeeded"]  # the sync went on
    assert len(webhook.posts) == 1 and len(mailbox.messages) == 1
    warning = next(line for line in out.text[-1].splitlines() if "alert not sent" in line)
    assert "webhook: HTTPError: HTTP Error 500" in warning
    assert "invalid_record seen 1 time (clients CL00002)" in warning
    assert_no_secret(*out.text)
