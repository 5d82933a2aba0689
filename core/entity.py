"""What an entity plugin declares, and the canonical-record helpers the engine uses.

An entity is declarative first: its Sage table, its SSM resource, its canonical
fields with their owner (``sage``, ``ssm`` or ``both``), the side that wins when a
field owned by both changed on both sides, and its JSON Schema.  Code is only for
what a mapping cannot say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import fastjsonschema
import jsonschema

from .errors import RecordInvalid
from .messages import Problem, Words, field_label, problem_of
from .packaged import load_schema as load_packaged_schema
from .source import Unreadable
from .vocabulary import Direction

if TYPE_CHECKING:
    from .context import DossierContext
    from .vocabulary import SAGE_TO_SSM as SAGE_TO_SSM
    from .vocabulary import SSM_TO_SAGE as SSM_TO_SAGE
else:
    from .deprecation import moved

    # the directions live in the vocabulary now; plugins import them from the API
    __getattr__ = moved(
        __name__,
        {
            "SAGE_TO_SSM": "dossiersync.plugin.SAGE_TO_SSM",
            "SSM_TO_SAGE": "dossiersync.plugin.SSM_TO_SAGE",
        },
    )

Owner = Literal["sage", "ssm", "both"]
Kind = Literal["text", "bool", "int", "decimal"]


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: where it lives on each side and who owns it."""

    name: str
    sage: str | None = None
    ssm: str | None = None
    owner: Owner = "sage"
    kind: Kind = "text"
    #: the field refers to a record of this entity (held as its Sage key; SSM id in SSM)
    ref: str | None = None
    #: not a column of the entity's table: the entity fills it in ``enrich``
    virtual: bool = False


@dataclass(frozen=True)
class ChildSpec:
    """Records that live and die with a parent record: a document's lines.

    Sage holds them in their own table, each row carrying its parent's key columns; the
    canonical parent holds them as a list under ``name``, ordered by ``key``, so that a
    child added, changed or removed changes its parent (its hash, its diff).  In SSM they
    are either a field of the parent holding the list (``ssm``) or records of their own
    (``ssm_resource``) whose ``extId`` is ``<parent extId>:<child key>``: the engine
    creates, updates and deletes them with their parent.  In Sage a parent and its
    children are written in one transaction.
    """

    #: the canonical field of the parent holding the list
    name: str
    sage_table: str
    #: the child field telling the children of one parent apart (e.g. a line number)
    key: str
    fields: tuple[FieldSpec, ...]
    #: the parent's SSM field holding the children as a list (embedded children) …
    ssm: str | None = None
    #: … or the SSM resource holding them as records of their own
    ssm_resource: str | None = None
    #: the field of such a record naming its parent when it is created …
    ssm_parent: str | None = None
    #: … and when children are listed by parent (default: ``ssm_parent``)
    ssm_parent_filter: str | None = None
    #: columns of ``sage_table`` holding the parent's key, in key order (default: the
    #: parent's own key columns, under the same names)
    parent_columns: tuple[str, ...] = ()
    #: children written to Sage from SSM are numbered ``key_step``, ``2 * key_step``…
    key_step: int = 1

    @property
    def sage_columns(self) -> list[str]:
        return [f.sage for f in self.fields if f.sage and not f.virtual]

    @property
    def listed_by(self) -> str:
        return self.ssm_parent_filter or self.ssm_parent or ""


TRUE_WORDS = frozenset({"1", "true", "yes", "oui"})
FALSE_WORDS = frozenset({"0", "false", "no", "non"})


def sage_flag(value: Any) -> bool | None:
    """A Sage flag column's value: 0 or 1 (or the same as text, or a driver's
    ``True``/``False``); anything else (0.5, -7, 2) is a ValueError, never a guess."""
    if value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
    elif value in (0, 1):  # 0/1, True/False, 1.0, Decimal(1)
        return bool(value)
    raise ValueError(f"not 0 or 1: {value!r}")


