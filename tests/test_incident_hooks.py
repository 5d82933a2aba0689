"""What the hooks are told of incidents and failed runs, on the real passes, state store
and plugin manager (the endpoints are the in-memory fakes of ``test_engine_unit``): every
occurrence of an incident once it is committed, and how many runs failed in a row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_engine_unit import DOSSIER, FakeDossier, client

from dossiersync.errors import SourceUnavailable
from dossiersync.hookspecs import hookimpl
from dossiersync.journal import IncidentRecord, RunRecord, record_incident, utcnow
from dossiersync.plugin import SAGE_TO_SSM, SSM_TO_SAGE
from dossiersync.registry import dossier_hooks, plugin_manager
from dossiersync.state.models import Dossier
from dossiersync.state.store import StateStore
from dossiersync.sync.run import run_pass


class Recorder:
    """A hook-only plugin keeping what it is told."""

    def __init__(self) -> None:
        self.occurred: list[IncidentRecord] = []
        self.opened: list[tuple[str | None, str]] = []
        #: (kind, direction, incident id) of each incident opened
        self.opened_ids: list[tuple[str, str | None, int]] = []
        self.finished: list[tuple[str, str, str, int]] = []

    @hookimpl
    def dossiersync_incident_occurred(self, incident: IncidentRecord) -> None:
        self.occurred.append(incident)

    @hookimpl
    def dossiersync_incident_opened(
        self,
        dossier: str,
        entity: str | None,
        record_key: str | None,
        kind: str,
        message: str,
        direction: str | None,
        incident_id: int,
    ) -> None:
        self.opened.append((record_key, kind))
        self.opened_ids.append((kind, direction, incident_id))

    @hookimpl
    def dossiersync_run_finished(self, run: RunRecord) -> None:
        self.finished.append((run.entity, run.direction, run.outcome, run.failed_in_a_row))


@pytest.fixture
def told() -> Iterator[Recorder]:
    recorder = Recorder()
    pm = plugin_manager()
    pm.register(recorder, name="test-recorder")
    try:
        yield recorder
    finally:
        pm.unregister(recorder)


@pytest.fixture
def nord(tmp_path: Path, told: Recorder) -> FakeDossier:
    dossier = FakeDossier(tmp_path)
    for n, name in enumerate(("Boulangerie Dupont", "Garage Martin", "Pharmacie Leroy"), 1):
        dossier.sage.insert("F_COMPTET", client(f"CL0000{n}", name))
    return dossier


def test_every_occurrence_of_an_incident_is_told_with_its_count(
    nord: FakeDossier, told: Recorder
) -> None:
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_EMail": "garage.martin-at-wanadoo"})
    for _ in range(3):
        nord.push()

    assert [(i.record_key, i.kind, i.occurrences) for i in told.occurred] == [
        ("CL00002", "invalid_record", 1),
        ("CL00002", "invalid_record", 2),
        ("CL00002", "invalid_record", 3),
    ]
    first = told.occurred[0]
    assert {i.id for i in told.occurred} == {first.id} and first.id > 0
    assert (first.dossier_id, first.entity, first.direction, first.field) == (
        DOSSIER,
        "clients",
        SAGE_TO_SSM,
        "email",
    )
    assert first.message.startswith("Dossier nord, client CL00002: e-mail address is not valid")
    assert told.opened == [("CL00002", "invalid_record")]  # opened once, as documented

    # fixed, it resolves; broken again, it is a new incident counting from 1
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_EMail": "garage.martin@wanadoo.fr"})
    nord.push()
    assert nord.open_incidents() == []
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_EMail": "still-not-an-address"})
    nord.push()
    again = told.occurred[-1]
    assert (again.occurrences, again.record_key) == (1, "CL00002")
    assert again.id != first.id
    assert told.opened == [("CL00002", "invalid_record")] * 2


def test_an_incident_is_told_once_committed_and_never_when_rolled_back(
    tmp_path: Path, told: Recorder
) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with store.session() as s:
        s.add(Dossier(id=DOSSIER, name="Nord", created_at=utcnow()))
    hooks = dossier_hooks([])

    def occurrence(session: Any) -> None:
        record_incident(
            session,
            hooks,
            DOSSIER,
            entity="clients",
            record_key="CL00009",
            direction=SAGE_TO_SSM,
            kind="invalid_record",
            message="Dossier nord, client CL00009: name is missing",
        )

    with pytest.raises(RuntimeError), store.session() as s:
        occurrence(s)
        raise RuntimeError("the pass fails before its commit")
    assert told.occurred == []

    session = store.new_session()
    occurrence(session)
    occurrence(session)  # twice in one transaction: each told with its own count
    assert told.occurred == []  # not committed yet
    session.commit()
    session.close()
    assert [i.occurrences for i in told.occurred] == [1, 2]
    store.dispose()


def test_failed_runs_in_a_row_are_counted_until_a_run_gets_through(
    nord: FakeDossier, told: Recorder
) -> None:
    clients = nord.entity("clients")
    down = SourceUnavailable("cannot open dossier nord: the Sage file is locked")

    streaks = [run_pass(nord.ctx, clients, SAGE_TO_SSM, down).failed_in_a_row for _ in range(3)]
    assert streaks == [1, 2, 3]
    # another direction has its own streak
    assert run_pass(nord.ctx, clients, SSM_TO_SAGE, down).failed_in_a_row == 1
    assert told.finished[-1] == ("clients", SSM_TO_SAGE, "failed", 1)

    ok = run_pass(nord.ctx, clients, SAGE_TO_SSM)
    assert (ok.outcome, ok.failed_in_a_row) == ("succeeded", 0)
    assert run_pass(nord.ctx, clients, SAGE_TO_SSM, down).failed_in_a_row == 1

    # the run_failed incident recurs with the streak, and is told each time
    failures = [i for i in told.occurred if i.kind == "run_failed" and i.direction == SAGE_TO_SSM]
    assert [i.occurrences for i in failures] == [1, 2, 3, 1]
    assert "Sage file is locked" in failures[0].message


class Broken:
    """A hook-only plugin whose notification fails."""

    @hookimpl
    def dossiersync_incident_occurred(self, incident: IncidentRecord) -> None:
        raise ConnectionError("the notification server is down")


def test_a_failing_incident_hook_is_logged_and_the_sync_goes_on(
    nord: FakeDossier, told: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Broken()
    plugin_manager().register(broken, name="test-broken")
    try:
        nord.sage.update("F_COMPTET", ("CL00002",), {"CT_EMail": "garage.martin-at-wanadoo"})
        run = run_pass(nord.ctx, nord.entity("clients"), SAGE_TO_SSM)
    finally:
        plugin_manager().unregister(broken)

    # the incident is stored and the pass ended as it would have: what was committed stays
    assert (run.outcome, run.counts["created"]) == ("partial", 2)
    assert [i.record_key for i in nord.open_incidents()] == ["CL00002"]
    assert "the notification server is down" in caplog.text


def test_an_opened_incident_is_told_with_its_direction_and_id(
    nord: FakeDossier, told: Recorder
) -> None:
    """Two run_failed incidents of one dossier and entity, one per direction, are two
    incidents: the hook tells them apart."""
    clients = nord.entity("clients")
    down = SourceUnavailable("cannot open dossier nord: the Sage file is locked")
    run_pass(nord.ctx, clients, SAGE_TO_SSM, down)
    run_pass(nord.ctx, clients, SSM_TO_SAGE, down)
    run_pass(nord.ctx, clients, SAGE_TO_SSM, down)  # a recurrence: not opened again

    opened = [o for o in told.opened_ids if o[0] == "run_failed"]
    assert [(kind, direction) for kind, direction, _ in opened] == [
        ("run_failed", SAGE_TO_SSM),
        ("run_failed", SSM_TO_SAGE),
    ]
    ids = [incident_id for _, _, incident_id in opened]
    assert len(set(ids)) == 2
    stored = {i.direction: i.id for i in told.occurred if i.kind == "run_failed"}
    assert ids == [stored[SAGE_TO_SSM], stored[SSM_TO_SAGE]]
