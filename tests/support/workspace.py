"""The throw-away installation of a test: dossiersync's own test kit (``dossiersync.testing``),
the one a plugin's tests use too."""

from __future__ import annotations

from dossiersync.testing import Workspace, totals

__all__ = ["Workspace", "totals"]
