"""The state store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from dossiersync.errors import LeaseTaken
from dossiersync.journal import add_event, open_incident, resolve_incidents, start_run, utcnow
from dossiersync.lease import acquire, release
from dossiersync.state import Dossier, Event, Incident, Lease, Link, Run, StateStore


def new_dossier(store: StateStore, dossier_id: str) -> None:
    with store.session() as s:
        s.add(Dossier(id=dossier_id, name=dossier_id, state="active", created_at=utcnow()))


def test_migrations_create_every_table_and_are_idempotent(state_url: str) -> None:
    store = StateStore(state_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"dossier", "dossier_entity", "link", "run", "event", "incident", "lease"} <= tables
    assert "alembic_version" in tables
    StateStore(state_url)  # a second start finds nothing to migrate
    store.dispose()


def test_head_is_alembics_head_and_a_store_there_opens_without_alembic(
    tmp_path: Path,
) -> None:
    from alembic.script import ScriptDirectory

    from dossiersync.migrations import HEAD
    from dossiersync.state.store import _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(url).dispose()  # a new store: migrated by Alembic
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from dossiersync.state import StateStore; "
            f"s = StateStore({url!r}); print(s.revision(), 'alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.split() == [HEAD, "False"]


def test_one_record_belongs_to_one_dossier(state_url: str) -> None:
    store = StateStore(state_url)
    new_dossier(store, "a")
    new_dossier(store, "b")
    now = utcnow()
    with store.session() as s:
        s.add(Link(dossier_id="a", entity="clients", sage_key="C1", ssm_id=10, updated_at=now))
        s.add(Link(dossier_id="b", entity="clients", sage_key="C1", ssm_id=11, updated_at=now))
    with pytest.raises(IntegrityError), store.session() as s:
        # the same SSM record cannot be linked from another dossier
        s.add(Link(dossier_id="b", entity="clients", sage_key="C2", ssm_id=10, updated_at=now))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Link(dossier_id="a", entity="clients", sage_key="C1", ssm_id=12, updated_at=now))
    store.dispose()


def test_incidents_count_recurrences_and_resolve(state_url: str) -> None:
    store = StateStore(state_url)
    new_dossier(store, "a")
    with store.session() as s:
        for _ in range(3):
            open_incident(
                s,
                "a",
                entity="clients",
                record_key="C9",
                direction="sage_to_ssm",
                kind="invalid_record",
                message="field 'email' fails rule 'pattern'",
            )
    with store.session() as s:
        (incident,) = s.scalars(select(Incident)).all()
        assert incident.occurrences == 3 and incident.state == "open"
        assert resolve_incidents(s, "a", "clients", record_keys=["C9"]) == 1
    with store.session() as s:
        assert s.scalars(select(Incident)).one().state == "resolved"
    store.dispose()


def test_lease_is_exclusive_and_expires(state_url: str) -> None:
    store = StateStore(state_url)
    holder = acquire(store, "a", 60, holder="other-host:1")
    with pytest.raises(LeaseTaken, match="being synced by other-host:1"):
        acquire(store, "a", 60, holder="other-host:2")
    with store.session() as s:
        lease = s.get(Lease, "a")
        assert lease is not None
        lease.expires_at = utcnow() - timedelta(seconds=1)
    assert acquire(store, "a", 60, holder="other-host:2") == "other-host:2"
    release(store, "a", "other-host:2")
    assert acquire(store, "a", 60, holder=holder) == holder
    store.dispose()


def test_lease_of_a_dead_local_process_is_taken_over(state_url: str) -> None:
    import socket
    import subprocess

    store = StateStore(state_url)
    gone = subprocess.Popen(["true"])
    gone.wait()
    acquire(store, "a", 600, holder=f"{socket.gethostname()}:{gone.pid}")
    assert acquire(store, "a", 600, holder="me:1") == "me:1"
    store.dispose()


def test_an_older_state_store_is_migrated_on_start(state_url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from dossiersync.state.store import _alembic_config

    engine = create_engine(state_url)
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dossier (id, name, origin, state, needs_full_sync, created_at) "
                "VALUES ('a', 'A', 'configuration', 'active', false, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                'INSERT INTO run (dossier_id, entity, direction, trigger, "full", started_at, '
                "outcome, read, created, updated, deleted, unchanged, refused, failed) "
                "VALUES ('a', 'clients', 'sage_to_ssm', 'manual', false, CURRENT_TIMESTAMP, "
                "'succeeded', 5, 5, 0, 0, 0, 0, 0)"
            )
        )
    engine.dispose()

    store = StateStore(state_url)  # start: pending migrations run
    with store.session() as s:
        (run,) = s.scalars(select(Run)).all()
        assert run.created == 5 and run.pending == 0
        assert run.holder is None  # made before runs named their holder
        version = s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0008"
    store.dispose()


def test_journal_retention_prunes_old_runs_only(state_url: str) -> None:
    from datetime import timedelta

    from dossiersync.journal import add_event, finish_run, start_run
    from dossiersync.service import prune_journal
    from dossiersync.state import Event

    store = StateStore(state_url)
    new_dossier(store, "a")
    with store.session() as s:
        old = start_run(s, "a", "clients", "sage_to_ssm", "schedule", False)
        add_event(s, old, "C1", "created")
        finish_run(s, old)
        recent = start_run(s, "a", "clients", "sage_to_ssm", "schedule", False)
        finish_run(s, recent)
        s.execute(
            Run.__table__.update()
            .where(Run.id == old.id)
            .values(finished_at=utcnow() - timedelta(days=100))
        )
    assert prune_journal(store, 90) == 1
    with store.session() as s:
        assert [r.id for r in s.scalars(select(Run))] == [recent.id]
        assert s.scalars(select(Event)).all() == []
    store.dispose()


def test_events_are_journaled_with_the_work_they_describe(state_url: str) -> None:
    """Events wait for the session's next flush or commit, are seen by its own queries,
    and vanish with a rollback, as the writes they describe do."""
    store = StateStore(state_url)
    new_dossier(store, "nord")
    with store.session() as s:
        run = start_run(s, "nord", "clients", "sage_to_ssm", "manual", False)
    session = store.new_session()
    add_event(session, run, "CL1", "created")
    add_event(session, run, "CL2", "updated", "city")
    seen = session.scalars(select(Event.record_key).order_by(Event.id)).all()
    assert seen == ["CL1", "CL2"]  # a query flushes them first
    session.commit()
    add_event(session, run, "CL3", "created")
    session.rollback()
    session.commit()
    session.close()
    with store.session() as s:
        rows = s.execute(select(Event.record_key, Event.action, Event.detail)).all()
    assert [tuple(r) for r in rows] == [("CL1", "created", None), ("CL2", "updated", "city")]
    store.dispose()
