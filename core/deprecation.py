"""Names that moved keep working for a while, each telling where it lives now.

A plugin written against an older module path (``from dossiersync.entity import
SAGE_TO_SSM``) still runs; the first use of the old name raises a ``DeprecationWarning``
naming the new one (``dossiersync.plugin.SAGE_TO_SSM``), so its author sees what to
change before the old name goes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def moved(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``names``: old name -> its new dotted path."""

    def __getattr__(name: str) -> Any:
        new = names.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated: use {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        where, _, attribute = new.rpartition(".")
        return getattr(import_module(where), attribute)

    return __getattr__
