"""The API's OpenAPI document, generated from the routes' declarations (no server needed;
schemathesis runs against the served document in test_web_api.py)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30
from starlette.responses import Response
from starlette.routing import Route

from dossiersync.web.answers import DossierSchema
from dossiersync.web.api import ROUTES
from dossiersync.web.openapi import document, generate, operation


def test_generated_document_is_valid_openapi_3_0() -> None:
    doc = document(ROUTES)
    assert doc["openapi"] == "3.0.3"
    jsonschema.Draft4Validator(OPENAPI_30).validate(doc)
    assert doc["components"]["securitySchemes"] == {
        "bearerToken": {"type": "http", "scheme": "bearer"}
    }
    assert doc["security"] == [{"bearerToken": []}]


def test_every_operation_says_its_errors_and_parameters() -> None:
    doc = document(ROUTES)
    operations = [
        (path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
    ]
    assert len(operations) == 19
    assert len({op["operationId"] for _, _, op in operations}) == 19
    for path, method, op in operations:
        assert {"400", "401"} <= set(op["responses"]), (path, method)
        names = {(p["in"], p["name"]) for p in op["parameters"]}
        for part in path.split("/"):
            if part.startswith("{"):
                assert ("path", part.strip("{}")) in names, (path, method)
        if method == "post":
            assert {"403", "404", "409"} <= set(op["responses"]), path
            assert ("header", "X-CSRF-Token") in names, path
        else:
            assert ("header", "X-CSRF-Token") not in names, path
    journal = doc["paths"]["/api/dossiers/{dossier_id}/journal"]["get"]
    limit = next(p for p in journal["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "default": 50, "minimum": 1, "maximum": 1000}
    assert limit["required"] is False
    sync = doc["paths"]["/api/dossiers/{dossier_id}/sync"]
    assert set(sync) == {"get", "post"} and "202" in sync["post"]["responses"]
    csv = doc["paths"]["/api/dossiers/{dossier_id}/journal.csv"]["get"]["responses"]["200"]
    assert csv["content"] == {"text/csv": {"schema": {"type": "string"}}}


def test_answers_keep_required_and_nullable_fields() -> None:
    schemas = document(ROUTES)["components"]["schemas"]
    dossier = schemas["Dossier"]
    assert sorted(dossier["required"]) == sorted(
        ["id", "name", "state", "origin", "entities", "in_configuration"]
    )
    assert dossier["properties"]["reachable"] == {"type": "boolean", "nullable": True}
    assert dossier["properties"]["state"]["enum"] == ["new", "active", "inactive"]
    # answers may carry more fields than declared
    assert "additionalProperties" not in dossier
    run = schemas["Run"]
    assert run["properties"]["counts"] == {"$ref": "#/components/schemas/Counts"}
    assert run["properties"]["finished_at"]["nullable"] is True
    assert "finished_at" in run["required"]
    assert schemas["Error"]["required"] == ["error"]


def _answer(request: Any) -> Response:
    return Response()


def test_a_route_without_declared_operation_is_refused() -> None:
    undeclared = Route("/api/undeclared", _answer, methods=["GET"])
    with pytest.raises(ValueError, match="/api/undeclared: get declares no OpenAPI operation"):
        generate([*ROUTES, undeclared])

    def both(request: Any) -> Response:
        return Response()

    operation("get", "both", "Both", DossierSchema, "the dossier")(both)
    half = Route("/api/half", both, methods=["GET", "POST"])
    with pytest.raises(ValueError, match="/api/half: post declares no OpenAPI operation"):
        generate([half])


def test_an_undescribed_path_parameter_is_refused() -> None:
    def thing(request: Any) -> Response:
        return Response()

    operation("get", "thing", "A thing", DossierSchema, "the thing")(thing)
    with pytest.raises(ValueError, match="path parameter thing_id is not described"):
        generate([Route("/api/things/{thing_id}", thing, methods=["GET"])])


def test_pages_are_not_in_the_document() -> None:
    assert all(path.startswith("/api/") for path in document(ROUTES)["paths"])
    assert "/api/openapi.json" in document(ROUTES)["paths"]
