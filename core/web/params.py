"""Query parameters of the page and the API, checked: a bad one is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from starlette.requests import Request

#: ids, entity names and labels are short words; longer values are refused early
MAX_TEXT = 200
MAX_ID = 2**31 - 1
#: a value the request chose is repeated in an answer (a 404 naming the dossier) cut to this
MAX_ECHO = 40


class BadParameter(Exception):
    """A query or path parameter the request cannot be answered with."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def echo(value: str) -> str:
    """``value`` as an error may repeat it: cut short (a 100 kB id is not sent back whole)."""
    return value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "…"


def text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT or "\x00" in value:
        raise BadParameter(name, "not a valid value")
    return value


def integer(
    request: Request, name: str, default: int, minimum: int = 0, maximum: int = MAX_ID
) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return bounded_int(name, value, minimum, maximum)


def bounded_int(name: str, value: str, minimum: int = 1, maximum: int = MAX_ID) -> int:
    if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 12:
        raise BadParameter(name, "not an integer")
    number = int(value)
    if not minimum <= number <= maximum:
        raise BadParameter(name, f"must be between {minimum} and {maximum}")
    return number


def choice(request: Request, name: str, choices: Collection[str], default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}")
    return value


def timestamp(request: Request, name: str) -> datetime | None:
    value = text(request, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, "not an ISO 8601 date or time") from None
    if parsed.tzinfo is not None:
        raise BadParameter(name, "give a UTC time without zone")
    return parsed
