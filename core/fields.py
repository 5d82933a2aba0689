"""A canonical field and a kind of child record, as an entity declares them, and the one
normal form of each value (both sides compare and hash alike)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

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
