"""``sync --dry-run``: what the next sync would do, without writing anything anywhere.

The preview runs the real passes — the same code, the same decisions — against
stand-ins that keep every write to themselves:

- the **state** is a copy in a temporary SQLite file (links, cursors, open incidents,
  dossiers), thrown away at the end: the real store is only read;
- the **Sales Management** side is the real API for reads; creates, updates and
  deletions are recorded, not sent (a created record gets a negative stand-in id, so
  the records that refer to it in the same preview can be shown);
- the **Sage** source holds its writes (``SageSource.hold_writes``): they run inside one
  transaction that is never committed (each record's writes in a savepoint, as a real
  sync commits them one by one), so the rest of the pass reads what it would read after
  them; the transaction is rolled back at the end and the dossier is left as it was;
- hooks that tell the outside world (run finished, incident opened) are not fired.

What the passes journaled in the copy is then the answer: per dossier, entity and
direction, each record's action (``created``, ``updated``, ``deleted``, ``failed``…,
the journal's own words), with the fields written — and, for an update, each field's
value before and after.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from .config import Config
from .context import DossierContext
from .lang import N_, _, language, spoken, term
from .messages import incident_text
from .source import SageSource
from .state.models import Dossier, DossierEntity, Event, Incident, Link, Setting, StatusShown
from .state.store import StateStore
from .target import Record, SsmTarget, WriteResult

#: journal actions that are not worth showing in a preview
QUIET_ACTIONS = frozenset({"unchanged"})
#: state tables the passes read, copied in this order (foreign keys first)
COPIED = (Dossier, DossierEntity, Link, Incident, Setting, StatusShown)


@dataclass
class Write:
    """One write the sync would make."""

    side: str  # "ssm" or "sage"
    action: str  # "create", "update" or "delete"
    target: str  # SSM resource or Sage table
    key: str | None = None  # Sage key (text) when known
    id: int | None = None  # SSM id (negative: a record the preview would create)
    fields: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "side": self.side,
            "action": self.action,
            "target": self.target,
            "key": self.key,
            "id": self.id if self.id is None or self.id > 0 else None,
        }
        if self.action == "update" and self.before is not None:
            out["changes"] = {
                name: {"before": self.before.get(name), "after": value}
                for name, value in self.fields.items()
                if self.before.get(name) != value
            }
        elif self.action != "delete":
            out["fields"] = {k: v for k, v in self.fields.items() if not _stand_in(v)}
        return out


def _stand_in(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value < 0


@dataclass
class Step:
    """One pass of the preview: a dossier's entity in one direction."""

    dossier_id: str
    entity: str
    direction: str
    run_id: int
    outcome: str = "running"
    message: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    #: a failed record's incident (its English message and its notice), by record key:
    #: the preview in words says it in the command line's language; JSON keeps the English
    notices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "direction": self.direction,
            "outcome": self.outcome,
            "message": self.message,
            "counts": self.counts,
            "records": self.records,
            "writes": [w.as_dict() for w in self.writes],
        }


class Book:
    """Where the stand-ins record what they were asked to write, pass by pass."""

    def __init__(self) -> None:
        self.steps: dict[int, Step] = {}
        self._current = threading.local()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.created: dict[tuple[str, int], dict[str, Any]] = {}
        self.updated: dict[tuple[str, int], dict[str, Any]] = {}
        self.deleted: set[tuple[str, int]] = set()
        #: entity name -> its SSM resource (to name the records of SSM updates)
        self.resources: dict[str, str] = {}

    def start(self, run: Any) -> None:
        step = Step(run.dossier_id, run.entity, run.direction, run.id)
        with self._lock:
            self.steps[run.id] = step
        self.current = step

    @property
    def current(self) -> Step | None:
        step: Step | None = getattr(self._current, "step", None)
        if step is None and self.steps:
            step = self.steps[max(self.steps)]  # a pass's worker threads
        return step

    @current.setter
    def current(self, step: Step | None) -> None:
        self._current.step = step

    def record(self, write: Write) -> None:
        step = self.current
        if step is not None:
            with self._lock:
                step.writes.append(write)

    def new_id(self) -> int:
        with self._lock:
            return -next(self._ids)


