"""The OpenAPI 3 document of the JSON API, served at ``/api/openapi.json``, generated.

Each handler of ``api.py`` declares its operations with :func:`operation` (summary,
answer schema, query parameters); the paths, methods and path parameters come from the
Starlette routes themselves, the answers' shapes from ``answers.py``, and apispec (with
its marshmallow plugin) writes the document. A route under ``/api/`` with a method no
handler declares is an error, so the document cannot miss one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from starlette.routing import BaseRoute, Route

from .. import __version__
from . import answers

Handler = TypeVar("Handler", bound=Callable[..., Any])

#: what a path parameter of a route is, by name
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "dossier_id": {"type": "string", "pattern": answers.DOSSIER_ID},
    "run_id": {"type": "integer", "minimum": 1, "maximum": answers.MAX_ID},
    "incident_id": {"type": "integer", "minimum": 1, "maximum": answers.MAX_ID},
}


@dataclass(frozen=True)
class Operation:
    """One method of one route, as the document describes it."""

    method: str
    operation_id: str
    summary: str
    #: the answer's schema (a marshmallow schema, or a plain JSON Schema)
    answer: type[Schema] | Schema | dict[str, Any]
    answer_text: str
    status: int = 200
    query: type[Schema] | None = None
    #: the path names something that may not exist (404)
    found: bool = False
    media_type: str = "application/json"


#: the operations each handler declared, by handler
OPERATIONS: dict[Callable[..., Any], list[Operation]] = {}


def operation(
    method: str,
    operation_id: str,
    summary: str,
    answer: type[Schema] | Schema | dict[str, Any],
    answer_text: str,
    *,
    status: int = 200,
    query: type[Schema] | None = None,
    found: bool = False,
    media_type: str = "application/json",
) -> Callable[[Handler], Handler]:
    """Declare what the decorated handler answers to ``method`` (``get`` or ``post``).

    A ``post`` is a state change: it may be refused with 403 (a cookie session without
    its CSRF token) or 409, and names a dossier or incident that may not exist (404).
    """
    declared = Operation(
        method.lower(),
        operation_id,
        summary,
        answer,
        answer_text,
        status,
        query,
        found or method.lower() == "post",
        media_type,
    )

    def declare(handler: Handler) -> Handler:
        OPERATIONS.setdefault(handler, []).append(declared)
        return handler

    return declare


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(op.status): {
            "description": op.answer_text,
            "content": {op.media_type: {"schema": op.answer}},
        },
        "400": _error("a parameter is not valid"),
        "401": _error("no token, or a wrong one"),
    }
    if op.found:
        responses["404"] = _error("no such dossier, run or incident")
    if op.method == "post":
        responses["403"] = _error("cookie session without its CSRF token (X-CSRF-Token)")
        responses["409"] = _error("the dossier is not in a state that allows it")
    return responses


def _parameters(route: Route, op: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for name in route.param_convertors:
        if name not in PATH_PARAMETERS:
            raise ValueError(f"{route.path}: path parameter {name} is not described")
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
        )
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if op.method == "post":
        parameters.append({"in": "header", "schema": answers.CsrfHeader})
    return parameters


def _operations(route: Route) -> dict[str, dict[str, Any]]:
    declared = {op.method: op for op in OPERATIONS.get(route.endpoint, [])}
    methods = sorted(m.lower() for m in route.methods or () if m != "HEAD")
    missing = [m for m in methods if m not in declared]
    if missing:
        raise ValueError(f"{route.path}: {', '.join(missing)} declares no OpenAPI operation")
    return {
        method: {
            "operationId": declared[method].operation_id,
            "summary": declared[method].summary,
            "parameters": _parameters(route, declared[method]),
            "responses": _responses(declared[method]),
        }
        for method in methods
    }


def generate(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.0 description of every ``/api/`` route among ``routes``."""
    spec = APISpec(
        title="dossiersync status API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "The data of the dossiersync status page: the same as the command line's "
                "--json output. Every call needs the access token."
            )
        },
        servers=[{"url": "/"}],
        security=[{"bearerToken": []}],
    )
    spec.components.security_scheme("bearerToken", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=answers.ErrorSchema)
    for route in routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            spec.path(path=route.path, operations=_operations(route))
    return spec.to_dict()


#: each set of routes' document, made once per process (routes are not hashable)
_DOCUMENTS: dict[tuple[int, ...], dict[str, Any]] = {}


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The document of the API's ``routes`` (``api.ROUTES``: given, not imported, so
    that the API's module and this one do not import each other)."""
    key = tuple(id(route) for route in routes)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = generate(routes)
    return copy.deepcopy(_DOCUMENTS[key])
