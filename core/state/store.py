"""Opening the state store: engine, migrations, sessions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from ..errors import DossierSyncError
from ..migrations import HEAD
from ..secrets import mask_urls, scrub
from .models import Event

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

#: ``session.info`` key of the journal events waiting for the session's next flush
PENDING_EVENTS = "dossiersync.events"
#: ``session.info`` key of what waits for the session's next commit (``after_commit``)
AFTER_COMMIT = "dossiersync.after_commit"

log = logging.getLogger("dossiersync.state")
_MIGRATING = threading.Lock()


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "dossiersync:migrations")
    return cfg


class StateStore:
    """The connector's state: SQLite by default, PostgreSQL by URL.

    Opening it applies any pending migration, so a new or older store is brought to
    the current schema before anything reads it.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        kwargs: dict[str, object] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - driver errors vary by dialect
            raise DossierSyncError(
                f"state store URL is not usable: {scrub(str(exc), [])}"
            ) from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        for name in ("before_flush", "before_commit"):
            event.listen(self._sessions, name, _write_events)
        event.listen(self._sessions, "do_orm_execute", _write_events_before_query)
        event.listen(self._sessions, "after_soft_rollback", _forget_events)
        event.listen(self._sessions, "after_commit", _run_after_commit)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the store to the newest revision. A store already there (one query says
        so) is left as it is without loading Alembic: every command opens the store."""
        if self.revision() == HEAD:
            return
        from alembic import command

        cfg = _alembic_config()
        try:
            # Alembic's environment is module state: one migration at a time per process
            # (the scheduler opens its implementations' stores in parallel threads)
            with _MIGRATING, self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except DossierSyncError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DossierSyncError(
                f"cannot open the state store ({mask_urls(self.url)}): {scrub(str(exc), [])}"
            ) from None

    def revision(self) -> str | None:
        """The store's schema revision; ``None`` for a new store (or one it cannot read:
        the migration then says why)."""
        try:
            with self.engine.connect() as connection:
                found = connection.execute(text("SELECT version_num FROM alembic_version"))
                versions = [str(row[0]) for row in found]
        except Exception:  # noqa: BLE001 - no table yet, or the database is unreachable
            return None
        return versions[0] if len(versions) == 1 else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def new_session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _write_events(session: Session, *_: Any) -> None:
    """Write the session's pending journal events in one multi-row insert."""
    rows = session.info.pop(PENDING_EVENTS, None)
    if rows:
        session.connection().execute(insert(Event), rows)


def _write_events_before_query(state: ORMExecuteState) -> None:
    """A query of the session sees the events it journaled, as it sees its other writes."""
    _write_events(state.session)


def _forget_events(session: Session, *_: Any) -> None:
    """A rolled back session journals nothing of what it did, and tells nobody of it."""
    session.info.pop(PENDING_EVENTS, None)
    session.info.pop(AFTER_COMMIT, None)


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Do ``action`` once what the session holds now is committed; never if it is rolled
    back.  What tells the outside world (a plugin's alert) waits for the state it tells
    of to be safe, and runs while the session holds no database lock."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


def _run_after_commit(session: Session) -> None:
    # the state is committed: an action that fails is logged, it cannot undo the commit
    for action in session.info.pop(AFTER_COMMIT, ()):
        try:
            action()
        except Exception:  # noqa: BLE001 - one failing action must not stop the others
            log.exception("an action after a commit of the state store failed")
