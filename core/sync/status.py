"""Sync states shown in Sales Management itself (``[implementation.status_fields]``).

Each synced record of a resource that has extra fields (accounts, contacts, products,
sales orders) shows three of them: its dossier's name (a list field, so that the
implementation's own list filters work by dossier), its sync state (the labels of
``dossiersync records``, in the configured language) and its last problem in words, cut
short.

They cost no request of their own in steady state: a record created or updated carries
them in the write the sync makes anyway (its state then ``synced``). A state that
changes with no data change (a new incident, a resolved one, a record kept for review, a
record created in SSM and linked) is written at the end of the pass, in bulk updates
carrying these fields only. ``status_shown`` remembers what each record shows, so a
record is written again only when its state moved.

Writing them needs what ``dossiersync ssm fields`` found out and keeps in the state
store (the setting ``ssm.status_fields``): that the fields exist on the resource, and
the shape in which the tenant takes a value (unpublished: found by writing one record
and reading it back, never assumed). Until then the sync writes none, and says so once.
"""

from __future__ import annotations

import functools
import gettext
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from ..errors import DossierSyncError, SsmRefused
from ..journal import utcnow
from ..lease import held
from ..messages import Notice, incident_text
from ..state.models import Dossier, Incident, Link, Setting, StatusShown
from ..target import ssm_client
from .links import LinkLabel
from .stop import STOP

if TYPE_CHECKING:
    from ..config import Config, StatusFieldsConfig
    from ..context import DossierContext
    from ..entity import Entity
    from ..state.store import StateStore

log = logging.getLogger("dossiersync.status_fields")

#: the state store's setting where ``dossiersync ssm fields`` keeps what it found
SETUP_KEY = "ssm.status_fields"
#: each field's role, in order, with its type and what its description says
ROLES = ("dossier", "state", "problem")
TYPES = {"dossier": "list", "state": "list", "problem": "text"}
DESCRIPTIONS = {
    "dossier": "dossiersync: the Sage 50FR dossier of the record",
    "state": "dossiersync: the record's sync state",
    "problem": "dossiersync: the record's last sync problem",
}
#: what ``status_shown.label`` says of a record whose dossier was deactivated
INACTIVE = "inactive"
#: records read and written per round at the end of a pass
ROUND = 500

_LOCALE = Path(__file__).resolve().parent.parent / "web" / "locale"
_told: set[str] = set()
_told_lock = threading.Lock()


@dataclass
class Setup:
    """What ``dossiersync ssm fields`` found and decided, kept in the state store."""

    #: how the tenant takes a value (``flat``, ``nested``), None until found out
    shape: str | None = None
    #: each role's field name when it was set up
    names: dict[str, str] = field(default_factory=dict)
    #: the resources whose three fields are there
    resources: list[str] = field(default_factory=list)
    #: synced resources that take no extra field (a value list…): left out, silently
    skipped: list[str] = field(default_factory=list)
    #: the SSM resource of each synced entity (and entity part), by entity name
    entities: dict[str, str] = field(default_factory=dict)
    #: the fields dossiersync created, as ``resource.name``
    created: list[str] = field(default_factory=list)
    #: why the shape found cannot be used, when it cannot
    problem: str | None = None
    checked_at: str | None = None
    #: one row per resource and role: ``resource``, ``role``, ``name``, ``type``, ``state``
    report: list[dict[str, Any]] = field(default_factory=list)
    #: what writing one record and reading it back showed
    finding: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Setup:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def usable(self, names: Mapping[str, str]) -> str | None:
        """Why values cannot be written with these field names, or None when they can."""
        if not self.names:
            return (
                "not set up yet: run 'dossiersync ssm fields' (it creates the fields and "
                "finds how the implementation takes a value)"
            )
        if self.names != dict(names):
            return (
                "the field names changed since 'dossiersync ssm fields' last ran: run it "
                "again to check them on Sales Management"
            )
        if self.problem:
            return self.problem
        if self.shape is None:
            return (
                "how the implementation takes an extra field's value is not known yet: run "
                "'dossiersync ssm fields' once a first sync has linked records"
            )
        return None


