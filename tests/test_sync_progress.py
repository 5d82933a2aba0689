"""A first sync on a terminal shows where it is while it runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from support.workspace import Workspace


def run_on_a_terminal(workspace: Workspace, *args: str) -> str:
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
    assert process.wait(timeout=600) == 0, b"".join(chunks).decode(errors="replace")
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
