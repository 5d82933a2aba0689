"""Alembic migrations of the state store, applied automatically on start."""

#: the newest revision in ``versions/``: a store already there is opened without loading
#: Alembic (``tests/test_state.py`` holds it to Alembic's own head)
HEAD = "0008"