def load_setup(session: Session) -> Setup | None:
    row = session.get(Setting, SETUP_KEY)
    return None if row is None else Setup.from_dict(row.value)


def save_setup(session: Session, setup: Setup) -> None:
    row = session.get(Setting, SETUP_KEY)
    if row is None:
        session.add(Setting(key=SETUP_KEY, value=setup.as_dict(), updated_at=utcnow()))
    else:
        row.value, row.updated_at = setup.as_dict(), utcnow()


def tell_once(key: str, message: str) -> None:
    """Say why the status fields are not written, once per process and reason."""
    with _told_lock:
        if key in _told:
            return
        _told.add(key)
    log.warning("status fields not written: %s", message)


# -- words -------------------------------------------------------------------------------


@functools.cache
def _catalogue(language: str) -> gettext.NullTranslations:
    """The status page's catalogue (its labels are the ones ``records`` shows), read
    without loading the page."""
    found = gettext.translation("messages", _LOCALE, languages=[language], fallback=True)
    if language != "en":
        found.add_fallback(_catalogue("en"))
    return found


def state_words(label: str, language: str) -> str:
    """A record's sync label (``synced``, ``error``… or ``inactive``) in ``language``."""
    key = f"state.{INACTIVE}" if label == INACTIVE else f"label.{label}"
    text = _catalogue(language).gettext(key)
    return label if text == key else text


