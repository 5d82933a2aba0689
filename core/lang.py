"""The language of the command line: French or English, from gettext catalogues.

The catalogues are ``locale/<language>/LC_MESSAGES/cli.po`` (compiled to ``.mo`` beside
them by ``make catalogues``, which extracts the messages of ``dossiersync`` and its
built-in plugins with :mod:`.lang_extract`: the ``_()``, ``N_()``, ``ngettext()`` and
``pgettext()`` calls, the commands' docstrings and the options' ``help=``).  A message
id is the English text itself; the English catalogue repeats it.

The language is, first to last: ``--lang``, the configuration's ``[cli] language``, the
locale variables (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as gettext reads
them), English.  It is a setting of the whole process: every command says everything in
one language.

What the journal, the logs of other processes and ``--json`` keep stays in English: a
message that goes there too is :func:`said` (an English ``str`` that remembers its
message id and values) and shown in the chosen language by :func:`spoken`.

Nothing here imports more than the standard library: the CLI imports it before anything.
"""

from __future__ import annotations

import functools
import gettext
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config_file import config_path

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE = Path(__file__).parent / "locale"
DOMAIN = "cli"
#: the locale variables, in the order gettext reads them: the first one set decides
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_chosen: list[str] = []


def _language_of(tag: str) -> str | None:
    """``fr`` of ``fr_FR.UTF-8``, ``fr-CA`` or ``fr``; None for another language."""
    primary = tag.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0]
    primary = primary.lower()
    return primary if primary in LANGUAGES else None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale variables ask for; English when they name none we speak
    (``C``, ``POSIX``, ``de_DE.UTF-8``…).  ``LANGUAGE`` may list several (``fr:en``)."""
    environ = os.environ if environ is None else environ
    for name in ENVIRONMENT:
        value = environ.get(name)
        if not value:
            continue
        for tag in value.split(":"):
            found = _language_of(tag)
            if found:
                return found
        return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def from_arguments(arguments: Sequence[str]) -> str | None:
    """The ``--lang`` of a command line (``--lang fr`` or ``--lang=fr``), if valid."""
    for i, argument in enumerate(arguments):
        if argument == "--":
            break
        if argument == "--lang" and i + 1 < len(arguments):
            value: str | None = arguments[i + 1]
        elif argument.startswith("--lang="):
            value = argument.partition("=")[2]
        else:
            continue
        return value if value in LANGUAGES else None
    return None


def config_from_arguments(arguments: Sequence[str]) -> str | None:
    """The ``--config`` of a command line, if given."""
    for i, argument in enumerate(arguments):
        if argument == "--":
            break
        if argument == "--config" and i + 1 < len(arguments):
            return arguments[i + 1]
        if argument.startswith("--config="):
            return argument.partition("=")[2]
    return None


def configured(path: str | os.PathLike[str] | None) -> str | None:
    """The configuration's ``[cli] language`` (``fr``/``en``), read without validating
    the file: a file that cannot be read says nothing here (loading it says why)."""
    try:
        data = tomllib.loads(config_path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError):
        return None
    table = data.get("cli")
    value = table.get("language") if isinstance(table, dict) else None
    return value if value in LANGUAGES else None


def choose(language: str | None) -> str:
    """Speak ``language`` (``fr``/``en``) from now on; another value: English."""
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    _chosen[:] = [chosen]
    return chosen


def settle(explicit: str | None, config: str | os.PathLike[str] | None) -> str:
    """Choose the language of this command: ``--lang``, else the configuration's, else
    the locale variables'."""
    return choose(explicit or configured(config) or from_environment())


def language() -> str:
    """The language the command line speaks now."""
    if not _chosen:
        choose(from_environment())
    return _chosen[0]


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language``; the message ids (English) when it has
    none."""
    return gettext.translation(DOMAIN, LOCALE, languages=[language], fallback=True)


def _(message: str) -> str:
    """``message`` in the command line's language."""
    return catalogue(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message, as ``n`` asks in the command line's language."""
    return catalogue(language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` where it has a meaning of its own (a column, a state, an outcome…)."""
    return catalogue(language()).pgettext(context, message)


def N_(message: str) -> str:
    """Marks a message translated later (by its text, with :func:`_`)."""
    return message


def NP_(context: str, message: str) -> str:
    """Marks a word translated later in its context (with :func:`pgettext` or
    :func:`term`): a column name, a state, an outcome…"""
    return message


def NN_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a message with a plural translated later (with :func:`ngettext`)."""
    return singular, plural


def term(context: str, value: str | None) -> str:
    """An enumerated value (a state, an outcome, a label…) in the command line's
    language, or the value itself when the catalogue has no word for it."""
    if value is None:
        return ""
    return pgettext(context, value)


class Said(str):
    """A message in English — its value, what the journal, the logs and ``--json``
    keep — that remembers its message id and values, to be shown in the command line's
    language by :func:`spoken`."""

    msgid: str
    values: Mapping[str, Any]
    #: the msgctxt of a word said in a context of its own (:func:`said_as`)
    context: str | None

    def __new__(cls, msgid: str, values: Mapping[str, Any], context: str | None = None) -> Said:
        english = {k: str(v) if isinstance(v, Said) else v for k, v in values.items()}
        self = super().__new__(cls, msgid.format(**english) if values else msgid)
        self.msgid = msgid
        self.values = dict(values)
        self.context = context
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Said, (self.msgid, self.values, self.context))

    def map(self, change: Callable[[str], str]) -> Said:
        """The same message with ``change`` applied to every text value (masking the
        secrets a value may hold: a message id holds none)."""

        def changed(value: Any) -> Any:
            if isinstance(value, Said):
                return value.map(change)
            return change(value) if isinstance(value, str) else value

        values = {k: changed(v) for k, v in self.values.items()}
        return Said(self.msgid, values, self.context)


def said(msgid: str, **values: Any) -> Said:
    """``msgid`` filled with ``values``, in English, shown translated by :func:`spoken`."""
    return Said(msgid, values)


def said_as(context: str, msgid: str) -> Said:
    """A word of a context of its own (an outcome, a state…), as :func:`said`."""
    return Said(msgid, {}, context)


def said_joined(separator: str, parts: Sequence[str]) -> str:
    """``parts`` joined by ``separator``, each one shown in the language of the moment
    when it is :func:`said` (a list of problems said one by one).  The joined message is
    its parts' placeholders only: no catalogue holds it, it reads as itself."""
    if not parts:
        return ""
    glue = separator.replace("{", "{{").replace("}", "}}")
    msgid = glue.join(f"{{p{i}}}" for i in range(len(parts)))
    return Said(msgid, {f"p{i}": part for i, part in enumerate(parts)})


def spoken(value: object) -> str:
    """A :class:`Said` message in the command line's language; anything else as it is."""
    if not isinstance(value, Said):
        return "" if value is None else str(value)
    if value.context is not None:
        return pgettext(value.context, value.msgid)
    values = {k: spoken(v) if isinstance(v, Said) else v for k, v in value.values.items()}
    try:
        return _(value.msgid).format(**values) if values else _(value.msgid)
    except (KeyError, IndexError, ValueError):
        return str(value)  # a translation naming a value the message lacks: the English


def said_of(error: BaseException) -> str:
    """An error's message, as :func:`said` when it was raised so (the English else)."""
    first = error.args[0] if len(error.args) == 1 else None
    return first if isinstance(first, Said) else str(error)


def mapped(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to a message, keeping it :class:`Said` when it is."""
    return text.map(change) if isinstance(text, Said) else change(text)


def error_text(error: BaseException) -> str:
    """An error's message in the command line's language."""
    return spoken(said_of(error))
