"""Text from Sage or Sales Management made safe where a person reads it.

A Sage field or an SSM error text is data, written by whoever filled it in: printed
raw on a terminal, its control characters would move the cursor, change the window's
title or hide what follows (``ESC]0;…BEL``); written raw to CSV, a cell starting with
``=`` would run as a formula in a spreadsheet. Both are neutralised here, once.
"""

from __future__ import annotations

import re
from typing import Any

#: C0 and C1 control characters, DEL, and the Unicode marks that reorder text on screen
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}

#: spreadsheet programs run a cell that starts with one of these as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\e``, ``\\x07``,
    ``\\u202e``) instead of acting on the terminal; with ``lines``, a message of
    several lines keeps its line breaks."""
    if lines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one starting like a formula is quoted
    with a leading ``'`` (OWASP's advice for CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