def normalise(value: Any, kind: Kind) -> Any:
    """One representation per value, so both sides compare and hash alike."""
    if value is None:
        return None
    if kind == "text":
        text = str(value).strip()
        return text or None
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in TRUE_WORDS
        return bool(value)
    if kind == "int":
        if isinstance(value, int):  # bool included: a flag read as a number
            return int(value)
        # never truncated: 2.5 is no whole number, whatever type the driver gave it
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except ArithmeticError:
            raise ValueError(f"not a whole number: {value!r}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError(f"not a whole number: {value!r}")
        return int(number)
    if kind == "decimal":
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        text = format(d.normalize(), "f")
        return "0" if text in ("-0", "") else text
    raise ValueError(kind)


def record_hash(record: Mapping[str, Any]) -> str:
    payload = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Entity:
    """Base class of entity plugins.

    Subclasses set the class attributes and may override the hooks below.  The
    engine (``dossiersync.sync``) runs the generic sync pass with them.
    """

    name: ClassVar[str]
    depends_on: ClassVar[tuple[str, ...]] = ()
    directions: ClassVar[tuple[str, ...]] = (Direction.SAGE_TO_SSM,)
    sage_table: ClassVar[str]
    ssm_resource: ClassVar[str]
    fields: ClassVar[tuple[FieldSpec, ...]]
    #: the side whose value stands when a field owned by ``both`` changed on both sides
    conflict_winner: ClassVar[Literal["sage", "ssm"]] = "sage"
    #: JSON Schema of the canonical record, relative to ``dossiersync.schemas``; a plugin
    #: shipping its schema in its own package overrides ``load_schema`` instead
    schema: ClassVar[str]
    #: a record deleted in Sage is deleted in SSM: always, or only if created in Sage
    sage_deletions: ClassVar[Literal["always", "origin"]] = "always"
    #: a record deleted in SSM is deleted in Sage: never, or only if created in SSM
    ssm_deletions: ClassVar[Literal["never", "origin"]] = "never"
    #: SSM fields written with the value of another SSM field (e.g. a description)
    ssm_copies: ClassVar[dict[str, str]] = {}
    #: what one record is called in messages, per language (``{"en": "client", …}``)
    record_noun: ClassVar[Mapping[str, str]] = {}
    #: each canonical field in words, per language (``{"email": {"en": "e-mail address",
    #: "fr": "adresse e-mail"}}``; a line field as ``lines.quantity``); a field with none
    #: is named by its schema ``title``, else by its name
    labels: ClassVar[Mapping[str, Words]] = {}
    #: records read, compared and written with each record of this entity (its lines)
    children: ClassVar[tuple[ChildSpec, ...]] = ()

    # -- declarations derived once ---------------------------------------------------

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

    def load_schema(self) -> dict[str, Any]:
        """The JSON Schema of the canonical record (default: ``schema`` in the core's schemas)."""
        return load_packaged_schema(self.schema)

    @cached_property
    def sage_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.sage)

    @cached_property
    def sage_columns(self) -> list[str]:
        return [f.sage for f in self.fields if f.sage and not f.virtual]

    @cached_property
    def fields_to_ssm(self) -> tuple[FieldSpec, ...]:
        """Fields the connector writes to SSM: Sage-owned or shared, present in SSM."""
        return tuple(f for f in self.fields if f.ssm and f.sage and f.owner in ("sage", "both"))

    @cached_property
    def fields_to_sage(self) -> tuple[FieldSpec, ...]:
        """Fields SSM may change in Sage: shared ones present on both sides."""
        return tuple(f for f in self.fields if f.ssm and f.sage and f.owner == "both")

    @cached_property
    def sage_key_columns(self) -> tuple[str, ...]:
        """The Sage columns of ``key_fields``, in key order."""
        by_name = {f.name: f for f in self.fields}
        return tuple(str(by_name[n].sage) for n in self.key_fields)

    @cached_property
    def names_to_ssm(self) -> list[str]:
        """What a Sage -> SSM write may carry: ``fields_to_ssm`` and embedded children."""
        return [f.name for f in self.fields_to_ssm] + [c.name for c in self.children if c.ssm]

    @cached_property
    def names_to_sage(self) -> list[str]:
        """What SSM may change in Sage: ``fields_to_sage`` and children with a shared field."""
        shared = [c.name for c in self.children if any(f.owner == "both" for f in c.fields)]
        return [f.name for f in self.fields_to_sage] + shared

    # -- keys ------------------------------------------------------------------------

    #: canonical fields holding the Sage key, in key order
    key_fields: ClassVar[tuple[str, ...]]

    def sage_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        by_name = {f.name: f for f in self.fields}
        return tuple(str(row[by_name[n].sage]).strip() for n in self.key_fields)  # type: ignore[index]

    def with_key(self, record: Mapping[str, Any], key: Sequence[Any]) -> dict[str, Any]:
        """A canonical record completed with the fields of a Sage key."""
        return dict(record, **dict(zip(self.key_fields, key, strict=True)))

    def key_text(self, key: Sequence[Any]) -> str:
        """A Sage key as text; parts of a composite key are joined by ``:``."""
        return ":".join(str(part).strip() for part in key)

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        return tuple(text.split(":"))

    def ext_id(self, dossier_id: str, key_text: str) -> str:
        return f"{dossier_id}:{key_text}"

    def owns_key(self, key_text: str) -> bool:
        """Whether a key read back from an SSM record's extId is one of this entity's: as
        many parts as ``key_fields``, the parts whose column ``sage_where()`` filters holding
        the filtered values. So two entities writing one SSM resource (orders, and quotes
        as marked sales orders) each read only the records they wrote; override it when
        the key alone cannot tell (the engine also leaves out a record another entity of
        the dossier linked)."""
        try:
            key = self.key_from_text(key_text)
        except (ValueError, TypeError):
            return False
        if len(key) != len(self.key_fields):
            return False
        where = self.sage_where()
        columns = {f.name: f.sage for f in self.fields}
        for name, part in zip(self.key_fields, key, strict=True):
            column = columns.get(name)
            if column in where and str(part).strip() != str(where[column]).strip():
                return False
        return True

    # -- mapping ---------------------------------------------------------------------

    def sage_where(self) -> dict[str, Any]:
        """Equality filters selecting this entity's rows in its Sage table."""
        return {}

    def from_sage(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical record of a Sage row (its children, as the engine attached them
        under each child's ``name``, ordered by their key). A field whose column the row
        lacks (a concept the dossier's layout cannot hold, such as a prospect flag) is left
        out, so it is neither compared nor sent."""
        record = {
            f.name: self.sage_value(f, row.get(f.sage), f.name)
            for f in self.sage_fields
            if f.sage and f.sage in row
        }
        mapped = {f.sage for f in self.sage_fields}
        for column, value in row.items():
            # a column read for the engine (the modification time) that is not one
            if column not in mapped and isinstance(value, Unreadable):
                raise self.unreadable(column, value)
        for child in self.children:
            lines = (self.child_from_sage(child, r) for r in row.get(child.name) or ())
            record[child.name] = sorted(lines, key=lambda c: _order(c.get(child.key)))
        return record

    def from_ssm(self, record: Mapping[str, Any], ctx: DossierContext) -> dict[str, Any]:
        """The canonical view of an SSM record; references become Sage keys.

        Raises RecordPending when a referenced record is not linked yet and
        RecordMoved when it belongs to another dossier.
        """
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.ssm and f.ssm in record:
                value = ctx.ssm_client.field_value(record[f.ssm])
                if f.ref and value is not None:
                    out[f.name] = ctx.refs.sage_key(f.ref, int(value), f.name)
                else:
                    out[f.name] = normalise(value, f.kind)
        for child in self.children:
            if child.ssm and isinstance(record.get(child.ssm), list):
                out[child.name] = self.children_from_ssm(child, record[child.ssm], ctx)
        return out

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        """The SSM body for these fields; references become SSM ids (or RecordPending)."""
        by_name = {f.name: f for f in self.fields}
        body: dict[str, Any] = {}
        for name in names:
            f = by_name.get(name)
            if f is None or not f.ssm:
                continue  # a child list, or a field SSM does not hold
            value = record.get(name)
            if f.ref and value is not None:
                body[f.ssm] = ctx.refs.ssm_id(f.ref, str(value), f.name)
            else:
                body[f.ssm] = _json_value(value, f.kind)
        for child in self.children:
            if child.ssm and child.name in names:
                every = [f.name for f in child.fields]
                lines = record.get(child.name) or ()
                body[child.ssm] = [self.child_to_ssm(child, c, every, ctx) for c in lines]
        for target, source in self.ssm_copies.items():
            if source in body:
                body[target] = body[source]
        return body

    def to_sage(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        """The Sage columns of these fields (a child list is not a column); a new record
        also gets its key."""
        by_name = {f.name: f for f in self.fields}
        if create:
            names = [*self.key_fields, *names]
        return {
            by_name[n].sage: record.get(n)  # type: ignore[misc]
            for n in names
            if n in by_name and by_name[n].sage and not by_name[n].virtual
        }

    # -- child records ---------------------------------------------------------------

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

    def child_from_sage(self, spec: ChildSpec, row: Mapping[str, Any]) -> dict[str, Any]:
        """One child in canonical terms: ``row`` is its Sage row in ``spec.sage_table``."""
        return {
            f.name: self.sage_value(f, row.get(f.sage), f"{spec.name}.{f.name}")
            for f in spec.fields
            if f.sage
        }

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

    def children_from_ssm(
        self, spec: ChildSpec, records: Iterable[Mapping[str, Any]], ctx: DossierContext
    ) -> list[dict[str, Any]]:
        """SSM children (``records``, as SSM holds them) in canonical terms, in their SSM
        order; one with no key of its own is numbered after the others (``key_step`` apart)."""
        out: list[dict[str, Any]] = []
        for n, record in enumerate(records, 1):
            line = self.child_from_ssm(spec, record, ctx)
            if line.get(spec.key) is None:
                line[spec.key] = normalise(n * spec.key_step, _kind(spec, spec.key))
            out.append(line)
        return out

    def child_from_ssm(
        self, spec: ChildSpec, record: Mapping[str, Any], ctx: DossierContext
    ) -> dict[str, Any]:
        """One child in canonical terms: ``spec`` says which kind of child, ``record`` is
        the child as SSM holds it (an item of the parent's list, or a record of its own);
        references become Sage keys."""
        out: dict[str, Any] = {}
        for f in spec.fields:
            if f.ssm and f.ssm in record:
                value = ctx.ssm_client.field_value(record[f.ssm])
                if f.ref and value is not None:
                    out[f.name] = ctx.refs.sage_key(f.ref, int(value), f"{spec.name}.{f.name}")
                else:
                    out[f.name] = normalise(value, f.kind)
        return out

    def child_to_ssm(
        self,
        spec: ChildSpec,
        line: Mapping[str, Any],
        names: Iterable[str],
        ctx: DossierContext,
    ) -> dict[str, Any]:
        """The SSM body of one child: ``spec`` says which kind of child (the ``ChildSpec``),
        ``line`` is the child itself in canonical terms (one item of the parent record's
        ``spec.name`` list), ``names`` the child's fields to send; references become SSM
        ids."""
        by_name = {f.name: f for f in spec.fields}
        body: dict[str, Any] = {}
        for name in names:
            f = by_name[name]
            if not f.ssm:
                continue
            value = line.get(name)
            if f.ref and value is not None:
                body[f.ssm] = ctx.refs.ssm_id(f.ref, str(value), f"{spec.name}.{f.name}")
            else:
                body[f.ssm] = _json_value(value, f.kind)
        return body

    def child_to_sage(
        self, spec: ChildSpec, parent_key: Sequence[Any], line: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The Sage row of one child (``line``, canonical): its parent's key columns, then
        its own."""
        row = self.child_where(spec, parent_key)
        row.update({f.sage: line.get(f.name) for f in spec.fields if f.sage and not f.virtual})
        return row

    def child_ext_id(self, parent_ext_id: str, spec: ChildSpec, line: Mapping[str, Any]) -> str:
        return f"{parent_ext_id}:{line.get(spec.key)}"

    # -- reading ---------------------------------------------------------------------

    def parts(self) -> tuple[Entity, ...]:
        """The entities this plugin runs, in order (e.g. product families, then products)."""
        return (self,)

    def watched_tables(self) -> tuple[str, ...]:
        """The Sage tables a change of this entity shows in (its own, and any table it
        reads more from): the service's change probe watches them, and a Sage -> SSM
        pass reads nothing when none of them changed. An entity that reads other tables
        (``enrich``, ``extra_changed_keys``) names them here; until it does, its passes
        always read."""
        return (self.sage_table, *dict.fromkeys(c.sage_table for c in self.children))

    def knows_its_tables(self) -> bool:
        """Whether :meth:`watched_tables` covers every table the entity reads."""
        cls = type(self)
        reads_more = (
            cls.enrich is not Entity.enrich
            or cls.extra_changed_keys is not Entity.extra_changed_keys
        )
        return not reads_more or cls.watched_tables is not Entity.watched_tables

    def watched_resources(self) -> tuple[str, ...]:
        """The SSM resources an SSM → Sage pass of this entity reads: probed for changes
        (its own, and its children's when they are records of their own)."""
        children = (c.ssm_resource for c in self.children if c.ssm_resource)
        return (self.ssm_resource, *dict.fromkeys(children))

    def enrich(self, rows: list[dict[str, Any]], ctx: DossierContext) -> None:
        """Complete a batch of Sage rows with values from other tables (``virtual`` fields)."""

    def extra_changed_keys(self, ctx: DossierContext, since: str | None) -> set[str]:
        """Keys of records changed through another table since ``since`` (e.g. stock)."""
        return set()

    def ssm_unlinked_filter(self, ctx: DossierContext) -> Mapping[str, int | str] | None:
        """Field values selecting SSM records with no extId that may belong to the dossier
        (``belongs_to_dossier`` decides); ``{}``: any record may.

        None: records created in SSM are not taken into Sage.
        """
        return None

    # -- rules -----------------------------------------------------------------------

    def ssm_may_change(self, base: Mapping[str, Any]) -> tuple[str, ...]:
        """Fields whose SSM-side edits reach Sage for a record in this state."""
        return tuple(self.names_to_sage)

    def check_ssm_edit(
        self, record: Mapping[str, Any], base: Mapping[str, Any], ctx: DossierContext
    ) -> None:
        """Raise RecordRefused when an SSM edit of a synced record must not stand (an order
        re-pointed to another account); nothing is written then."""

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

    def belongs_to_dossier(self, record: Mapping[str, Any], ctx: DossierContext) -> bool:
        """Whether an SSM record with no extId was created for this dossier."""
        return False

    def new_sage_key(self, record: Mapping[str, Any], ctx: DossierContext) -> tuple[Any, ...]:
        raise NotImplementedError(f"{self.name} records are not created in Sage")

    def after_sage_write(
        self, record: Mapping[str, Any], changed: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        """SSM fields to set once SSM edits reached Sage (e.g. ``readOnly``)."""
        return {}

    # -- validation ------------------------------------------------------------------

    def validate(
        self, record: Mapping[str, Any], lengths: Mapping[str, int | None] | None = None
    ) -> None:
        """Raise RecordInvalid naming the first failing field and the rule; ``lengths``
        are the text lengths of the dossier's layout (:meth:`text_lengths`).

        The compiled check passes most records; a record it refuses is judged by the
        reference validator (``jsonschema``), which names the field and the rule.
        """
        if self.passes_quick_check(record, lengths):
            return
        validator = self.checks(lengths)[0]
        errors = sorted(validator.iter_errors(dict(record)), key=lambda e: e.path)
        if not errors:
            return
        e = errors[0]
        field_name = ".".join(str(p) for p in e.absolute_path) or _missing_field(e)
        problem = self.problem(e, field_name)
        raise RecordInvalid(problem.text(), field_name, problem)

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


def _missing_field(error: jsonschema.ValidationError) -> str:
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        for name in required:
            if name not in error.instance:
                return str(name)
    return "(record)"


def _order(value: Any) -> tuple[bool, Any]:
    """Sort key of a child key that may be missing."""
    return (value is None, value if value is not None else 0)


#: a field kind as the JSON Schema type messages name (``int``: "a whole number")
_JSON_TYPES = {"text": "string", "int": "integer", "decimal": "number"}


def _kind(child: ChildSpec, name: str) -> Kind:
    return next((f.kind for f in child.fields if f.name == name), "text")


def _json_value(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        return float(Decimal(value))
    return value
