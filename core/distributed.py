"""Past one machine: Celery workers sync dossiers, one scheduler enqueues the due work.

Only ``dossiersync worker`` and ``dossiersync scheduler`` import this module (it imports
Celery and the Redis client, the ``dossiersync[celery]`` extra); ``run`` and every other
command work without them.

- **A task is one dossier of one implementation**: the implementation's name (its
  configuration file's name without ``.toml``, looked up in the worker's own
  ``--configs``), the dossier id, the trigger, and for a change the entities and the
  direction a probe saw.  The worker syncs it with :func:`runner.sync`, under the
  dossier's lease in the implementation's state store, exactly as ``dossiersync sync``
  does: a dossier whose lease another worker holds is skipped at once (logged and
  counted, not failed).
- **Delivery is at least once** (``acks_late``: a message is acknowledged when its task
  ends, so a worker killed mid-pass leaves it to be delivered again after the broker's
  visibility timeout, longer than a pass); what a second delivery could do twice the
  lease, the intent links and the ``extId`` adoption already prevent.
- **The scheduler is the service's own loop** (:class:`service.Service`) with the work
  sent to the queue instead of a thread: the same complete-pass schedule and change
  probes, one loop per implementation.  It sends nothing for a dossier whose lease is
  held or whose task is still queued (a key in Redis, ``dossiersync:queued:…``, set
  when sent, removed when the task ends, expiring with the visibility timeout).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from celery import Celery, signals
from kombu.utils.url import maybe_sanitize_url

from .config import Config, DossierConfig, load
from .errors import ConfigError
from .journal import utcnow
from .service import Service, record_latency
from .state.store import StateStore
from .vocabulary import SAGE_TO_SSM

log = logging.getLogger("dossiersync.distributed")

TASK = "dossiersync.sync_dossier"
#: a task sent and not yet finished, per implementation and dossier
QUEUED = "dossiersync:queued:{implementation}:{dossier}"
#: dossiers whose change-triggered Sage pass failed: the scheduler probes them as new
FORGET = "dossiersync:forget:{implementation}"
#: what the workers did, per implementation: ran, skipped (lease held), failed
COUNTS = "dossiersync:counts:{implementation}"

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: how long the scheduler waits before starting a failed implementation's loop again
RESTART_SECONDS = 10
#: longer than a pass: a message not acknowledged by then is delivered again
DEFAULT_VISIBILITY_TIMEOUT = 3600


def implementations(paths: Iterable[str | Path]) -> dict[str, Path]:
    """Implementation name → configuration file, from files and folders of ``*.toml``."""
    found: dict[str, Path] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(path.glob("*.toml"))
            if not files:
                raise ConfigError(f"{path}: no configuration file (*.toml) in this folder")
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(f"{path}: no such configuration file or folder")
        for file in files:
            name = file.stem
            if name in found and found[name].resolve() != file.resolve():
                raise ConfigError(
                    f"two configuration files name the implementation {name!r}: "
                    f"{found[name]} and {file}; an implementation is named by its file"
                )
            found[name] = file
    if not found:
        raise ConfigError("no configuration given (--configs FILE or FOLDER)")
    for name, file in found.items():
        load(file)  # refused at start, naming the file, rather than at the first task
        log.debug("implementation %s: %s", name, file)
    return found


def make_app(broker: str, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> Celery:
    """The Celery application the worker and the scheduler share."""
    app = Celery("dossiersync", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # a dead worker's messages are looked for often enough to come back soon
            # after the visibility timeout (kombu's default sweep is every 100 s)
            "unacked_restore_interval": max(1, min(10, visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        },
        task_default_queue="dossiersync",
    )
    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)(sync_dossier_task)
    return app


def safe_url(url: str) -> str:
    """The broker URL as logs may show it (no password)."""
    return str(maybe_sanitize_url(url))


# -- the worker ------------------------------------------------------------------------


class WorkerState:
    """What a worker process keeps between tasks: its implementations, one state store
    per state URL (its connection pool, migrated once), the Redis client."""

    def __init__(self, configs: dict[str, Path], broker: str, visibility_timeout: int) -> None:
        self.configs = configs
        self.broker = broker
        self.visibility_timeout = visibility_timeout
        self.redis = redis.Redis.from_url(broker)
        self._stores: dict[str, StateStore] = {}
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def store(self, config: Config) -> StateStore:
        with self._lock:
            store = self._stores.get(config.state_url)
            if store is None:
                store = self._stores[config.state_url] = StateStore(config.state_url)
            return store

    def count(self, implementation: str, what: str) -> None:
        try:
            self.redis.hincrby(COUNTS.format(implementation=implementation), what, 1)
        except redis.RedisError as exc:
            log.warning("could not count %s for %s: %s", what, implementation, exc)

    def close(self) -> None:
        for store in self._stores.values():
            store.dispose()


WORKER: WorkerState | None = None


def sync_dossier_task(
    implementation: str,
    dossier_id: str,
    trigger: str = "schedule",
    entities: list[str] | None = None,
    directions: list[str] | None = None,
    seen_at: str | None = None,
) -> dict[str, Any]:
    """Sync one dossier of one implementation (the Celery task)."""
    from .runner import sync

    state = WORKER
    if state is None:
        raise RuntimeError("the dossiersync task runs in `dossiersync worker` only")
    path = state.configs.get(implementation)
    if path is None:
        log.error(
            "task for implementation %r, which this worker does not have (it has: %s); "
            "dossier %s not synced",
            implementation,
            ", ".join(sorted(state.configs)),
            dossier_id,
        )
        state.count(implementation, "unknown_implementation")
        return {"implementation": implementation, "dossier_id": dossier_id, "ok": False}
    queued = QUEUED.format(implementation=implementation, dossier=dossier_id)
    try:
        config = load(path)
        store = state.store(config)
        results = sync(
            config,
            store,
            [dossier_id],
            entities,
            trigger=trigger,
            directions=directions,
            stop=state.stop,
        )
    except Exception:
        state.count(implementation, "failed")
        _release(state, queued)
        raise
    outcome = "ran"
    for result in results:
        if result.skipped is not None and not result.runs:
            outcome = "skipped"
            log.info("%s/%s: %s", implementation, dossier_id, result.skipped)
        for line in result.reasons():
            if result.skipped is None:
                log.warning("dossier failed: %s/%s", implementation, line)
    ok = all(r.ok for r in results)
    if outcome == "ran" and not ok:
        outcome = "failed"
    state.count(implementation, outcome)
    if outcome != "skipped" and directions and seen_at:
        side = "sage" if directions == [SAGE_TO_SSM] else "ssm"
        if ok:
            record_latency(store, dossier_id, side, results, datetime.fromisoformat(seen_at))
    if outcome == "failed" and directions == [SAGE_TO_SSM]:
        try:  # the scheduler probes the dossier as new: the pass runs again
            state.redis.sadd(FORGET.format(implementation=implementation), dossier_id)
        except redis.RedisError as exc:
            log.warning("could not tell the scheduler about %s: %s", dossier_id, exc)
    _release(state, queued)  # a running pass holds the lease: the scheduler sees that
    return {
        "implementation": implementation,
        "dossier_id": dossier_id,
        "outcome": outcome,
        "ok": ok,
    }


def _release(state: WorkerState, key: str) -> None:
    try:
        state.redis.delete(key)
    except redis.RedisError as exc:
        log.warning("could not clear %s: %s", key, exc)


def run_worker(
    configs: dict[str, Path],
    broker: str,
    *,
    concurrency: int,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker (threads pool) until it is stopped."""
    global WORKER
    state = WORKER = WorkerState(configs, broker, visibility_timeout)

    def shutting_down(**_: Any) -> None:
        # SIGTERM/SIGINT: running passes stop at their next safe point
        state.stop.set()

    signals.worker_shutting_down.connect(shutting_down, weak=False)
    app = make_app(broker, visibility_timeout)
    log.info("worker: broker %s, implementations %s", safe_url(broker), ", ".join(sorted(configs)))
    try:
        app.worker_main(
            [
                "worker",
                f"--loglevel={loglevel}",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--hostname=dossiersync-{os.getpid()}@{socket.gethostname()}",
                "--queues=dossiersync",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        state.close()
        WORKER = None


# -- the scheduler ---------------------------------------------------------------------


class Producer(Service):
    """The service's loop for one implementation, sending the work to the workers."""

    #: each cycle asks Redis and PostgreSQL about every busy dossier: twice a second
    #: at most (a change waits half a second more, at worst)
    min_pause = 0.5

    def __init__(
        self,
        implementation: str,
        config_path: Path,
        app: Celery,
        client: redis.Redis,
        visibility_timeout: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(config_path, web=False)
        self.implementation = implementation
        self.app = app
        self.redis = client
        self.visibility_timeout = visibility_timeout
        self.stop = stop
        self.sent = 0
        self._warned = -1e9

    def run(self, max_cycles: int | None = None) -> None:
        config = self.reload(None)
        store = StateStore(config.state_url)
        try:
            self.loop(config, store, max_cycles)
        finally:
            store.dispose()

    def starting(self, config: Config) -> None:
        log.info(
            "scheduler of %s start: %d dossiers configured, complete pass every %ss",
            self.implementation,
            len(config.dossiers),
            config.service.interval_seconds,
        )

    def busy(self, store: StateStore, dossier_id: str) -> bool:
        """A task of the dossier is queued or running, or its lease is held."""
        from sqlalchemy import select

        from .lease import holder_is_dead
        from .state.models import Lease

        key = QUEUED.format(implementation=self.implementation, dossier=dossier_id)
        try:
            if self.redis.exists(key):
                return True
        except redis.RedisError as exc:
            if time.monotonic() - self._warned > 30:
                log.warning("broker not reachable (%s); nothing sent until it is", exc)
                self._warned = time.monotonic()
            return True
        with store.session() as s:
            lease = s.scalar(select(Lease).where(Lease.dossier_id == dossier_id))
            if lease is None or lease.expires_at <= utcnow():
                return False
            return not holder_is_dead(lease.holder)

    def collect(self, store: StateStore, probes: Any) -> None:
        key = FORGET.format(implementation=self.implementation)
        try:
            failed = self.redis.smembers(key)
            if failed:
                self.redis.srem(key, *failed)
        except redis.RedisError:
            return
        for dossier_id in failed:
            name = dossier_id.decode() if isinstance(dossier_id, bytes) else dossier_id
            self.change_failed(name, SAGE_TO_SSM, [])

    def dispatch(
        self,
        pool: ThreadPoolExecutor,
        config: Config,
        store: StateStore,
        dossier: str | DossierConfig,
        entities: list[str] | None = None,
        direction: str | None = None,
    ) -> None:
        dossier_id = dossier if isinstance(dossier, str) else dossier.id
        key = QUEUED.format(implementation=self.implementation, dossier=dossier_id)
        seen_at: str | None = None
        if direction is None:
            kwargs: dict[str, Any] = {"trigger": "schedule"}
        else:
            side = "sage" if direction == SAGE_TO_SSM else "ssm"
            when = self.probes.change_time(dossier_id, side) or utcnow()
            seen_at = when.isoformat()
            kwargs = {
                "trigger": "change",
                "entities": list(entities or []),
                "directions": [direction],
                "seen_at": seen_at,
            }
        try:
            if not self.redis.set(key, "1", nx=True, ex=self.visibility_timeout):
                return  # sent already, not finished
            self.app.send_task(
                TASK, args=[self.implementation, dossier_id], kwargs=kwargs, queue="dossiersync"
            )
        except Exception as exc:  # noqa: BLE001 - the broker down: try again next cycle
            log.warning("%s/%s not sent: %s", self.implementation, dossier_id, exc)
            try:
                self.redis.delete(key)
            except redis.RedisError:
                pass
            self.started.pop(dossier_id, None)
            return
        self.sent += 1
        log.info(
            "sent %s/%s %s%s",
            self.implementation,
            dossier_id,
            kwargs["trigger"],
            f" {direction} {','.join(entities or [])}" if direction else "",
        )


def run_scheduler(
    configs: dict[str, Path],
    broker: str,
    *,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    max_cycles: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """One producer loop per implementation, in threads, until ``stop`` is set."""
    stop = stop or threading.Event()
    app = make_app(broker, visibility_timeout)
    client = redis.Redis.from_url(broker)
    log.info(
        "scheduler: broker %s, implementations %s", safe_url(broker), ", ".join(sorted(configs))
    )
    producers = [
        Producer(name, path, app, client, visibility_timeout, stop)
        for name, path in sorted(configs.items())
    ]
    errors: list[BaseException] = []

    def run_one(producer: Producer) -> None:
        # one implementation never stops the others: its loop failing (its state store
        # unreachable, its configuration broken) is logged and started again
        while not stop.is_set():
            try:
                producer.run(max_cycles)
                return
            except Exception as exc:  # noqa: BLE001
                log.exception(
                    "scheduler of %s failed; starting it again in %g s",
                    producer.implementation,
                    RESTART_SECONDS,
                )
                errors.append(exc)
                if max_cycles is not None:
                    return
                stop.wait(RESTART_SECONDS)

    threads = [
        threading.Thread(target=run_one, args=(p,), name=f"scheduler-{p.implementation}")
        for p in producers
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        client.close()
