"""Alembic migrations of the state store, applied automatically on start."""