def cut(text: str | None, length: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def problem_words(link: Link, incident: Incident | None, language: str, length: int) -> str | None:
    """What went wrong with a record, in ``language`` when its incident says it in words
    of both (its subject, the dossier and the record, left out: the record shows them)."""
    if link.label == LinkLabel.SYNCED:
        return None
    text = link.last_error or ""
    detail = incident.detail if incident is not None else None
    if isinstance(detail, Mapping) and detail.get("kind"):
        assert incident is not None
        text = incident_text({"detail": detail, "message": incident.message}, language)
        try:
            subject = Notice.from_dict(detail).subject(language)
        except (KeyError, ValueError, TypeError):
            subject = ""
        for joint in (" : ", ": "):
            if subject and text.startswith(subject + joint):
                text = text[len(subject + joint) :]
    return cut(text.strip(), length)


def latest_incidents(
    session: Session, dossier_id: str, entity: str, keys: Iterable[str]
) -> dict[str, Incident]:
    """The open incident last seen of each of these records."""
    wanted = sorted({k for k in keys if k})
    found: dict[str, Incident] = {}
    for start in range(0, len(wanted), ROUND):
        rows = session.scalars(
            select(Incident)
            .where(
                Incident.dossier_id == dossier_id,
                Incident.entity == entity,
                Incident.state == "open",
                Incident.record_key.in_(wanted[start : start + ROUND]),
            )
            .order_by(Incident.last_seen, Incident.id)
        )
        for incident in rows:
            found[incident.record_key or ""] = incident  # the latest comes last
    return found


def context_of(settings: StatusFieldsConfig, shape: str, dossier_name: str) -> str:
    """A digest of what a record's values are made of besides its own state: when it
    changes (a dossier renamed, another language…), every record is written again."""
    made_of = [dossier_name, settings.language, settings.problem_length, settings.names(), shape]
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()[:32]


# -- a pass's records --------------------------------------------------------------------


class StatusFields:
    """The status fields of one pass's records: in its writes, then at its end."""

    def __init__(
        self,
        ctx: DossierContext,
        settings: StatusFieldsConfig,
        shape: str,
        resource: str,
        entity: str,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.names = settings.names()
        self.shape = shape
        self.resource = resource
        self.entity = entity
        self.dossier_name = ctx.dossier.name
        self.context = context_of(settings, shape, self.dossier_name)
        self.body_of = ctx.ssm_client.extra_fields_body  # type: ignore[attr-defined]
        #: what the records written in this pass show now, by link id
        self.shown: dict[int, tuple[str, str | None]] = {}

    @classmethod
    def for_pass(cls, ctx: DossierContext, session: Session, entity: Entity) -> StatusFields | None:
        """The status fields of this pass, or None when its records get none (off, not
        set up, or a resource without extra fields): said once."""
        settings = getattr(ctx.implementation, "status_fields", None)
        if settings is None:
            return None
        setup = load_setup(session)
        if setup is None:
            tell_once("setup", Setup().usable(settings.names()) or "")
            return None
        resource = entity.ssm_resource
        if resource in setup.skipped:
            return None
        why = setup.usable(settings.names())
        if why is None and resource not in setup.resources:
            why = (
                f"the fields are not on {resource} (not created, or an entity enabled since "
                "'dossiersync ssm fields' last ran): run it again"
            )
        if why is None and not hasattr(ctx.ssm_client, "extra_fields_body"):
            why = f"the endpoint plugin {ctx.implementation.endpoint!r} does not write extra fields"
        if why is not None:
            tell_once(why, why)
            return None
        assert setup.shape is not None
        return cls(ctx, settings, setup.shape, resource, entity.name)

    def values(self, label: str, problem: str | None) -> dict[str, Any]:
        """The three fields' values, by field name."""
        return {
            self.names["dossier"]: self.dossier_name,
            self.names["state"]: state_words(label, self.settings.language),
            self.names["problem"]: problem,
        }

    def add_synced(self, body: dict[str, Any]) -> None:
        """Add to a create's or an update's body the values of a synced record."""
        body.update(self.body_of(self.shape, self.values(LinkLabel.SYNCED, None)))

    def shown_synced(self, link: Link) -> None:
        """A write carrying ``add_synced`` values went through."""
        self.shown[link.id] = (LinkLabel.SYNCED, None)

    def flush(self, session: Session) -> None:
        """Remember what the records written show (with the batch they belong to)."""
        if not self.shown:
            return
        remember(session, self.shown, self.context)
        self.shown = {}

    def publish(self, session: Session) -> None:
        """Write the state of the records whose state moved without a write of theirs, in
        bulk updates carrying the status fields only; what cannot be written now (the API
        out of reach) is written by a later pass."""
        client = self.ctx.ssm_client
        self.flush(session)
        session.commit()
        last, written, refused = 0, 0, 0
        while not STOP.is_set():
            links = list(
                session.scalars(
                    select(Link)
                    .outerjoin(StatusShown, StatusShown.link_id == Link.id)
                    .where(
                        Link.dossier_id == self.ctx.dossier_id,
                        Link.entity == self.entity,
                        Link.ssm_id.is_not(None),
                        Link.deleted.is_(False),
                        Link.id > last,
                        or_(
                            StatusShown.link_id.is_(None),
                            StatusShown.label != Link.label,
                            StatusShown.note.is_distinct_from(Link.last_error),
                            StatusShown.context != self.context,
                        ),
                    )
                    .order_by(Link.id)
                    .limit(ROUND)
                )
            )
            if not links:
                break
            last = links[-1].id
            incidents = latest_incidents(
                session,
                self.ctx.dossier_id,
                self.entity,
                [link.sage_key or "" for link in links if link.label != LinkLabel.SYNCED],
            )
            items = []
            for link in links:
                problem = problem_words(
                    link,
                    incidents.get(link.sage_key or ""),
                    self.settings.language,
                    self.settings.problem_length,
                )
                values = self.values(link.label, problem)
                items.append((int(link.ssm_id or 0), self.body_of(self.shape, values)))
            results = client.bulk_update(self.resource, items)
            stop: Exception | None = None
            for link, result in zip(links, results, strict=True):
                if result.error is None:
                    written += 1
                elif isinstance(result.error, SsmRefused):
                    # deleted in SSM meanwhile, or refused: not tried again until its state
                    # moves (its data write then says why, in an incident)
                    refused += 1
                else:
                    stop = result.error
                    continue
                self.shown[link.id] = (link.label, link.last_error)
            self.flush(session)
            session.commit()
            if stop is not None:
                log.warning(
                    "status fields of %s %s not all written (a later pass does): %s",
                    self.ctx.dossier_id,
                    self.resource,
                    stop,
                )
                break
        if written or refused:
            log.info(
                "status fields of %s %s: %d written on their own, %d refused",
                self.ctx.dossier_id,
                self.resource,
                written,
                refused,
            )


def remember(session: Session, shown: Mapping[int, tuple[str, str | None]], context: str) -> None:
    """Keep what these links' records show (link id -> label, note)."""
    ids = list(shown)
    for start in range(0, len(ids), ROUND):
        chunk = ids[start : start + ROUND]
        session.execute(delete(StatusShown).where(StatusShown.link_id.in_(chunk)))
        session.execute(
            insert(StatusShown),
            [
                {"link_id": i, "label": shown[i][0], "note": shown[i][1], "context": context}
                for i in chunk
            ],
        )


# -- a deactivated dossier ---------------------------------------------------------------


def after_deactivation(config: Config, store: StateStore, dossier_ids: list[str]) -> None:
    """Label the records of dossiers just deactivated ``inactive`` in Sales Management;
    what cannot be written now (the API out of reach) is said, and written by the next
    ``dossiersync ssm fields``."""
    if config.implementation.status_fields is None:
        return
    with store.session() as session:
        setup = load_setup(session)
    if setup is None or setup.usable(config.implementation.status_fields.names()):
        return
    try:
        with ssm_client(config) as client:
            for dossier_id in dossier_ids:
                # a sync still finishing would write its records' states over "inactive"
                with held(store, dossier_id, config.sync.lease_seconds, wait_seconds=30):
                    label_inactive(config, store, client, dossier_id)
    except DossierSyncError as exc:
        log.warning(
            "records of %s not labelled inactive in Sales Management (run 'dossiersync ssm "
            "fields' to label them): %s",
            ", ".join(dossier_ids),
            exc,
        )


def label_inactive(config: Config, store: StateStore, client: Any, dossier_id: str) -> int:
    """Label the records of a deactivated dossier ``inactive`` in Sales Management, their
    dossier and problem as they were; the records already labelled so are left alone.
    Returns how many were written. An outage stops it (raised): ``dossiersync ssm
    fields`` labels the rest."""
    settings = config.implementation.status_fields
    if settings is None:
        return 0
    with store.session() as session:
        setup = load_setup(session)
        row = session.get(Dossier, dossier_id)
        if setup is None or setup.usable(settings.names()) or row is None:
            return 0
        if row.state != "inactive":
            return 0
        assert setup.shape is not None
        configured = config.dossiers.get(dossier_id)
        name = configured.name if configured is not None else row.name
        context = context_of(settings, setup.shape, name)
        labelled = 0
        for entity, resource in setup.entities.items():
            if resource not in setup.resources:
                continue
            last = 0
            while True:
                links = list(
                    session.scalars(
                        select(Link)
                        .outerjoin(StatusShown, StatusShown.link_id == Link.id)
                        .where(
                            Link.dossier_id == dossier_id,
                            Link.entity == entity,
                            Link.ssm_id.is_not(None),
                            Link.deleted.is_(False),
                            Link.id > last,
                            or_(StatusShown.link_id.is_(None), StatusShown.label != INACTIVE),
                        )
                        .order_by(Link.id)
                        .limit(ROUND)
                    )
                )
                if not links:
                    break
                last = links[-1].id
                incidents = latest_incidents(
                    session, dossier_id, entity, [link.sage_key or "" for link in links]
                )
                items = []
                for link in links:
                    problem = problem_words(
                        link,
                        incidents.get(link.sage_key or ""),
                        settings.language,
                        settings.problem_length,
                    )
                    values = {
                        settings.dossier: name,
                        settings.state: state_words(INACTIVE, settings.language),
                        settings.problem: problem,
                    }
                    items.append(
                        (int(link.ssm_id or 0), client.extra_fields_body(setup.shape, values))
                    )
                results = client.bulk_update(resource, items)
                shown: dict[int, tuple[str, str | None]] = {}
                failure: Exception | None = None
                for link, result in zip(links, results, strict=True):
                    if result.error is None or isinstance(result.error, SsmRefused):
                        shown[link.id] = (INACTIVE, link.last_error)
                        labelled += result.error is None
                    else:
                        failure = result.error
                remember(session, shown, context)
                session.commit()
                if failure is not None:
                    raise failure
        return labelled
