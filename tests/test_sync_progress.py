"""A first sync on a terminal shows where it is while it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from support.workspace import Workspace


def run_on_a_terminal(workspace: Workspace, *args: str, expect: int = 0) -> str:
    """The command's output as a terminal shows it (stdout is a pseudo-terminal)."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path), *args],
        stdout=follower,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=600) == expect, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_first_sync_on_a_terminal_shows_each_process_moving(workspace: Workspace) -> None:
    entities = ("clients", "contacts", "products", "orders")
    workspace.add_dossier("nord", clients=40, seed=1, entities=entities, orders=12)
    workspace.sync_settings["batch_size"] = 20
    workspace.write_config()
    workspace.activate_all()

    screen = run_on_a_terminal(workspace, "sync")
    live = re.findall(r"\r(nord\s+(\w+)\s+(\w+)\s+)\[[#.]{12}\] [|/\\-] ([^\r\n\x1b]*)", screen)
    moving = {(entity, direction) for _, entity, direction, _ in live}
    assert {("clients", "sage_to_ssm"), ("contacts", "sage_to_ssm")} <= moving
    # orders cost a request per line: their pass moves order by order
    orders = [counts for _, entity, direction, counts in live if entity == "orders"]
    assert len(orders) >= 12, orders
    # each process ends on its own line with its outcome
    assert re.search(r"nord\s+orders\s+sage_to_ssm\s+succeeded\s+read 12, created 12", screen)


def test_a_pass_that_knows_its_total_shows_done_of_total_rate_and_time_left(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=120, seed=1)
    workspace.sync_settings["batch_size"] = 20
    workspace.write_config()
    workspace.activate_all()

    screen = run_on_a_terminal(workspace, "sync")
    live = re.findall(
        r"\rnord\s+clients\s+sage_to_ssm\s+\[([#.]{12})\] [|/\\-] (\d+)/(\d+), ([\d.]+)/s"
        r"(?:, (\w+) left)?",
        screen,
    )
    assert len(live) >= 5, screen
    # the total is the Sage rows to read, known from the start
    assert {total for _, _, total, _, _ in live} == {"120"}
    done = [int(d) for _, d, _, _, _ in live]
    assert done == sorted(done) and done[-1] == 120
    # the bar fills as records are read, and the time left shrinks to nothing
    assert live[0][0].count("#") < live[-1][0].count("#") == 12
    assert any(left for *_, left in live[:-1])
    # a process with no known total (SSM lists do not say) shows what it read and the rate
    assert re.search(r"\rnord\s+clients\s+ssm_to_sage\s+\[[#.]{12}\] . \d+ read, ", screen)


def test_a_piped_sync_prints_no_progress(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=60, seed=1)
    workspace.sync_settings["batch_size"] = 10
    workspace.write_config()
    workspace.activate_all()

    piped = workspace.subprocess("sync")
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stdout and "[" not in piped.stdout
    # one line per process as it ends, and nothing else
    assert [line.split()[:4] for line in piped.stdout.splitlines()] == [
        ["nord", "clients", "sage_to_ssm", "succeeded"],
        ["nord", "clients", "ssm_to_sage", "succeeded"],
    ]


def test_sync_json_on_a_terminal_prints_json_only(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=60, seed=1)
    workspace.sync_settings["batch_size"] = 10
    workspace.write_config()
    workspace.activate_all()

    screen = run_on_a_terminal(workspace, "sync", "--json")
    assert "\r" not in screen.replace("\r\n", "\n")
    assert json.loads(screen)[0]["ok"] is True
