"""Extra fields of a Sales Management implementation: their definitions, and how a value
is written on a record.

Listing and creating a field are documented calls (``GET``/``POST
/extrafields/{resource}``). How a field's *value* appears on a record, written and read,
is not published: two shapes are plausible, and :func:`find_shape` finds out which one
a tenant takes by writing a value on one record and reading it back, never assuming:

- ``flat``: the field is a field of the record, ``{"Z_dossier": "Acme France"}``;
- ``nested``: the record has an object of them, ``{"extraFields": {"Z_dossier": …}}``.

What a listed definition looks like is not published either: it is read by its signs
(:func:`definitions`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dossiersync.plugin import SsmAuthError, SsmNotFound, SsmRefused, SsmUnavailable

FLAT, NESTED = "flat", "nested"
#: in the order they are tried
SHAPES = (FLAT, NESTED)
NESTED_KEY = "extraFields"
#: the documented types of an extra field
TYPES = ("datetime", "text", "decimal", "bit", "list", "multivalue")
#: the resources the documentation gives extra fields to
RESOURCES = frozenset(
    {
        "accounts",
        "activities",
        "calendar",
        "contacts",
        "opportunities",
        "products",
        "rates",
        "salesorders",
        "users",
    }
)
#: how the description of a field dossiersync created starts: a field that does not say
#: so, and that the state store does not name, is someone else's and is never written
MARK = "dossiersync"


@dataclass(frozen=True)
class ExtraField:
    """One extra field of a resource, as listed."""

    resource: str
    name: str
    #: its type by name, or None when the listing does not show one (a number…)
    type: str | None
    description: str = ""
    id: int | None = None

    @property
    def marked(self) -> bool:
        """Whether its description says dossiersync made it."""
        return self.description.strip().lower().startswith(MARK)


def definitions(resource: str, listed: Iterable[Any]) -> list[ExtraField]:
    """The fields of a ``GET /extrafields/{resource}`` listing, read tolerantly: the name
    in ``fieldName`` (or ``name``), the type by name in ``type`` (or ``typeName``), the
    description in ``description`` or any of its translations; deleted ones left out."""
    found = []
    for item in listed:
        if not isinstance(item, Mapping) or item.get("deleted") is True:
            continue
        name = next((item[k] for k in ("fieldName", "name") if isinstance(item.get(k), str)), "")
        if not name:
            continue
        kind = next((item[k] for k in ("type", "typeName") if isinstance(item.get(k), str)), None)
        texts = [
            v for k, v in sorted(item.items()) if k.startswith("description") and isinstance(v, str)
        ]
        field_id = item.get("id")
        found.append(
            ExtraField(
                resource=resource,
                name=name,
                type=kind.lower() if kind else None,
                description=next((t for t in texts if t.strip().lower().startswith(MARK)), "")
                or (texts[0] if texts else ""),
                id=field_id
                if isinstance(field_id, int) and not isinstance(field_id, bool)
                else None,
            )
        )
    return found


def body(shape: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Extra field values as a record's body carries them in ``shape``."""
    if shape == FLAT:
        return dict(values)
    if shape == NESTED:
        return {NESTED_KEY: dict(values)}
    raise ValueError(f"unknown extra field shape {shape!r} (known: {', '.join(SHAPES)})")


def value_on(record: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """Whether a record read shows the extra field ``name``, and its value, in either shape."""
    nested = record.get(NESTED_KEY)
    if isinstance(nested, Mapping) and name in nested:
        return True, nested[name]
    if name in record:
        return True, record[name]
    return False, None


@dataclass
class Trial:
    """One shape tried on a record: what was written, what was read back."""

    shape: str
    taken: bool = False
    said: str = ""


@dataclass
class Finding:
    """What writing on one record and reading it back showed."""

    resource: str
    record_id: int
    shape: str | None = None
    trials: list[Trial] = field(default_factory=list)
    #: why the shape found cannot be used, when it cannot
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "record_id": self.record_id,
            "shape": self.shape,
            "trials": [{"shape": t.shape, "taken": t.taken, "said": t.said} for t in self.trials],
            "problem": self.problem,
        }


Update = Callable[[str, int, Mapping[str, Any]], None]
Read = Callable[[str, int], Mapping[str, Any]]


def find_shape(
    update: Update,
    read: Read,
    resource: str,
    record_id: int,
    names: Mapping[str, str],
    dossier: str,
) -> Finding:
    """Find out how the tenant takes extra field values, on one synced record.

    Each shape in turn: a probe text is written in the ``problem`` field
    (``PUT /{resource}/{id}``) and the record read back (``GET``); the first shape whose
    probe reads back is the tenant's. With it, the ``dossier`` list field is written
    alone and read back, which shows that a list field takes the dossier's name, and
    that a partial write keeps the other extra fields (an ``extraFields`` replaced whole
    would erase the tenant's own fields at every write). The probe is then emptied; the
    next sync writes the record's values. A write the tenant refuses is a shape not
    taken; an outage, refused keys or a record that does not exist (any more) stop the
    trial (raised: another record may be tried).
    """
    finding = Finding(resource, record_id)
    probe = f"{MARK}: trying how extra fields are written ({time.strftime('%Y-%m-%d %H:%M:%S')})"
    problem, group = names["problem"], names["dossier"]
    for shape in SHAPES:
        trial = Trial(shape)
        finding.trials.append(trial)
        if not _shows(update, read, trial, resource, record_id, body(shape, {problem: probe})):
            continue
        trial.taken = True
        finding.shape = shape
        written = body(shape, {group: dossier})
        try:
            update(resource, record_id, written)
        except (SsmAuthError, SsmUnavailable, SsmNotFound):
            raise
        except SsmRefused as exc:
            finding.problem = f"the {group} list field refused the dossier's name: {exc}"
            return finding
        record = read(resource, record_id)
        if value_on(record, group) != (True, dossier):
            finding.problem = (
                f"the {group} list field did not keep the dossier's name {dossier!r} "
                f"(read back: {value_on(record, group)[1]!r}); its values may have to be "
                "defined in Sales Management first"
            )
        elif value_on(record, problem) != (True, probe):
            finding.problem = (
                f"writing {group} alone emptied {problem}: a write replaces every extra field "
                "of the record, and would erase the implementation's own ones"
            )
        update(resource, record_id, body(shape, {problem: None}))
        return finding
    return finding


def _shows(
    update: Update,
    read: Read,
    trial: Trial,
    resource: str,
    record_id: int,
    written: Mapping[str, Any],
) -> bool:
    (name, value), *_ = _flat_values(written).items()
    try:
        update(resource, record_id, written)
    except (SsmAuthError, SsmUnavailable, SsmNotFound):
        raise
    except SsmRefused as exc:
        trial.said = f"refused: {exc}"
        return False
    shown, read_back = value_on(read(resource, record_id), name)
    if shown and read_back == value:
        trial.said = "read back as written"
        return True
    trial.said = "accepted, not read back" if not shown else f"read back as {read_back!r}"
    return False


def _flat_values(written: Mapping[str, Any]) -> dict[str, Any]:
    nested = written.get(NESTED_KEY)
    return dict(nested) if isinstance(nested, Mapping) else dict(written)
