"""Sage 50FR over ODBC: generic record I/O on one dossier, driven by a table mapping.

The names below are imported on first use, so that loading the plugin's command module
(``dossiersync demo-dossier``) at every start of ``dossiersync`` costs no ODBC import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .endpoint import Sage50OdbcEndpoint
    from .mapping import ColumnMapping, SageMapping, TableMapping

_WHERE = {
    "Sage50OdbcEndpoint": ".endpoint",
    "ColumnMapping": ".mapping",
    "SageMapping": ".mapping",
    "TableMapping": ".mapping",
}

__all__ = ["ColumnMapping", "Sage50OdbcEndpoint", "SageMapping", "TableMapping"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
