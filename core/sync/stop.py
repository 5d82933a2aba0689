"""Stopping the running passes at a safe point (Ctrl-C, SIGTERM, a service shutdown)."""

from __future__ import annotations

import signal
import threading

from ..lang import N_

#: why a pass stopped, in the journal in English (shown in the command line's language)
STOPPED_BY = {
    signal.SIGINT: N_("interrupted (Ctrl-C)"),
    signal.SIGTERM: N_("interrupted by SIGTERM"),
}


class StopRequest(threading.Event):
    """Set (by a signal handler) to stop the running passes at their next safe point."""

    reason = "interrupted"

    def request(self, reason: str) -> None:
        self.reason = reason
        self.set()


class Interrupted(KeyboardInterrupt):
    """A pass stopped at a safe point because a stop was requested (Ctrl-C, SIGTERM)."""


STOP = StopRequest()
