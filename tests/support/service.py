"""``dossiersync run`` as a process, as a user starts it, for the tests of the service."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from dossiersync.testing import Workspace


@contextmanager
def running_service(ws: Workspace) -> Iterator[subprocess.Popen[str]]:
    """``dossiersync run --no-web`` on the workspace's configuration; SIGTERM at the end,
    after which it must have exited with status 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path), "run"]
        + ["--no-web"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
