"""What the engine derives from an entity's declaration: the fields each side writes,
the key's columns, the schema compiled with a dossier's text lengths, fields in words,
a Sage value in canonical form. ``Entity`` inherits it; an author reads ``entity.py``
and never overrides these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import fastjsonschema
import jsonschema

from .errors import RecordInvalid
from .fields import ChildSpec, FieldSpec, normalise, sage_flag
from .messages import Problem, Words, field_label, problem_of
from .source import Unreadable


def record_hash(record: Mapping[str, Any]) -> str:
    payload = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Derivations:
    """The engine's side of an entity, derived from its declaration (``Entity``)."""

    # what the derivations read of the declaration (``Entity`` gives them their values)
    sage_table: ClassVar[str]
    fields: ClassVar[tuple[FieldSpec, ...]]
    key_fields: ClassVar[tuple[str, ...]]
    children: ClassVar[tuple[ChildSpec, ...]] = ()
    labels: ClassVar[Mapping[str, Words]] = {}

    def load_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def sage_where(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- what the declaration says of the fields ---------------------------------------

    @cached_property
    def sage_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.sage)

    @cached_property
    def sage_columns(self) -> list[str]:
        return [f.sage for f in self.fields if f.sage and not f.virtual]

    @cached_property
    def sage_key_columns(self) -> tuple[str, ...]:
        """The Sage columns of ``key_fields``, in key order."""
        by_name = {f.name: f for f in self.fields}
        return tuple(str(by_name[n].sage) for n in self.key_fields)

    @cached_property
    def fields_to_ssm(self) -> tuple[FieldSpec, ...]:
        """Fields the connector writes to SSM: Sage-owned or shared, present in SSM."""
        return tuple(f for f in self.fields if f.ssm and f.sage and f.owner in ("sage", "both"))

    @cached_property
    def fields_to_sage(self) -> tuple[FieldSpec, ...]:
        """Fields SSM may change in Sage: shared ones present on both sides."""
        return tuple(f for f in self.fields if f.ssm and f.sage and f.owner == "both")

    @cached_property
    def names_to_ssm(self) -> list[str]:
        """What a Sage -> SSM write may carry: ``fields_to_ssm`` and embedded children."""
        return [f.name for f in self.fields_to_ssm] + [c.name for c in self.children if c.ssm]

    @cached_property
    def names_to_sage(self) -> list[str]:
        """What SSM may change in Sage: ``fields_to_sage`` and children with a shared field."""
        shared = [c.name for c in self.children if any(f.owner == "both" for f in c.fields)]
        return [f.name for f in self.fields_to_sage] + shared

    # -- keys and children ------------------------------------------------------------

    def with_key(self, record: Mapping[str, Any], key: Sequence[Any]) -> dict[str, Any]:
        """A canonical record completed with the fields of a Sage key."""
        return dict(record, **dict(zip(self.key_fields, key, strict=True)))

    def child_parent_columns(self, child: ChildSpec) -> tuple[str, ...]:
        """The columns of the child table holding the parent's key, in key order."""
        return child.parent_columns or self.sage_key_columns

    def child_where(self, child: ChildSpec, key: Sequence[Any]) -> dict[str, Any]:
        """Equality filters selecting the children of the parent with this Sage key."""
        return dict(zip(self.child_parent_columns(child), key, strict=True))

    def children_where(self, child: ChildSpec) -> dict[str, Any]:
        """The entity's ``sage_where`` on the child table (its filters on key columns)."""
        columns = set(self.child_parent_columns(child))
        return {c: v for c, v in self.sage_where().items() if c in columns}

    # -- the schema, compiled ---------------------------------------------------------

    @cached_property
    def validator(self) -> jsonschema.Draft202012Validator:
        return self.checks(None)[0]

    @cached_property
    def quick_check(self) -> Callable[[Any], Any] | None:
        """The schema compiled to Python (``fastjsonschema``), which validates a record
        many times faster; None when the schema uses a keyword whose meaning that
        compiler (draft 7) may not share with draft 2020-12."""
        return self.checks(None)[1]

    def checks(
        self, lengths: Mapping[str, int | None] | None
    ) -> tuple[jsonschema.Draft202012Validator, Callable[[Any], Any] | None]:
        """The validator and quick check of the schema with the text ``lengths`` of a
        dossier's layout (see :meth:`text_lengths`); the schema's own without."""
        key = tuple(sorted((lengths or {}).items()))
        cache: dict[Any, Any] = self.__dict__.setdefault("_checks", {})
        if key not in cache:
            schema = self.schema_with_lengths(dict(key))
            quick: Callable[[Any], Any] | None = None
            if draft7_equivalent(schema):
                try:
                    quick = fastjsonschema.compile(schema, use_default=False)
                except fastjsonschema.JsonSchemaDefinitionException:
                    quick = None
            cache[key] = (jsonschema.Draft202012Validator(schema), quick)
        found: tuple[jsonschema.Draft202012Validator, Callable[[Any], Any] | None]
        found = cache[key]
        return found

    def schema_with_lengths(self, lengths: Mapping[str, int | None]) -> dict[str, Any]:
        """The schema whose text fields have the ``maxLength`` of ``lengths`` (by field
        path, ``lines.designation`` for a child's), none where the length is ``None``."""
        schema = json.loads(json.dumps(self.load_schema()))
        for path, length in lengths.items():
            node: Any = schema
            for part in path.split("."):
                if isinstance(node, dict) and isinstance(node.get("items"), dict):
                    node = node["items"]
                node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                continue
            if length is None:
                node.pop("maxLength", None)
            else:
                node["maxLength"] = length
        return schema

    def text_lengths(self, sage: Any) -> dict[str, int | None]:
        """How long each text field held in Sage may be in ``sage``'s layout, by field
        path (``name``, ``lines.designation``): the mapping's lengths, which replace the
        schema's (a Ciel name holds 50 characters where the reference allows 35)."""
        out: dict[str, int | None] = {}
        parts = [(self.sage_table, self.fields, "")]
        parts += [(c.sage_table, c.fields, f"{c.name}.") for c in self.children]
        for table, fields, prefix in parts:
            lengths = sage.text_lengths(table)
            for f in fields:
                if f.sage and f.sage in lengths:
                    out[prefix + f.name] = lengths[f.sage]
        return out

    def passes_quick_check(
        self, record: Mapping[str, Any], lengths: Mapping[str, int | None] | None = None
    ) -> bool:
        check = self.checks(lengths)[1]
        if check is None:
            return False
        try:
            check(dict(record))
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    # -- words --------------------------------------------------------------------------

    @cached_property
    def field_labels(self) -> dict[str, Words]:
        """``labels``, completed with the ``title`` of the schema's properties."""
        found: dict[str, Words] = {}

        def walk(node: Any, prefix: str) -> None:
            if not isinstance(node, dict):
                return
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict):
                    if isinstance(sub.get("title"), str):
                        found[prefix + name] = {"en": sub["title"]}
                    walk(sub, f"{prefix}{name}.")
                    walk(sub.get("items"), f"{prefix}{name}.")

        walk(self.load_schema(), "")
        return {**found, **self.labels}

    def problem(self, error: jsonschema.ValidationError, path: str | None) -> Problem:
        """A validator's error as a rule, a field and a value (the words come from it)."""
        return problem_of(
            str(error.validator),
            error.validator_value,
            error.instance,
            path,
            self.field_labels,
            error.schema if isinstance(error.schema, dict) else None,
        )

    def sage_value(self, f: FieldSpec, value: Any, path: str) -> Any:
        """A Sage value in canonical form; RecordInvalid naming the field when the source
        could not read it as it is, or it is not of the field's kind (a flag of 0.5 or -7
        is neither 0 nor 1: never a guess)."""
        if isinstance(value, Unreadable):
            raise self.unreadable(path, value)
        try:
            return sage_flag(value) if f.kind == "bool" else normalise(value, f.kind)
        except (ValueError, TypeError, ArithmeticError):
            limit: Any = [0, 1] if f.kind == "bool" else _JSON_TYPES.get(f.kind, f.kind)
            rule = "enum" if f.kind == "bool" else "type"
            problem = Problem(rule, path, value, limit, field_label(self.field_labels, path))
            raise RecordInvalid(problem.text(), path, problem) from None

    def unreadable(self, path: str, value: Unreadable) -> RecordInvalid:
        """The error of a record holding a value its source could not read as it is."""
        labels = self.field_labels
        problem = Problem("unreadable", path, value.value, value.reason, field_label(labels, path))
        return RecordInvalid(problem.text(), path, problem)

    def ssm_path(self, path: str) -> str:
        """A canonical field path in SSM's names, for incidents about an SSM record:
        ``lines[0].discount`` -> ``lines[0].discount1``."""
        head, dot, rest = path.partition(".")
        name, bracket, index = head.partition("[")
        child = next((c for c in self.children if c.name == name), None)
        if child is not None:
            inner = next((f.ssm for f in child.fields if f.name == rest and f.ssm), rest)
            return f"{child.ssm or name}{bracket}{index}{dot}{inner}"
        return next((f.ssm for f in self.fields if f.name == name and f.ssm), name) + (
            bracket + index + dot + rest
        )


