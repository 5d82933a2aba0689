"""Nothing secret leaves the process: every text the page or the API shows is scrubbed.

Secrets (API keys, passwords, the token) are masked; connection strings are never shown
at all, masked or not: a message naming a Sage source shows it as its driver or data
source name (``(driver SQLite3)``), and the file, server and user a dossier's connection
names as ``<database>``, ``<server>``, ``<user>``.  The journal keeps messages written by
earlier versions, or under an earlier configuration, that quote a whole connection
string: they are shown the same way.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..config import Config
from ..secrets import Secret, mask_urls, scrub

#: a value of an ODBC attribute: braced (``}}`` is a brace of the value), or up to the
#: next ``;`` or blank, going on past a blank while the next word is one of a path (it
#: holds a separator or a dot) or ends the value (a ``;`` follows)
_VALUE = (
    r"(?:\{(?:[^}]|\}\})*\}"
    r"|[^;\s{}]*(?:[ \t]+(?:[^;\s{}=]*[\\/.][^;\s{}]*|[^;\s{}=]+(?=;)))*(?<![.,:)]))"
)
#: a connection string: an attribute a connection string is recognised by, then more
#: (not a URL's query: ``?password=``)
_CONNECTION = re.compile(
    r"(?i)(?<![\w<?&])(?:DRIVER|DSN|FILEDSN|DATABASE|DBQ|SERVER|UID|PWD|PASSWORD)\s*=\s*"
    + _VALUE
    + r"(?:\s*;(?:\s*[A-Za-z][\w ]{0,40}?\s*=\s*"
    + _VALUE
    + r")?)*"
)
#: a dossier's file, wherever a message quotes it (a driver's error may); a server or a
#: user name is hidden inside its connection string only, as a short word ("sage") may
#: be any text's
_FILE_KEYS = ("database", "dbq", "dbname")


def connection_fields(connection: str) -> dict[str, str]:
    """An ODBC connection string's attributes, keys in lower case, values unbraced."""
    fields: dict[str, str] = {}
    for match in re.finditer(r"([^;=]+?)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)", connection):
        key, value = match.group(1).strip().lower(), match.group(2).strip()
        if value.startswith("{") and value.endswith("}"):
            value = value[1:-1].replace("}}", "}")
        if key:
            fields[key] = value
    return fields


def describe_source(connection: str) -> str:
    """How the page names a source: its data source's name or its driver, nothing else."""
    fields = connection_fields(connection)
    if fields.get("dsn"):
        return f"(DSN {fields['dsn']})"
    if fields.get("driver"):
        return f"(driver {fields['driver']})"
    return "(connection string)"


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


def _private_values(config: Config) -> list[tuple[str, str]]:
    """What the dossiers' connections and the state store's URL name, each with what is
    shown instead; the longest first, so that a path goes before a part of it."""
    found = [(config.state_url, "<state store>"), (mask_urls(config.state_url), "<state store>")]
    for dossier in config.dossiers.values():
        fields = connection_fields(dossier.connection.known() or "")
        files = [fields.get(k, "") for k in _FILE_KEYS]
        found.extend((f, "<database>") for f in files if "/" in f or "\\" in f)
    return sorted(set(found), key=lambda pair: -len(pair[0]))


class Redactor:
    """Scrubs what the page and the API show of one configuration's secrets, connection
    strings, files, servers and users."""

    def __init__(self, config: Config, *extra: Secret) -> None:
        self.secrets = known_secrets(config, *extra)
        self.private = _private_values(config)

    def text(self, text: str) -> str:
        out = scrub(text, self.secrets)
        for value, placeholder in self.private:
            out = out.replace(value, placeholder)
        return _CONNECTION.sub(lambda m: describe_source(m.group(0)), out)

    def __call__(self, data: Any) -> Any:
        """``data`` with every string scrubbed (dictionaries and lists walked through)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {k: self(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self(v) for v in data]
        return data
