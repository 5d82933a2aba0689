"""The JSON Schemas shipped in ``dossiersync.schemas``: the configuration's and the built-in
entities'."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``dossiersync.schemas`` (``name`` relative to it)."""
    ref = resources.files("dossiersync.schemas").joinpath(name)
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data
