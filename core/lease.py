"""One sync per dossier at a time: a lease row in the state store."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import LeaseTaken
from .journal import holder_name, utcnow
from .lang import said
from .state.models import Lease, Run
from .state.store import StateStore
from .vocabulary import RunOutcome


def holder_is_dead(holder: str) -> bool:
    """True when the holder was a process of this host that no longer runs."""
    host, _, pid = holder.split("/", 1)[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not _process_runs(int(pid))


if sys.platform == "win32":
    import ctypes

    _STILL_ACTIVE = 259
    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    _ERROR_INVALID_PARAMETER = 87

    def _process_runs(pid: int) -> bool:
        """Asked of Windows itself: there ``os.kill(pid, 0)`` would not test the process
        but end it (``TerminateProcess`` with exit code 0)."""
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            # no such process; any other refusal (access denied) means it is there
            return ctypes.get_last_error() != _ERROR_INVALID_PARAMETER
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True  # unknown: taken as running, the lease then waits for its expiry
            return code.value == _STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)

else:

    def _process_runs(pid: int) -> bool:
        try:
            os.kill(pid, 0)  # signal 0: nothing is sent, the process is only looked up
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        return True


def close_abandoned_runs(session: Session, dossier_id: str, holder: str, now: datetime) -> int:
    """The runs a lost holder (killed, its lease expired) left ``running``: journaled as
    interrupted, so the journal of a dossier taken over is complete."""
    result = session.execute(
        update(Run)
        .where(
            Run.dossier_id == dossier_id, Run.holder == holder, Run.outcome == RunOutcome.RUNNING
        )
        .values(
            outcome=RunOutcome.INTERRUPTED,
            finished_at=now,
            message=f"its process ({holder}) ended before the run did; the lease was taken over",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def acquire(store: StateStore, dossier_id: str, seconds: int, holder: str | None = None) -> str:
    """Take the dossier's lease or raise LeaseTaken.

    A lease past its expiry, or left by a process of this host that is gone (killed),
    is taken over.
    """
    holder = holder or holder_name()
    now = utcnow()
    try:
        with store.session() as s:
            lease = s.scalar(select(Lease).where(Lease.dossier_id == dossier_id).with_for_update())
            if lease is None:
                s.add(
                    Lease(
                        dossier_id=dossier_id,
                        holder=holder,
                        acquired_at=now,
                        expires_at=now + timedelta(seconds=seconds),
                    )
                )
            elif (
                lease.holder != holder
                and lease.expires_at > now
                and not holder_is_dead(lease.holder)
            ):
                until = f"{lease.expires_at:%Y-%m-%d %H:%M:%S}"
                raise LeaseTaken(
                    said(
                        "dossier {dossier} is being synced by {holder} (lease until {until} "
                        "UTC); skipped",
                        dossier=dossier_id,
                        holder=lease.holder,
                        until=until,
                    )
                )
            else:
                if lease.holder != holder:
                    close_abandoned_runs(s, dossier_id, lease.holder, now)
                lease.holder = holder
                lease.acquired_at = now
                lease.expires_at = now + timedelta(seconds=seconds)
    except IntegrityError:
        raise LeaseTaken(
            said(
                "dossier {dossier} is being synced by another process; skipped",
                dossier=dossier_id,
            )
        ) from None
    return holder


def release(store: StateStore, dossier_id: str, holder: str) -> None:
    with store.session() as s:
        s.execute(delete(Lease).where(Lease.dossier_id == dossier_id, Lease.holder == holder))


def renew(
    store: StateStore, dossier_id: str, seconds: int, holder: str | None = None
) -> str | None:
    """Push this process's lease expiry further; returns who holds the lease now.

    The lease is renewed only while ``holder`` still holds it (one conditional update):
    a different answer (another holder, or ``None`` when the row is gone) means the
    lease was lost, and the caller must stop writing.
    """
    holder = holder or holder_name()
    with store.session() as s:
        renewed = s.execute(
            update(Lease)
            .where(Lease.dossier_id == dossier_id, Lease.holder == holder)
            .values(expires_at=utcnow() + timedelta(seconds=seconds))
        )
        if int(getattr(renewed, "rowcount", 0) or 0):
            return holder
        found: str | None = s.scalar(select(Lease.holder).where(Lease.dossier_id == dossier_id))
        return found


@contextmanager
def held(
    store: StateStore, dossier_id: str, seconds: int, wait_seconds: float = 0
) -> Iterator[str]:
    """Hold the dossier's lease for the block; wait up to ``wait_seconds`` for it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            holder = acquire(store, dossier_id, seconds)
            break
        except LeaseTaken:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    try:
        yield holder
    finally:
        release(store, dossier_id, holder)
