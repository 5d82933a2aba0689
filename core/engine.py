"""The sync engine's public names, where plugins, the CLI and the tests have always
imported them; the engine itself is the ``dossiersync.sync`` package."""

from __future__ import annotations

from .sync.base import SyncPass, batched, cursor_row
from .sync.children import ChildWrites
from .sync.run import run_entity, run_pass
from .sync.stop import STOP, Interrupted, StopRequest
from .sync.to_sage import SsmToSage, later
from .sync.to_ssm import SageToSsm, Write, shift_sage_time

__all__ = [
    "STOP",
    "ChildWrites",
    "Interrupted",
    "SageToSsm",
    "SsmToSage",
    "StopRequest",
    "SyncPass",
    "Write",
    "batched",
    "cursor_row",
    "later",
    "run_entity",
    "run_pass",
    "shift_sage_time",
]
