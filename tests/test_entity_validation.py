"""Validating canonical records: a compiled quick check, the reference validator's verdict."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from dossiersync.derived import draft7_equivalent
from dossiersync.entities.clients import ClientsEntity
from dossiersync.entities.orders import OrdersEntity
from dossiersync.entities.products import ProductsEntity
from dossiersync.entity import Entity
from dossiersync.errors import RecordInvalid

CLIENT = {
    "code": "CL00001",
    "name": "Boulangerie Martin",
    "is_prospect": False,
    "email": "contact@martin.fr",
    "dormant": False,
}


@pytest.mark.parametrize("entity", [ClientsEntity(), ProductsEntity(), OrdersEntity()])
def test_built_in_schemas_get_the_quick_check(entity: Entity) -> None:
    assert entity.quick_check is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "pas-une-adresse"}, "email"),
        ({"name": ""}, "name"),
        ({"name": "x" * 36}, "name"),
        ({"code": None}, "code"),
        ({"code": "CL 001"}, "code"),
        ({"is_prospect": "oui"}, "is_prospect"),
    ],
)
def test_a_record_the_quick_check_refuses_is_named_by_the_reference_validator(
    changes: dict[str, Any], field: str
) -> None:
    entity = ClientsEntity()
    entity.validate(CLIENT)  # valid as it is
    record = {k: v for k, v in {**CLIENT, **changes}.items() if v is not None}
    with pytest.raises(RecordInvalid) as caught:
        entity.validate(record)
    assert caught.value.field == field
    assert not entity.passes_quick_check(record)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "object", "unevaluatedProperties": False},
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        {"type": "array", "items": [{"type": "string"}]},
        {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 3},
        {"$ref": "https://example.com/other.json"},
        {"properties": {"lines": {"type": "array", "minContains": 1}}},
    ],
)
def test_schemas_draft_7_would_read_differently_get_no_quick_check(
    schema: dict[str, Any],
) -> None:
    assert not draft7_equivalent(schema)


class Tagged(Entity):
    """An entity whose schema uses a 2020-12 keyword: validated by jsonschema alone."""

    name = "tagged"
    sage_table = "T"
    ssm_resource = "tags"
    key_fields = ("code",)
    fields: ClassVar = ()

    def load_schema(self) -> dict[str, Any]:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"tags": {"type": "array", "prefixItems": [{"type": "integer"}]}},
        }


def test_a_schema_without_quick_check_is_still_enforced() -> None:
    entity = Tagged()
    assert entity.quick_check is None
    entity.validate({"tags": [1, "two"]})
    with pytest.raises(RecordInvalid) as caught:
        entity.validate({"tags": ["one"]})
    assert caught.value.field == "tags.0"
