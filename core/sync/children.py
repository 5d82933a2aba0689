"""A record's children (a document's lines): what SSM must hold of them after a Sage ->
SSM write, and what Sage must hold of them after an SSM -> Sage write.

A child is matched by its key in Sage and by its extId (``<parent extId>:<child key>``)
in SSM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..context import DossierContext
from ..entity import ChildSpec, Entity
from ..errors import SsmNotFound, SsmUnavailable
from ..source import SageSource
from ..target import SsmTarget


@dataclass
class ChildWrites:
    """What SSM must hold of one kind of child of a record (``ChildSpec.ssm_resource``)."""

    spec: ChildSpec
    #: what the extIds of the record's children start with
    prefix: str
    #: ``(extId, full body, changed fields' body or None when the last agreed child is
    #: unknown)``, in the children's order
    planned: list[tuple[str, dict[str, Any], dict[str, Any] | None]]


# -- Sage -> SSM ------------------------------------------------------------


def ssm_child_writes(
    entity: Entity,
    ctx: DossierContext,
    canonical: dict[str, Any],
    base: dict[str, Any] | None,
    parent_ext: str,
    realign: bool,
) -> list[ChildWrites]:
    """The children with SSM records of their own to write with this record: all of
    them for a new record (``base`` None), else those of a kind that changed."""
    out: list[ChildWrites] = []
    for child in entity.children:
        if not child.ssm_resource:
            continue
        lines = canonical.get(child.name) or []
        if base is not None and not realign and base.get(child.name) == lines:
            continue
        before = {c.get(child.key): c for c in (base or {}).get(child.name) or []}
        every = [f.name for f in child.fields]
        planned: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for line in lines:
            full = entity.child_to_ssm(child, line, every, ctx)
            old = before.get(line.get(child.key))
            diff = None
            if old is not None and not realign:
                names = [n for n in every if line.get(n) != old.get(n)]
                diff = entity.child_to_ssm(child, line, names, ctx) if names else {}
            planned.append((entity.child_ext_id(parent_ext, child, line), full, diff))
        out.append(ChildWrites(child, parent_ext + ":", planned))
    return out


def send_ssm_children(
    client: SsmTarget, children: list[ChildWrites], parent_id: int, new: bool
) -> None:
    """Runs in the pool: make a record's SSM children the ones planned (matched by
    extId); children of the record with no extId of this parent are left alone.

    A create whose answer was lost does not stop the others: the first such error is
    raised once every child was sent."""
    lost: SsmUnavailable | None = None
    for kind in children:
        spec, resource = kind.spec, kind.spec.ssm_resource or ""
        held: dict[str, dict[str, Any]] = {}
        if not new:
            for record in client.list_changed(resource, equals={spec.listed_by: parent_id}):
                ext = str(record.get("extId") or "")
                if ext.startswith(kind.prefix):
                    held[ext] = record
        for ext, full, diff in kind.planned:
            found = held.pop(ext, None)
            if found is None:
                parent = {spec.ssm_parent or "": parent_id, "extId": ext}
                try:
                    client.create(resource, {**full, **parent})
                except SsmUnavailable as exc:
                    if not exc.may_have_acted:
                        raise
                    # perhaps created: the others are sent, this one is looked up (by
                    # extId, with the record's other children) when the pass sends
                    # them again
                    lost = lost or exc
            elif diff is None or diff:
                client.update(resource, int(found["id"]), full if diff is None else diff)
        for record in held.values():
            try:
                client.delete(resource, int(record["id"]))
            except SsmNotFound:
                pass
    if lost is not None:
        raise lost


# -- SSM -> Sage ------------------------------------------------------------


def shared_view(entity: Entity, name: str, value: Any) -> Any:
    """What SSM may change of a field's value: of a list of children, each child's key
    and shared fields."""
    child = next((c for c in entity.children if c.name == name), None)
    if child is None:
        return value
    names = [child.key] + [f.name for f in child.fields if f.owner == "both" and f.ssm]
    return [{n: line.get(n) for n in names} for line in value or []]


def merge_children(entity: Entity, name: str, current: Any, incoming: Any) -> Any:
    """A field's value once SSM's edit is applied: SSM's children, each completed with
    what Sage holds of the child with the same key."""
    child = next((c for c in entity.children if c.name == name), None)
    if child is None:
        return incoming
    held = {line.get(child.key): line for line in current or []}
    return [{**held.get(line.get(child.key), {}), **line} for line in incoming or []]


def write_sage_children(
    entity: Entity,
    sage: SageSource,
    sage_key: tuple[Any, ...],
    before: dict[str, Any],
    after: dict[str, Any],
    names: list[str],
) -> None:
    """Make the Sage rows of the changed kinds of children the ones of ``after``, in
    the caller's transaction (a child is matched by its key)."""
    for child in entity.children:
        if child.name not in names:
            continue
        columns = list(sage.key_columns(child.sage_table))
        old = {c.get(child.key): c for c in before.get(child.name) or []}
        new = {c.get(child.key): c for c in after.get(child.name) or []}
        for number, line in new.items():
            row = entity.child_to_sage(child, sage_key, line)
            if number not in old:
                sage.insert(child.sage_table, row)
            elif line != old[number]:
                sage.update(child.sage_table, [row[c] for c in columns], row)
        for number, line in old.items():
            if number not in new:
                row = entity.child_to_sage(child, sage_key, line)
                sage.delete(child.sage_table, [row[c] for c in columns])


def name_ssm_children(
    entity: Entity,
    ctx: DossierContext,
    child: ChildSpec,
    parent_id: int,
    parent_ext: str,
    record: dict[str, Any],
) -> None:
    """Give SSM children written to Sage their extIds (they come in the order of their
    ids, as they were read) and what Sage computed of them (its own fields)."""
    client, resource = ctx.ssm_client, child.ssm_resource or ""
    held = client.list_changed(resource, equals={child.listed_by: parent_id})
    ordered = sorted(held, key=lambda r: int(r["id"]))
    owned = [f.name for f in child.fields if f.owner == "sage" and f.ssm]
    for found, line in zip(ordered, record.get(child.name) or [], strict=False):
        body = entity.child_to_ssm(child, line, owned, ctx) if owned else {}
        body["extId"] = entity.child_ext_id(parent_ext, child, line)
        if any(found.get(k) != v for k, v in body.items()):
            client.update(resource, int(found["id"]), body)
