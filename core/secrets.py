"""Secret references and masking.

A secret in the configuration is either a literal or a reference: ``env:NAME`` reads
the environment, ``file:PATH`` reads a file that only its owner may read.  Secrets are
held in :class:`Secret`, whose ``str``/``repr`` never reveal the value.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .errors import ConfigError, DossierSyncError
from .registry import plugin_manager

#: the user and password of a URL (``scheme://user:pw@host``)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s?#]*@")
#: query values that are secrets (``?password=…``, ``&token=…``)
_URL_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|pass|secret|token|access_token|api_?key|"
    r"private_?key|key|sslpassword|sslkey)=)[^&#;\s]*"
)


class Secret:
    """A value that is never printed, logged or serialised by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def known(self) -> str | None:
        """The value if it is at hand (to mask it in a message), never an error."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.known() == self.known()

    def __hash__(self) -> int:
        return hash(self.known())


class DeferredSecret(Secret):
    """A secret read only when first needed: a command that never uses it (``status``
    with the API keys) does not ask for it; one that does gets the error naming it."""

    __slots__ = ("_reference", "_where")

    def __init__(self, reference: str, where: str) -> None:
        super().__init__("")
        self._reference: str | None = reference
        self._where = where

    def reveal(self) -> str:
        if self._reference is not None:
            self._value = resolve(self._reference, self._where).reveal()
            self._reference = None
        return self._value

    def known(self) -> str | None:
        try:
            return self.reveal()
        except ConfigError:
            return None  # never read: nothing to mask


def resolve(reference: str, where: str) -> Secret:
    """Turn a configured value (literal, ``env:NAME`` or ``file:PATH``) into a Secret.

    ``where`` names the configuration key in error messages; the value itself never
    appears in them.
    """
    if reference.startswith("env:"):
        name = reference[4:]
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return Secret(value)
    if reference.startswith("file:"):
        path = Path(reference[5:]).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None
        if open_to_others(mode):
            raise ConfigError(
                f"{where}: secret file {path} is readable by others; run chmod 600 {path}"
            )
        # a byte order mark (Notepad) and a line ending (CRLF) are not the secret's
        return Secret(path.read_text(encoding="utf-8-sig").strip())
    return Secret(reference)


def open_to_others(mode: int, system: str = os.name) -> bool:
    """Whether a file's POSIX mode lets its group or others in. On Windows the mode is
    made up from the read-only flag (every file shows 0o666 or 0o444) and says nothing
    of who may read it: there the file's NTFS permissions protect it (docs/windows.md),
    and no file is refused for its mode."""
    return system != "nt" and bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def connection_secrets(connection: Secret, endpoint: str = "sage50fr_odbc") -> list[Secret]:
    """The secrets written into a dossier's connection (its password), as the plugin of
    its ``endpoint`` reads its connections (``dossiersync_connection_secrets``): what must
    be masked in a message that names the source."""
    value = connection.known() or ""
    try:
        found = plugin_manager().hook.dossiersync_connection_secrets(
            endpoint=endpoint, connection=value
        )
    except DossierSyncError:
        return []  # no plugin to ask: the message names no connection of its
    return [Secret(v) for v in found or () if v]


def _masked_by_plugins(text: str) -> str:
    """``text`` with the secrets each plugin recognises in it masked (an ODBC password by
    the Sage plugin: ``dossiersync_mask_secrets``), one plugin after the other."""
    try:
        hook = plugin_manager().hook.dossiersync_mask_secrets
    except DossierSyncError:
        return text
    for _ in range(len(hook.get_hookimpls()) + 1):
        changed = [m for m in hook(text=text) if m is not None and m != text]
        if not changed:
            break
        text = changed[0]  # each masking leaves the others' work as it is: go round
    return text


def mask_urls(text: str) -> str:
    """Every URL in ``text`` without its user and password (``scheme://***@host``) and
    with the values of secret query parameters (``password``, ``token``, ``key``…)
    replaced by ``***``: a state store URL or an API URL may carry credentials."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}***@", text)
    return _URL_SECRET_QUERY.sub(lambda m: f"{m.group(1)}***", text)


def scrub(text: str, secrets: list[Secret]) -> str:
    """Remove every known secret value from a message, and what plugins recognise as one
    (an ODBC password written in it) and the credentials of its URLs."""
    out = mask_urls(_masked_by_plugins(text))
    for secret in secrets:
        value = secret.known()
        if value is not None and len(value) >= 3:
            out = out.replace(value, "***")
    return out
