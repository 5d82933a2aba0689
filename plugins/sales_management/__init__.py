"""Endpoint plugin for the Sage Sales Management REST API (v4), with its local simulator.

``SalesManagementClient`` is imported on first use, so that loading the plugin's command
module (``dossiersync simulator``) at every start of ``dossiersync`` costs no HTTP import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import SalesManagementClient

__all__ = ["SalesManagementClient"]


def __getattr__(name: str) -> Any:
    if name == "SalesManagementClient":
        from .client import SalesManagementClient

        return SalesManagementClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
