"""What a Sage connection string says, read without a driver: its attributes, the source
it reaches (two dossiers must not reach the same one), how messages name it, its
password and how a message is rid of one.

Kept apart from the endpoint so that the configuration can be checked without loading
the ODBC driver manager (``dossiersync status`` loads no driver).
"""

from __future__ import annotations

import ntpath
import os
import re


def connection_fields(connection: str) -> dict[str, str]:
    """An ODBC connection string's attributes, keys in lower case, values as meant
    (``{…}`` unwrapped, ``}}`` inside braces read as ``}``)."""
    fields: dict[str, str] = {}
    i, n = 0, len(connection)
    while i < n:
        eq = connection.find("=", i)
        if eq < 0:
            break
        key = connection[i:eq].strip().strip(";").strip().lower()
        i = eq + 1
        while i < n and connection[i] == " ":
            i += 1
        if i < n and connection[i] == "{":
            value, i = [], i + 1
            while i < n:
                if connection[i] == "}":
                    if connection[i + 1 : i + 2] == "}":
                        value.append("}")
                        i += 2
                        continue
                    i += 1
                    break
                value.append(connection[i])
                i += 1
            text = "".join(value)
            end = connection.find(";", i)
            i = n if end < 0 else end + 1
        else:
            end = connection.find(";", i)
            end = n if end < 0 else end
            text, i = connection[i:end].strip(), end + 1
        if key:
            fields[key] = text
    return fields


def describe_source(connection: str) -> str:
    """A source as messages name it: its data source's name or its driver, never its
    path, server, user or password (a message may reach a log, the journal or the
    status page; the configuration says the rest)."""
    fields = connection_fields(connection)
    if fields.get("dsn"):
        return f"(DSN {fields['dsn']})"
    if fields.get("driver"):
        return f"(driver {fields['driver']})"
    return "(connection string)"


def _private_values(connection: str) -> list[tuple[str, str]]:
    """The values of a connection string that only its configuration shows, each with
    what a message says instead (a driver's error may quote the file or the server)."""
    fields = connection_fields(connection)
    found = []
    for keys, placeholder in (
        (("database", "dbq", "dbname"), "<database>"),
        (("server", "servername", "host"), "<server>"),
        (("uid", "user", "username"), "<user>"),
    ):
        for key in keys:
            value = fields.get(key, "")
            if len(value) >= 3:
                found.append((value, placeholder))
    # the longest first: a path is replaced before a part of it that is another value
    return sorted(found, key=lambda pair: -len(pair[0]))


#: a path written for Windows: a drive (``C:\``, ``c:/``), a share (``\\server\share``) or
#: any backslash
_WINDOWS_PATH = re.compile(r"^\s*[A-Za-z]:[\\/]|\\")


def source_identity(connection: str) -> str:
    """What a connection string reaches, the same for every way of writing it: a file's
    real path (``/x/./d.db``, a symbolic link, the case of a Windows path), a data
    source's name, a server's host, port and database. Never a user or a password."""
    fields = connection_fields(connection)
    database = fields.get("database") or fields.get("dbq") or fields.get("dbname") or ""
    server = fields.get("server") or fields.get("servername") or fields.get("host") or ""
    if server:
        port = fields.get("port", "")
        return f"server:{server.lower()}:{port}/{database}"
    if database:
        if os.name != "nt" and _WINDOWS_PATH.search(database):
            # a Windows file read on another system (a configuration checked before it
            # is copied to the Sage machine): Windows' own rules, whatever runs here
            return f"file:{ntpath.normcase(ntpath.normpath(database))}"
        path = os.path.normcase(os.path.realpath(os.path.expanduser(database)))
        return f"file:{path}"
    if fields.get("dsn"):
        return f"dsn:{fields['dsn'].strip().casefold()}"
    return "connection:" + ";".join(f"{k}={v}" for k, v in sorted(fields.items()))


#: a password written into an ODBC connection string; a braced value may hold ``;`` and
#: ``}}`` (a ``}`` of the value itself); one already masked (``PWD=***`` in a message
#: naming a source) is left as it is, or masking the message again would swallow the rest
_PASSWORD = re.compile(
    r"(?i)\b(PWD|PASSWORD)\s*=\s*(?!\*\*\*(?:[;:\s]|$))(\{(?:[^}]|\}\})*\}|[^;]*)"
)


def connection_secrets(connection: str) -> list[str]:
    """The passwords of an ODBC connection string, as meant (braces unwrapped)."""
    found = [m.group(2).strip() for m in _PASSWORD.finditer(connection)]
    return [value.strip("{}") for value in found if value]


def mask_connection(text: str) -> str:
    """``text`` with every ODBC password written in it replaced by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}=***", text)


def data_source_connection(name: str) -> str:
    """The connection string of an ODBC data source (``DSN=name``; braced when the name
    holds a ``;``, ``{`` or ``}``)."""
    if any(c in name for c in ";{}") or name != name.strip():
        return "DSN={" + name.replace("}", "}}") + "}"
    return f"DSN={name}"