class PreviewTarget:
    """The real SSM client for reads; writes are recorded, never sent."""

    def __init__(self, real: SsmTarget, book: Book, dossier_id: str) -> None:
        self.real = real
        self.book = book
        self.dossier_id = dossier_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    # reads: as they would be after the writes the preview kept to itself, so the rest
    # of the sync decides as it would (no echo of an update taken for a change in SSM)
    def _after(self, resource: str, record: Record) -> Record | None:
        """``record`` as read after the recorded writes; ``None`` once deleted."""
        record_id = record.get("id")
        if not isinstance(record_id, int):
            return record
        if (resource, record_id) in self.book.deleted:
            return None
        changes = self.book.updated.get((resource, record_id))
        return dict(record, **changes) if changes else record

    def _listed(self, resource: str, records: Iterable[Record], deleted: bool) -> Iterator[Record]:
        """A listing as read after the recorded writes (one deleted: left out, or shown
        deleted where the listing shows deleted records)."""
        for record in records:
            after = self._after(resource, record)
            if after is not None:
                yield after
            elif deleted:
                yield dict(record, deleted=True)

    def list_changed(self, resource: str, **kwargs: Any) -> Iterator[Record]:
        listing = self.real.list_changed(resource, **kwargs)
        return self._listed(resource, listing, bool(kwargs.get("deleted")))

    def list_with_unlinked(
        self,
        resource: str,
        ext_prefix: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        deleted: bool = False,
    ) -> Iterator[Record]:
        from .sync.to_sage import with_unlinked

        listing = with_unlinked(self.real, resource, ext_prefix, overlap_seconds, deleted, since)
        return self._listed(resource, listing, deleted)

    def find(
        self, resource: str, *, ext_ids: Sequence[str] = (), ids: Sequence[int] = ()
    ) -> Iterator[Record]:
        real_ids = [i for i in ids if i > 0]
        for i in ids:
            if i <= 0 and (resource, i) in self.book.created:
                yield self.book.created[(resource, i)]
        if ext_ids or real_ids:
            for record in self.real.find(resource, ext_ids=ext_ids, ids=real_ids):
                after = self._after(resource, record)
                if after is not None:
                    yield after

    def get(self, resource: str, record_id: int) -> Record:
        if record_id <= 0:
            return dict(self.book.created.get((resource, record_id), {"id": record_id}))
        record = self.real.get(resource, record_id)
        return self._after(resource, record) or dict(record, deleted=True)

    def bulk_limit(self, resource: str) -> int:
        return self.real.bulk_limit(resource)

    def changes_since(
        self, resource: str, since: str, *, overlap_seconds: int = 0, limit: int = 1
    ) -> list[Record]:
        return self.real.changes_since(
            resource, since, overlap_seconds=overlap_seconds, limit=limit
        )

    def changed_at(self, record: Mapping[str, Any]) -> str | None:
        return self.real.changed_at(record)

    def fk_id(self, value: Any) -> int | None:
        return self.real.fk_id(value)

    # writes
    def _key(self, body: Mapping[str, Any]) -> str | None:
        ext = body.get("extId")
        prefix = f"{self.dossier_id}:"
        if isinstance(ext, str) and ext.startswith(prefix):
            return ext[len(prefix) :]
        return None

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        new_id = self.book.new_id()
        self.book.created[(resource, new_id)] = dict(body, id=new_id)
        self.book.record(Write("ssm", "create", resource, self._key(body), new_id, dict(body)))
        return new_id

    def bulk_create(self, resource: str, bodies: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return [WriteResult(id=self.create(resource, body)) for body in bodies]

    def _befores(self, resource: str, ids: Sequence[int]) -> dict[int, Record]:
        return {int(r["id"]): r for r in self.find(resource, ids=ids)}

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        self.bulk_update(resource, [(record_id, body)])

    def bulk_update(
        self, resource: str, items: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        befores = self._befores(resource, [i for i, _ in items])
        for record_id, body in items:
            before = befores.get(record_id, {})
            shown = {k: self._comparable(before.get(k)) for k in body}
            self.book.record(
                Write("ssm", "update", resource, self._key(before), record_id, dict(body), shown)
            )
            if record_id > 0:
                self.book.updated.setdefault((resource, record_id), {}).update(body)
            else:
                self.book.created.setdefault((resource, record_id), {}).update(body)
        return [WriteResult(id=record_id) for record_id, _ in items]

    def _comparable(self, value: Any) -> Any:
        """A value as read back, in the shape it is written (a foreign key as its id)."""
        if isinstance(value, Mapping) and "id" in value:
            return self.real.fk_id(value)
        return value

    def delete(self, resource: str, record_id: int) -> None:
        self.book.record(Write("ssm", "delete", resource, None, record_id))
        self.book.deleted.add((resource, record_id))


class PreviewSage:
    """The real Sage source holding its writes (never committed); records them."""

    def __init__(self, real: SageSource, book: Book) -> None:
        self.real = real
        self.book = book
        real.hold_writes()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _key_text(self, key: Sequence[Any]) -> str:
        return ":".join(str(part).strip() for part in key)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        key = [values.get(name) for name in self.real.key_columns(table)]
        self.book.record(Write("sage", "create", table, self._key_text(key), None, dict(values)))
        self.real.insert(table, values)

    def update(self, table: str, key: Sequence[Any], values: Mapping[str, Any]) -> int:
        current = self.real.get(table, key, list(values)) or {}
        before = {name: current.get(name) for name in values}
        self.book.record(
            Write("sage", "update", table, self._key_text(key), None, dict(values), before)
        )
        count: int = self.real.update(table, key, values)
        return count

    def delete(self, table: str, key: Sequence[Any]) -> int:
        self.book.record(Write("sage", "delete", table, self._key_text(key)))
        count: int = self.real.delete(table, key)
        return count


class PreviewHooks:
    """Hooks of the passes: a transform still applies; nothing is told to the outside."""

    def __init__(self, real: Any, book: Book) -> None:
        self.real = real
        self.book = book

    def dossiersync_transform_record(self, **kwargs: Any) -> Any:
        return self.real.dossiersync_transform_record(**kwargs)

    def dossiersync_run_started(self, run: Any) -> None:
        self.book.start(run)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda **kwargs: None


def copy_state(source: StateStore, target: StateStore) -> None:
    """The state the passes read, copied from ``source`` into an empty ``target``."""
    with source.session() as read, target.session() as write:
        for model in COPIED:
            table = cast(Table, model.__table__)
            query = select(table)
            if model is Incident:
                query = query.where(Incident.state == "open")
            rows = read.execute(query).mappings()
            while chunk := rows.fetchmany(5000):
                write.execute(insert(table), [dict(r) for r in chunk])


@dataclass
class DossierPreview:
    """What the next sync of one dossier would do."""

    dossier_id: str
    steps: list[Step] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    def lines(self) -> list[str]:
        """The preview in words, a line per pass and per record it would touch, in the
        command line's language."""
        if self.error or self.skipped:
            reason = spoken(self.error or self.skipped)
            return [_("{dossier}: {reason}").format(dossier=self.dossier_id, reason=reason)]
        out = []
        nothing = _("nothing to do")
        for step in self.steps:
            head = f"{self.dossier_id:<16} {step.entity:<16} {step.direction:<12}"
            if step.outcome == "failed":
                failing = _("would fail: {message}").format(message=spoken(step.message))
                out.append(f"{head} {failing}")
                continue
            summary = ", ".join(f"{_(WOULD[k])} {v}" for k, v in step.counts.items() if k in WOULD)
            out.append(f"{head} {summary or nothing}")
            for entry in step.records:
                action = term("action", entry["action"])
                said = _said(entry, step.notices.get(entry["key"]))
                out.append(f"    {action:<9} {entry['key']:<20} {said}".rstrip())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "dossier_id": self.dossier_id,
            "skipped": self.skipped,
            "error": self.error,
            "entities": [s.as_dict() for s in self.steps],
        }


def preview(
    config: Config,
    store: StateStore,
    dossier_ids: list[str] | None = None,
    entity_names: list[str] | None = None,
    *,
    full: bool = False,
) -> list[DossierPreview]:
    """What ``sync`` with the same arguments would do now, per dossier; writes nothing."""
    from .registry import load_entities
    from .runner import sync

    book = Book()

    def stand_ins(ctx: DossierContext) -> None:
        for entity in load_entities(ctx.dossier.entities):
            for part in entity.parts():
                book.resources[part.name] = part.ssm_resource
        ctx.ssm_client = cast(SsmTarget, PreviewTarget(ctx.ssm_client, book, ctx.dossier_id))
        ctx.sage = cast(SageSource, PreviewSage(ctx.sage, book))
        ctx.hooks = cast(Any, PreviewHooks(ctx.hooks, book))
        ctx.meanwhile = None  # a preview shows the sync's own passes, nothing edited during it

    with tempfile.TemporaryDirectory(prefix="dossiersync-preview-") as folder:
        scratch = StateStore(f"sqlite:///{(Path(folder) / 'state.db').as_posix()}")
        try:
            copy_state(store, scratch)
            results = sync(
                config,
                scratch,
                dossier_ids,
                entity_names,
                full=full,
                adapt=stand_ins,
            )
            with scratch.session() as s:
                out = [_dossier(s, r, book) for r in results]
        finally:
            scratch.dispose()
    return out


def _dossier(session: Session, result: Any, book: Book) -> DossierPreview:
    found = DossierPreview(result.dossier_id, skipped=result.skipped, error=result.error)
    for run in result.runs:
        step = book.steps.get(run.id) or Step(run.dossier_id, run.entity, run.direction, run.id)
        step.outcome, step.message = run.outcome, run.message
        step.counts = {k: v for k, v in run.counts.items() if v}
        _name_keys(session, step, book.resources.get(step.entity))
        events = session.execute(
            select(Event.record_key, Event.action, Event.detail)
            .where(Event.run_id == run.id)
            .order_by(Event.id)
        ).all()
        opened = session.execute(
            select(Incident.record_key, Incident.message, Incident.detail).where(
                Incident.last_run_id == run.id, Incident.record_key.is_not(None)
            )
        ).all()
        step.notices = {
            str(key): {"message": message, "detail": detail} for key, message, detail in opened
        }
        for key, action, detail in events:
            if action in QUIET_ACTIONS:
                continue
            entry: dict[str, Any] = {"key": key, "action": action}
            if detail:
                entry["detail"] = detail
            # a record's writes: its own, and those of its parts (a document's lines)
            writes = [w for w in step.writes if w.key == key or (w.key or "").startswith(key + ":")]
            if writes and action in ("created", "updated", "deleted"):
                entry["writes"] = [w.as_dict() for w in writes]
            step.records.append(entry)
        found.steps.append(step)
    return found


#: run counts a preview speaks of, in the words of a preview
WOULD = {
    "created": N_("would create"),
    "updated": N_("would update"),
    "deleted": N_("would delete"),
    "pending": N_("would wait for"),
    "refused": N_("would refuse"),
    "failed": N_("would fail on"),
}


def _value(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _said(
    entry: Mapping[str, Any], incident: Mapping[str, Any] | None = None, shown: int = 4
) -> str:
    """A record's line, in the command line's language: its changes, the fields it would
    be created with, or why (a failed record's from the notice of its ``incident``)."""
    parts: list[str] = []
    for write in entry.get("writes", ()):
        side = "Sales Management" if write["side"] == "ssm" else "Sage"
        if "changes" in write:
            parts += [
                f"{name}: {_value(c['before'])} -> {_value(c['after'])}"
                for name, c in write["changes"].items()
            ]
        elif "fields" in write:
            fields = [
                f"{k}={_value(v, 24)}" for k, v in write["fields"].items() if v not in (None, "")
            ]
            more = ""
            if len(fields) > shown:
                more = " " + _("(+{count} more)").format(count=len(fields) - shown)
            parts.append(
                _("in {side} {target}: {fields}").format(
                    side=side, target=write["target"], fields=", ".join(fields[:shown]) + more
                )
            )
    detail = entry.get("detail")
    if not parts and detail:
        if entry.get("action") == "failed" and incident is not None:
            parts.append(incident_text(incident, language()))
        else:
            parts.append(_(str(detail)))  # a reason the connector words, or as it is
    return "; ".join(parts)


def _name_keys(session: Session, step: Step, resource: str | None) -> None:
    """Give SSM updates and deletions of the entity's own resource the Sage key of
    their record (from the links)."""
    mine = [w for w in step.writes if w.side == "ssm" and w.key is None and w.target == resource]
    ids = [w.id for w in mine if w.id]
    if not ids:
        return
    keys = dict(
        session.execute(
            select(Link.ssm_id, Link.sage_key).where(
                Link.dossier_id == step.dossier_id,
                Link.entity == step.entity,
                Link.ssm_id.in_(ids),
            )
        ).all()
    )
    for w in mine:
        if w.id in keys:
            w.key = keys[w.id]


__all__ = ["DossierPreview", "preview"]
