"""What an entity plugin declares, and the points it may override: a plugin author's page.

An entity is declarative first: its Sage table, its SSM resource, its canonical
fields with their owner (``sage``, ``ssm`` or ``both``), the side that wins when a
field owned by both changed on both sides, and its JSON Schema.  Code is only for
what a mapping cannot say. What the engine derives from the declaration (the fields
each side writes, the compiled schema…) is in ``derived.py``; the fields and their
normal form in ``fields.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .derived import Derivations, missing_field
from .errors import RecordInvalid
from .fields import FALSE_WORDS, TRUE_WORDS, ChildSpec, FieldSpec, Kind, Owner, normalise, sage_flag
from .messages import Words, declare
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
            "record_hash": "dossiersync.derived.record_hash",
            "draft7_equivalent": "dossiersync.derived.draft7_equivalent",
        },
    )


#: what entity modules have always imported from here (defined in ``fields.py``)
__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "ChildSpec",
    "Entity",
    "FieldSpec",
    "Kind",
    "Owner",
    "normalise",
    "sage_flag",
]


class Entity(Derivations):
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
    #: what several records are called in messages, per language (``{"en": "clients",
    #: "fr": "clients"}``; English messages say the entity's name)
    record_plural: ClassVar[Mapping[str, str]] = {}
    #: the causes of a refusal this entity gives (``Cause(code, figures)``), each a text
    #: per language with its figures as ``{name}`` placeholders: ``{"no_account": {"en":
    #: "order {ssm_id} has no account", "fr": …}}``; the core's are in dossiersync.messages
    causes: ClassVar[Mapping[str, Words]] = {}
    #: each canonical field in words, per language (``{"email": {"en": "e-mail address",
    #: "fr": "adresse e-mail"}}``; a line field as ``lines.quantity``); a field with none
    #: is named by its schema ``title``, else by its name
    labels: ClassVar[Mapping[str, Words]] = {}
    #: records read, compared and written with each record of this entity (its lines)
    children: ClassVar[tuple[ChildSpec, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = getattr(cls, "name", None)
        if isinstance(name, str):
            # the messages know an entity's words once its class exists, loaded or not
            declare(name, cls.record_noun, cls.record_plural, cls.causes)

    def load_schema(self) -> dict[str, Any]:
        """The JSON Schema of the canonical record (default: ``schema`` in the core's schemas)."""
        return load_packaged_schema(self.schema)

    # -- keys ------------------------------------------------------------------------

    #: canonical fields holding the Sage key, in key order
    key_fields: ClassVar[tuple[str, ...]]

    def sage_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        by_name = {f.name: f for f in self.fields}
        return tuple(str(row[by_name[n].sage]).strip() for n in self.key_fields)  # type: ignore[index]

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

    def child_from_sage(self, spec: ChildSpec, row: Mapping[str, Any]) -> dict[str, Any]:
        """One child in canonical terms: ``row`` is its Sage row in ``spec.sage_table``."""
        return {
            f.name: self.sage_value(f, row.get(f.sage), f"{spec.name}.{f.name}")
            for f in spec.fields
            if f.sage
        }

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
        field_name = ".".join(str(p) for p in e.absolute_path) or missing_field(e)
        problem = self.problem(e, field_name)
        raise RecordInvalid(problem.text(), field_name, problem)


def _order(value: Any) -> tuple[bool, Any]:
    """Sort key of a child key that may be missing."""
    return (value is None, value if value is not None else 0)


def _kind(child: ChildSpec, name: str) -> Kind:
    return next((f.kind for f in child.fields if f.name == name), "text")


def _json_value(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        return float(Decimal(value))
    return value
