"""The live progress line of ``sync``: what it says for a process as it moves."""

from __future__ import annotations

from datetime import datetime, timedelta

from dossiersync.journal import RunRecord
from dossiersync.progress import progress_line, seconds_left

START = datetime(2026, 11, 28, 6, 47, 0)


def running(read: int, total: int | None, **counts: int) -> RunRecord:
    run = RunRecord(1, "nord", "clients", "sage_to_ssm", "manual", False, START, total=total)
    run.add("read", read)
    for name, n in counts.items():
        run.add(name, n)
    return run


def test_a_known_total_gives_done_of_total_rate_and_time_left() -> None:
    line = progress_line(running(300, 1200, created=290), START + timedelta(seconds=10), tick=1)
    assert line == (
        "nord             clients          sage_to_ssm  [###.........] / "
        "300/1200, 30/s, 30s left, created 290"
    )


def test_the_bar_is_full_and_nothing_is_left_at_the_end() -> None:
    line = progress_line(running(1200, 1200), START + timedelta(seconds=100))
    assert "[############] | 1200/1200, 12/s, 0s left" in line


def test_records_retried_on_top_of_the_total_never_go_past_it() -> None:
    line = progress_line(running(130, 120), START + timedelta(seconds=4))
    assert "[############]" in line and "130/130, 32/s" in line


def test_a_slow_rate_keeps_a_decimal_and_long_waits_read_in_minutes_and_hours() -> None:
    line = progress_line(running(5, 2000), START + timedelta(seconds=2))
    assert "5/2000, 2.5/s, 13m18s left" in line
    assert seconds_left(2 * 3600 + 3 * 60 + 20) == "2h03m"


def test_with_no_total_it_says_what_was_read_and_the_rate() -> None:
    line = progress_line(running(40, None, updated=2), START + timedelta(seconds=8), tick=2)
    assert line.endswith("] - 40 read, 5.0/s, updated 2")
    assert "left" not in line


def test_before_any_time_has_passed_there_is_no_time_left_to_guess() -> None:
    line = progress_line(running(0, 500), START)
    assert line.endswith("[............] | 0/500, 0.0/s")
