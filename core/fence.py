"""Fencing: no write for a dossier by a process whose lease on it is gone.

The lease (``lease.py``) says who may sync a dossier; the fence makes it hold while a
pass runs. A pass may outlive ``lease_seconds`` (a slow tenant, a large dossier): a
thread renews the lease as it goes, and every write to Sage or Sales Management first
asks the fence, which lets it through only while the lease is surely this process's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

from .lang import said
from .lease import renew
from .source import SageSource
from .state.store import StateStore
from .sync.stop import Interrupted
from .target import SsmTarget, WriteResult

log = logging.getLogger("dossiersync.lease")


class LeaseLost(Interrupted):
    """This process's lease on a dossier was taken over (it had expired): the pass stops
    at once, before its next write, like an interrupted one. Not an ``Exception``, so
    that no record-level handler mistakes it for a failed record."""


class Fence:
    """Proof, before each write, that this process still holds the dossier's lease.

    A thread renews the lease every ``every`` seconds while the sync runs, so a pass
    longer than ``lease_seconds`` keeps it. Before each write, :meth:`check` costs
    nothing while the last renewal is fresh; when it is not (renewals failed, or the
    process was held up), the lease is renewed there and then. A lease found in
    another's hands raises :class:`LeaseLost`: the write is not made, the run ends
    ``interrupted`` naming the new holder, and the dossier is left to it.
    """

    def __init__(
        self,
        store: StateStore,
        dossier_id: str,
        holder: str,
        seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.dossier_id = dossier_id
        self.holder = holder
        self.seconds = seconds
        #: renewal pace: a quarter of the lease, at most every 10 s
        self.every = max(0.2, min(10.0, seconds / 4))
        self._clock = clock
        self._valid_until = clock() + seconds
        self._lost: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Fence:
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.dossier_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def lost(self) -> str | None:
        """Why this process no longer holds the lease, or ``None`` while it does."""
        return self._lost

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is surely still this process's."""
        if self._lost is not None:
            raise LeaseLost(self._lost)
        # renewed early enough that the lease cannot expire before the write is sent
        if self._clock() > self._valid_until - self.every:
            self.renew()

    def renew(self) -> None:
        started = self._clock()
        with self._lock:
            if self._lost is not None:
                raise LeaseLost(self._lost)
            try:
                now_held_by = renew(self.store, self.dossier_id, self.seconds, self.holder)
            except Exception as exc:  # noqa: BLE001 - the state store is out of reach
                if self._clock() < self._valid_until:
                    log.warning("lease of %s not renewed: %s", self.dossier_id, exc)
                    return  # still valid: tried again at the next beat
                self._lost = said(
                    "dossier {dossier}: its lease could not be renewed before it expired "
                    "({error}); stopped before its next write",
                    dossier=self.dossier_id,
                    error=type(exc).__name__,
                )
                raise LeaseLost(self._lost) from None
            if now_held_by != self.holder:
                self._lost = (
                    said(
                        "dossier {dossier}: its lease was taken over by {holder}; stopped "
                        "before its next write, the dossier is left to its new holder",
                        dossier=self.dossier_id,
                        holder=now_held_by,
                    )
                    if now_held_by
                    else said(
                        "dossier {dossier}: its lease was taken over (released by another "
                        "process); stopped before its next write, the dossier is left to its "
                        "new holder",
                        dossier=self.dossier_id,
                    )
                )
                raise LeaseLost(self._lost)
            self._valid_until = started + self.seconds

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.renew()
            except LeaseLost:
                log.warning("%s", self._lost)
                return


class FencedTarget:
    """A dossier's view of the Sales Management endpoint: its writes go through the fence,
    the rest straight to the endpoint (shared by the dossiers of one implementation)."""

    def __init__(self, target: SsmTarget, fence: Fence) -> None:
        self._target = target
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        self._fence.check()
        return self._target.create(resource, body)

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        self._fence.check()
        self._target.update(resource, record_id, body)

    def delete(self, resource: str, record_id: int) -> None:
        self._fence.check()
        self._target.delete(resource, record_id)

    def bulk_create(self, resource: str, bodies: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        self._fence.check()
        return self._target.bulk_create(resource, bodies)

    def bulk_update(
        self, resource: str, items: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        self._fence.check()
        return self._target.bulk_update(resource, items)


class FencedSource:
    """A dossier's Sage source whose writes go through the fence."""

    def __init__(self, source: SageSource, fence: Fence) -> None:
        self._source = source
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        self._fence.check()
        self._source.insert(table, values)

    def update(self, table: str, key: Sequence[Any], values: Mapping[str, Any]) -> int:
        self._fence.check()
        return self._source.update(table, key, values)

    def delete(self, table: str, key: Sequence[Any]) -> int:
        self._fence.check()
        return self._source.delete(table, key)

    def transaction(self) -> AbstractContextManager[None]:
        self._fence.check()
        return self._source.transaction()


def fenced(target: SsmTarget, source: SageSource, fence: Fence) -> tuple[SsmTarget, SageSource]:
    """Both endpoints of a dossier's sync, their writes fenced by its lease."""
    return cast(SsmTarget, FencedTarget(target, fence)), cast(
        SageSource, FencedSource(source, fence)
    )
