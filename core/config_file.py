"""Which file is the configuration: ``--config``, then ``DOSSIERSYNC_CONFIG``, then
``./dossiersync.toml``.  Apart from :mod:`dossiersync.config` because the command line's
language is read from that file before it is loaded (:mod:`dossiersync.lang`), and the
configuration's messages are said in that language: both ask here, neither the other."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "DOSSIERSYNC_CONFIG"
DEFAULT_FILE = "dossiersync.toml"


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """``--config`` wins, then ``DOSSIERSYNC_CONFIG``, then ``./dossiersync.toml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(DEFAULT_FILE)