#: a field kind as the JSON Schema type messages name (``int``: "a whole number")
_JSON_TYPES = {"text": "string", "int": "integer", "decimal": "number"}


#: keywords whose meaning is the same in draft 7 and draft 2020-12 (not ``$ref`` beside
#: other keywords, which draft 7 ignores; not array-form ``items``)
DRAFT7_EQUIVALENT = frozenset(
    {
        "$schema", "$id", "$ref", "$defs", "definitions", "$comment", "title", "description",
        "default", "examples", "type", "enum", "const", "properties", "required",
        "additionalProperties", "patternProperties", "propertyNames", "minProperties",
        "maxProperties", "maxLength", "minLength", "pattern", "format", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems",
        "uniqueItems", "contains", "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
    }
)  # fmt: skip
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_ANNOTATIONS = frozenset({"$comment", "title", "description", "default", "examples"})


def draft7_equivalent(node: Any) -> bool:
    """Whether a draft 2020-12 schema means the same when read as draft 7."""
    if isinstance(node, bool):
        return True
    if not isinstance(node, dict):
        return False
    if not set(node) <= DRAFT7_EQUIVALENT:
        return False
    if "$ref" in node:
        ref = node["$ref"]
        if not (isinstance(ref, str) and ref.startswith("#/")):
            return False
        if set(node) - {"$ref", "$schema", "$id", "$defs"} - _ANNOTATIONS:
            return False
    for key, value in node.items():
        if key in _SCHEMA_MAPS:
            if not all(draft7_equivalent(v) for v in value.values()):
                return False
        elif key in ("anyOf", "oneOf", "allOf"):
            if not all(draft7_equivalent(v) for v in value):
                return False
        elif key in ("additionalProperties", "propertyNames", "items", "contains", "not"):
            if not draft7_equivalent(value):  # array-form items is not a schema: refused
                return False
        elif key in ("if", "then", "else") and not draft7_equivalent(value):
            return False
    return True


def missing_field(error: jsonschema.ValidationError) -> str:
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        for name in required:
            if name not in error.instance:
                return str(name)
    return "(record)"
