"""Running the simulator: in this process with uvicorn, or as a subprocess for tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from dossiersync.plugin import SsmUnavailable

from .app import BASE_PATH, create_app

MODULE = "dossiersync.plugins.sales_management.simulator"
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
SWITCHES = {
    "public_key": "--public-key",
    "private_key": "--private-key",
    "latency_ms": "--latency-ms",
    "error_rate": "--error-rate",
    "rate_limit": "--rate-limit",
    "session_ttl": "--session-ttl",
    "seed": "--seed",
    "lost_answer_rate": "--lost-answer-rate",
    "next_page": "--next-page",
    "max_page_size": "--max-page-size",
    "bulk_answer": "--bulk-answer",
    "extra_fields_shape": "--extra-fields-shape",
}
DEFAULT_PUBLIC_KEY = "demo-public"
DEFAULT_PRIVATE_KEY = "demo-private"


def _known(switches: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(switches) - set(SWITCHES))
    if unknown:
        raise TypeError(f"unknown simulator switch(es): {', '.join(unknown)}")
    return {name: value for name, value in switches.items() if value is not None}


def serve(port: int, host: str = "127.0.0.1", db_path: str | None = None, **switches: Any) -> None:
    """Serve the simulator on ``host:port`` until interrupted.

    Without ``db_path`` the records live in a temporary file removed on exit.
    """
    import uvicorn

    switches = _known(switches)
    with ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            # uvicorn re-raises SIGTERM once it has shut down; exiting through SystemExit
            # instead lets the temporary data folder be removed.
            previous = signal.signal(signal.SIGTERM, _exit_quietly)
            stack.callback(signal.signal, signal.SIGTERM, previous)
        if db_path is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="ssm-simulator-"))
            db_path = str(Path(folder) / "ssm.sqlite")
        app = create_app(db_path, **switches)
        print(f"SSM simulator on http://{host}:{port}{BASE_PATH} (data: {db_path})", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@dataclass
class SimulatorProcess:
    """A simulator running as a subprocess."""

    url: str
    port: int
    public_key: str
    private_key: str = field(repr=False)
    db_path: str
    process: subprocess.Popen[bytes] = field(repr=False)

    def stats(self) -> dict[str, Any]:
        """What it answered: ``GET /_simulator/stats`` (requests, calls, refusals)."""
        return simulator_stats(self.url)


def simulator_stats(api_url: str) -> dict[str, Any]:
    """The stats of the simulator serving ``api_url`` (``…/api/v4``)."""
    base = api_url.removesuffix("/").removesuffix(BASE_PATH)
    stats: dict[str, Any] = httpx.get(f"{base}/_simulator/stats", timeout=10).json()
    return stats


@contextmanager
def running_simulator(db_path: str | None = None, **switches: Any) -> Iterator[SimulatorProcess]:
    """Start the simulator as a subprocess on a free local port; stop it on exit."""
    switches = _known(switches)
    switches.setdefault("public_key", DEFAULT_PUBLIC_KEY)
    switches.setdefault("private_key", DEFAULT_PRIVATE_KEY)
    with ExitStack() as stack:
        if db_path is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="ssm-simulator-"))
            db_path = str(Path(folder) / "ssm.sqlite")
        log = stack.enter_context(tempfile.TemporaryFile())
        simulator = _start(db_path, switches, log)
        try:
            yield simulator
        finally:
            _stop(simulator.process)


def _start(db_path: str, switches: dict[str, Any], log: IO[bytes]) -> SimulatorProcess:
    for _attempt in range(3):
        port = _free_port()
        command = [sys.executable, "-m", MODULE, "--port", str(port), "--db", db_path]
        for name, value in switches.items():
            command += [SWITCHES[name], str(value)]
        log.seek(0)
        log.truncate()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        simulator = SimulatorProcess(
            url=f"http://127.0.0.1:{port}{BASE_PATH}",
            port=port,
            public_key=switches["public_key"],
            private_key=switches["private_key"],
            db_path=db_path,
            process=process,
        )
        if _wait_until_answering(simulator):
            return simulator
        _stop(process)
        log.seek(0)
        output = log.read().decode(errors="replace")
        if "address already in use" not in output.lower():
            raise SsmUnavailable(f"the SSM simulator did not start:\n{output.strip()}")
    raise SsmUnavailable("the SSM simulator found no free port after 3 attempts")


def _wait_until_answering(simulator: SimulatorProcess) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    body = {"username": simulator.public_key, "password": simulator.private_key}
    while time.monotonic() < deadline:
        if simulator.process.poll() is not None:
            return False
        try:
            # a refused connection fails at once; an answer may take the latency asked
            # for (--latency-ms), so it is waited for longer than that
            httpx.post(f"{simulator.url}/login", json=body, timeout=10.0)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
