"""The geometry of the status page's pictures, drawn as inline SVG by its template.

Plain rectangles in a fixed-size view box: no script, no external asset, nothing the
page's Content-Security-Policy would refuse (colours come from classes in app.css).
"""

from __future__ import annotations

from dataclasses import dataclass

from .health import OUTCOMES, Day, RunMark

PLOT_HEIGHT = 60
LABEL_HEIGHT = 14
DAY_WIDTH, DAY_GAP = 16, 4
RUN_WIDTH, RUN_GAP = 7, 3
#: what an empty day or a run that synced nothing still shows, so that it is seen
BASELINE = 1.0


@dataclass
class Rect:
    kind: str  # an outcome, "not_synced" or "empty"
    x: float
    y: float
    width: float
    height: float


@dataclass
class DayBar:
    day: Day
    rects: list[Rect]


@dataclass
class RunBar:
    run: RunMark
    rects: list[Rect]


@dataclass
class Chart:
    width: int
    height: int
    plot_height: int
    scale: int  # the figure a full-height bar stands for


def _stack(x: float, width: float, parts: list[tuple[str, int]], per_unit: float) -> list[Rect]:
    """Rectangles from the bottom of the plot up, one per non-zero part."""
    rects, top = [], float(PLOT_HEIGHT)
    for kind, value in parts:
        if value <= 0:
            continue
        height = value * per_unit
        top -= height
        rects.append(Rect(kind, x, round(top, 2), width, round(height, 2)))
    return rects


def runs_per_day(days: list[Day]) -> tuple[Chart, list[DayBar]]:
    """One bar a day, stacked by outcome, scaled to the busiest day."""
    scale = max([d.runs for d in days] + [1])
    per_unit = PLOT_HEIGHT / scale
    bars = []
    for i, day in enumerate(days):
        x = i * (DAY_WIDTH + DAY_GAP)
        rects = _stack(x, DAY_WIDTH, [(o, getattr(day, o)) for o in OUTCOMES], per_unit)
        bars.append(DayBar(day, rects or [_baseline("empty", x, DAY_WIDTH)]))
    width = max(len(days) * (DAY_WIDTH + DAY_GAP) - DAY_GAP, 1)
    return Chart(width, PLOT_HEIGHT + LABEL_HEIGHT, PLOT_HEIGHT, scale), bars


def records_per_run(runs: list[RunMark], slots: int) -> tuple[Chart, list[RunBar]]:
    """One bar a run: records synced (coloured by the run's outcome), then not synced.

    ``slots`` bars fit; the latest run is drawn at the right end, as the latest day is.
    """
    scale = max([r.records + r.not_synced for r in runs] + [1])
    per_unit = PLOT_HEIGHT / scale
    bars = []
    first = max(slots - len(runs), 0)
    for i, run in enumerate(runs):
        x = (first + i) * (RUN_WIDTH + RUN_GAP)
        parts = [(run.outcome, run.records), ("not_synced", run.not_synced)]
        rects = _stack(x, RUN_WIDTH, parts, per_unit)
        bars.append(RunBar(run, rects or [_baseline(run.outcome, x, RUN_WIDTH)]))
    width = max(slots * (RUN_WIDTH + RUN_GAP) - RUN_GAP, 1)
    return Chart(width, PLOT_HEIGHT + LABEL_HEIGHT, PLOT_HEIGHT, scale), bars


def _baseline(kind: str, x: float, width: float) -> Rect:
    return Rect(kind, x, PLOT_HEIGHT - BASELINE, width, BASELINE)
