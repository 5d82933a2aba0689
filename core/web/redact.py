"""Nothing secret leaves the process: every text the page or the API shows is scrubbed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..config import Config
from ..secrets import Secret, scrub


def known_secrets(config: Config, *extra: Secret) -> list[Secret]:
    """The configuration's secrets, the state store password and the access token."""
    out = list(config.secrets())
    try:
        password = make_url(config.state_url).password
    except ArgumentError:
        password = None
    if password:
        out.append(Secret(str(password)))
    out.extend(extra)
    return out


def redact(data: Any, secrets: list[Secret]) -> Any:
    """``data`` with every string scrubbed of secret values and ODBC passwords."""
    if isinstance(data, str):
        return scrub(data, secrets)
    if isinstance(data, dict):
        return {k: redact(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(v, secrets) for v in data]
    return data
