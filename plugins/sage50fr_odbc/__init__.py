"""Sage 50FR over ODBC: generic record I/O on one dossier, driven by a table mapping."""

from .endpoint import Sage50OdbcEndpoint
from .mapping import ColumnMapping, SageMapping, TableMapping

__all__ = ["ColumnMapping", "Sage50OdbcEndpoint", "SageMapping", "TableMapping"]
