"""What ``make catalogues`` reads from the command line's modules (Babel, a dev
dependency, is imported only here and only when extracting).

Babel's Python extractor finds the ``_()``, ``N_()``, ``ngettext()``, ``pgettext()`` and
``NP_()`` calls; click's help is not such a call: a command's help is its docstring
and an option's its ``help=``.  :func:`extract` adds those, as click shows them
(``inspect.cleandoc``), so that the CLI translates them by their text when it shows
them (``dossiersync.cli.translate_help``).

``python -m dossiersync.lang_extract english PO`` gives each message of the English
catalogue its id as text (the ids are English already) where it has none.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

#: the decorators whose function's docstring is a command's help
COMMAND_DECORATORS = {"command", "group"}
#: the keyword arguments that are help a person reads
HELP_KEYWORDS = {"help", "short_help"}


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return None


def click_help(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of each command's docstring and each ``help=`` literal."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            decorated = {_decorator_name(d) for d in node.decorator_list}
            docstring = ast.get_docstring(node, clean=True)
            if decorated & COMMAND_DECORATORS and docstring:
                yield node.body[0].lineno, docstring
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                value = keyword.value
                if (
                    keyword.arg in HELP_KEYWORDS
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and value.value.strip()
                ):
                    yield value.lineno, inspect.cleandoc(value.value)


def extract(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str | None, Any, list[str]]]:
    """Babel's extraction method for the CLI's catalogue (``core/locale/babel.cfg``)."""
    from babel.messages.extract import extract_python

    source = fileobj.read()
    yield from ((line, None, text, []) for line, text in click_help(source.decode("utf-8")))
    fileobj.seek(0)
    settings: Any = options  # Babel's own options, passed on as they came
    found: Iterator[Any] = extract_python(fileobj, keywords, comment_tags, settings)
    yield from found


def fill_english(path: str) -> int:
    """Give every message of an English catalogue without a text its id; how many."""
    from babel.messages.pofile import read_po, write_po

    with open(path, "rb") as file:
        catalogue = read_po(file, locale="en")
    filled = 0
    for message in catalogue:
        if not message.id or message.string and all(message.string):
            continue
        message.string = message.id
        message.flags.discard("fuzzy")
        filled += 1
    with open(path, "wb") as file:
        write_po(file, catalogue, sort_output=True, include_lineno=False)
    return filled


if __name__ == "__main__":  # pragma: no cover - make catalogues
    if len(sys.argv) != 3 or sys.argv[1] != "english":
        sys.exit("usage: python -m dossiersync.lang_extract english PO")
    print(f"{fill_english(sys.argv[2])} English message(s) given their id as text")
