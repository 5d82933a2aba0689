"""What the page and the API read: ``reports`` and ``dossiers`` views, arranged for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config import Config
from ..dossiers import views
from ..reports import incidents, journal, journal_csv, run_dict
from ..state.models import Run
from ..state.store import StateStore

INCIDENT_STATES = ("open", "resolved", "all")
#: spreadsheet programs run a cell that starts with one of these as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def dossier_list(
    config: Config,
    store: StateStore,
    in_ssm: dict[str, int] | None = None,
    *,
    probe: bool = False,
) -> list[dict[str, Any]]:
    """Every dossier the connector proposes or knows (``dossiers discover --json``, which
    opens each Sage source once: ``probe``)."""
    return [v.as_dict() for v in views(config, store, in_ssm, probe=probe)]


def journal_page(
    store: StateStore,
    dossier_ids: list[str],
    *,
    offset: int,
    limit: int,
    since: datetime | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Runs of these dossiers, newest first, from ``offset``; and whether more follow."""
    runs: list[dict[str, Any]] = []
    for dossier_id in dossier_ids:
        runs.extend(journal(store, dossier_id, since=since, limit=offset + limit + 1))
    runs.sort(key=lambda r: r["run_id"], reverse=True)
    return runs[offset : offset + limit], len(runs) > offset + limit


def run_events(store: StateStore, dossier_id: str, run_id: int) -> list[dict[str, Any]]:
    return journal(store, dossier_id, run_id=run_id)


def find_run(store: StateStore, dossier_id: str, run_id: int) -> dict[str, Any] | None:
    """The run ``run_id`` (as in the journal) if it belongs to the dossier."""
    with store.session() as s:
        run = s.get(Run, run_id)
        return run_dict(run) if run is not None and run.dossier_id == dossier_id else None


def incident_list(
    store: StateStore,
    dossier_id: str | None,
    *,
    state: str = "all",
    entity: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """``incidents`` filtered by state (open/resolved/all), entity and kind."""
    return incidents(
        store, dossier_id, state=None if state == "all" else state, entity=entity, kind=kind
    )


def find_incident(store: StateStore, incident_id: int) -> dict[str, Any] | None:
    return next((i for i in incidents(store) if i["incident_id"] == incident_id), None)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def journal_export(runs: list[dict[str, Any]]) -> str:
    """``reports.journal_csv``, with text a spreadsheet would run as a formula quoted."""
    return journal_csv([{k: _cell(v) for k, v in run.items()} for run in runs])
