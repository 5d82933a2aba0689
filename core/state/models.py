"""SQLAlchemy 2 models of the state store.  Alembic migrations mirror them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Dossier(Base):
    """One Sage 50FR company file attached to the implementation."""

    __tablename__ = "dossier"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(20), default="configuration")
    state: Mapped[str] = mapped_column(String(10), default="active")  # active | inactive
    needs_full_sync: Mapped[bool] = mapped_column(Boolean, default=True)
    full_sync_trigger: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class DossierEntity(Base):
    """Per dossier, entity and direction: the cursor and the last full sync."""

    __tablename__ = "dossier_entity"

    dossier_id: Mapped[str] = mapped_column(
        ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    high_water_mark: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Sage -> SSM: the watched tables' latest modification times and the row count when
    #: the last pass ended (unchanged: nothing to read)
    source_mark: Mapped[str | None] = mapped_column(String(400), nullable=True)
    last_full_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Link(Base):
    """One record of one dossier: Sage key <-> SSM id, and what was last agreed."""

    __tablename__ = "link"
    __table_args__ = (
        UniqueConstraint("dossier_id", "entity", "sage_key", name="uq_link_sage_key"),
        UniqueConstraint("entity", "ssm_id", name="uq_link_ssm_id"),
        Index("ix_link_dossier_entity_label", "dossier_id", "entity", "label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    sage_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ssm_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ext_id: Mapped[str | None] = mapped_column(String(240), nullable=True)
    origin: Mapped[str] = mapped_column(String(8), default="sage")  # sage | ssm
    base: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    sage_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label: Mapped[str] = mapped_column(String(16), default="pending")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Run(Base):
    """One sync process: dossier x entity x direction."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_dossier_started", "dossier_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(20))
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    #: who made the run: ``host:pid/thread`` of the process (a worker) that held the lease
    holder: Mapped[str | None] = mapped_column(String(120), nullable=True)


class Event(Base):
    """What one run did to one record."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_run", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    dossier_id: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(240))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)


class Incident(Base):
    """Something that failed and needs attention; belongs to one dossier."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_dossier_state", "dossier_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"))
    entity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record_key: Mapped[str | None] = mapped_column(String(240), nullable=True)
    direction: Mapped[str | None] = mapped_column(String(16), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(120), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    #: what ``message`` says, as data: the page writes it in its own language
    #: (``dossiersync.messages.Notice``); None for incidents written before
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Watch(Base):
    """What the service's change probes of one dossier and side (``sage``, ``ssm``) saw."""

    __tablename__ = "watch"

    dossier_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)
    probes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_probe_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_change_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Latency(Base):
    """How long one change seen on ``side`` took to be written on the other side."""

    __tablename__ = "latency"
    __table_args__ = (Index("ix_latency_dossier_synced", "dossier_id", "synced_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    synced_at: Mapped[datetime] = mapped_column(DateTime)
    seconds: Mapped[float] = mapped_column(Float)


class Setting(Base):
    """A value the connector found out or decided and keeps, by key (a JSON document)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class StatusShown(Base):
    """What a linked record's status fields show in Sales Management: the link's label and
    note when they were written (``[implementation.status_fields]``), so that only a record
    whose state changed since is written again."""

    __tablename__ = "status_shown"

    link_id: Mapped[int] = mapped_column(
        ForeignKey("link.id", ondelete="CASCADE"), primary_key=True
    )
    #: the link's label then, or ``inactive`` once its dossier was deactivated
    label: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: digest of what else the values were made of (dossier name, language, field names…)
    context: Mapped[str] = mapped_column(String(64))


class Lease(Base):
    """At most one process syncs a dossier at a time."""

    __tablename__ = "lease"

    dossier_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
