"""Alembic environment: runs on the connection the state store hands over."""

from __future__ import annotations

from alembic import context

from dossiersync.state.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("dossiersync migrations run through StateStore.migrate()")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
