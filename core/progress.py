"""The live line ``sync`` shows on a terminal: how far each process is, and how long it
has left when that can be told, in the command line's language."""

from __future__ import annotations

from datetime import datetime

from .journal import RunRecord
from .lang import _, term

WIDTH = 12
SPINNER = "|/-\\"


def seconds_left(seconds: float) -> str:
    """``8s``, ``1m05s``, ``2h03m``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def rate_text(per_second: float) -> str:
    return f"{per_second:.1f}/s" if per_second < 10 else f"{round(per_second)}/s"


def progress_line(run: RunRecord, now: datetime, tick: int = 0) -> str:
    """One process as it moves: dossier, entity, direction, a bar, the records read out of
    the total the pass announced, records per second and the time left — or, with no
    total known, a moving bar, the records read and the rate.

    ``now`` is naive UTC, as ``run.started_at``; ``tick`` turns the spinner.
    """
    head = f"{run.dossier_id:<16} {run.entity:<16} {run.direction:<12}"
    done = run.counts["read"]
    elapsed = (now - run.started_at).total_seconds()
    per_second = done / elapsed if elapsed > 0 else 0.0
    spinner = SPINNER[tick % len(SPINNER)]
    counts = ", ".join(
        f"{term('count', k)} {v}" for k, v in run.counts.items() if v and k != "read"
    )
    if run.total:
        total = max(run.total, done)  # records retried by key may come on top
        filled = min(WIDTH, WIDTH * done // total)
        bar = "#" * filled + "." * (WIDTH - filled)
        parts = [f"{done}/{total}", rate_text(per_second)]
        if per_second > 0:
            left = seconds_left((total - done) / per_second)
            parts.append(_("{time} left").format(time=left))
    else:
        bar = "".join("#" if (tick + i) % 8 < 4 else "." for i in range(WIDTH))
        parts = [_("{count} read").format(count=done), rate_text(per_second)]
    if counts:
        parts.append(counts)
    return f"{head} [{bar}] {spinner} {', '.join(parts)}"
