"""The distributed engine's real parts for tests and benchmarks: a throw-away
``redis-server``, implementations (a workspace each, its state in its own PostgreSQL
database), ``dossiersync worker`` and ``dossiersync scheduler`` processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dossiersync.config import load
from dossiersync.reports import status
from dossiersync.state.store import StateStore

from .postgres import PgServer
from .workspace import Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on a free port, its data (append-only file) in ``folder``: it can
    be stopped and started again on the same port with what it held."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found (make system installs it)")
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - kept by the process
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # saves the append-only file
            self.process.wait(timeout=20)
        self.process = None


class Cluster:
    """Implementations (one configuration file each, in one folder), their workers and
    scheduler, one broker."""

    def __init__(self, root: Path, pg: PgServer, simulator: Any, broker: RedisServer) -> None:
        self.root = root
        self.pg = pg
        self.simulator = simulator
        self.broker = broker
        self.configs = root / "configs"
        self.configs.mkdir(parents=True, exist_ok=True)
        self.implementations: dict[str, Workspace] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []
        self.env = dict(os.environ)
        self.env["SSM_PUBLIC_KEY"] = simulator.public_key
        self.env["SSM_PRIVATE_KEY"] = simulator.private_key
        self.visibility_timeout = 8

    def implementation(
        self,
        name: str,
        dossiers: dict[str, int],
        *,
        service: str = "",
        sync: dict[str, float] | None = None,
        implementation: str = "",
        simulator: Any = None,
        entities: tuple[str, ...] = ("clients",),
    ) -> Workspace:
        """An implementation named ``name``: a demo dossier of ``n`` clients per id (on
        its own ``simulator``, a tenant of its own, else the cluster's)."""
        folder = self.root / name
        folder.mkdir()
        ws = Workspace(folder, simulator or self.simulator)
        ws.state_url = self.pg.sqlalchemy_url(
            self.pg.create_database(f"state_{name}_{os.getpid()}_{id(self) % 10000}")
        )
        if sync:
            ws.sync_settings.update(sync)
        ws.extra_config = (
            "[service]\ninterval_seconds = 3600\nsage_probe_seconds = 1\n"
            f"ssm_probe_seconds = 2\n{service}"
        )
        for seed, (dossier_id, clients) in enumerate(dossiers.items(), start=1):
            ws.add_dossier(dossier_id, clients=clients, seed=seed, entities=entities)
        if implementation:
            text = ws.config_path.read_text()
            ws.config_path.write_text(
                text.replace("[state]", f"{implementation}\n[state]", 1), encoding="utf-8"
            )
        (self.configs / f"{name}.toml").symlink_to(ws.config_path)
        self.implementations[name] = ws
        return ws

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "dossiersync.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        self.processes.append(process)
        return process

    def worker(self, index: int, concurrency: int = 2) -> subprocess.Popen[bytes]:
        return self._spawn(
            f"worker{index}",
            "worker",
            "--configs", str(self.configs),
            "--broker", self.broker.url,
            "--visibility-timeout", str(self.visibility_timeout),
            "--concurrency", str(concurrency),
        )  # fmt: skip

    def wait_ready(self, *workers: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until each worker says it is ready (connected, consuming)."""
        self.wait(
            "the workers ready",
            lambda: all(
                f"dossiersync-{w.pid}@" in self.log_of(w) and " ready." in self.log_of(w)
                for w in workers
            ),
            timeout,
        )

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        index = self.processes.index(process)
        return self.log(Path(self.logs[index].name).stem)

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self._spawn(
            "scheduler",
            "scheduler",
            "--configs", str(self.configs),
            "--broker", self.broker.url,
            "--visibility-timeout", str(self.visibility_timeout),
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self, name: str) -> list[dict[str, Any]]:
        ws = self.implementations[name]
        store = StateStore(ws.state_url, migrate=False)
        try:
            return status(load(ws.config_path), store)
        finally:
            store.dispose()

    def journal(self, name: str, dossier_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.implementations[name].cli_json(
            "journal", "--dossier", dossier_id, "--limit", "1000"
        )
        return data

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            for process in self.processes:
                if process.poll() is not None and process.returncode not in (0, -9):
                    raise AssertionError(f"a process ended ({process.args}): {self.all_logs()}")
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.all_logs()}")

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@contextmanager
def cluster(root: Path, pg: PgServer, simulator: Any) -> Iterator[Cluster]:
    broker = RedisServer(root / "redis")
    broker.start()
    made = Cluster(root, pg, simulator, broker)
    try:
        yield made
    finally:
        made.stop()
        broker.stop()
