"""``dossiersync ssm fields``: setting up the status fields on Sales Management.

Shows, for each synced resource that takes extra fields, whether the three fields of
``[implementation.status_fields]`` exist; creates the missing ones once a person agreed;
never changes a field it did not create (a field of that name made by someone else, or
of another type, is said, and nothing is created or written). Then finds out, on one
synced record, the shape in which the implementation takes a value (unpublished), and
keeps all of it in the state store, where the sync (``sync.status``) and the status
page read it. It also labels ``inactive`` the records of deactivated dossiers that were
not labelled when they were deactivated.

What is asked of Sales Management goes through the endpoint plugin: listing and creating
fields (``list_extra_fields``, ``create_extra_field``), the shape
(``find_extra_field_shape``); the documented calls only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from .config import Config
from .dossiers import proposed
from .errors import DossierSyncError, SsmNotFound
from .journal import iso_utc, utcnow
from .lang import NP_, _, ngettext, said, said_as, spoken, term
from .registry import load_entities
from .state.models import Dossier, Link
from .state.store import StateStore
from .sync.links import LinkLabel
from .sync.status import DESCRIPTIONS, ROLES, TYPES, Setup, label_inactive, load_setup, save_setup

log = logging.getLogger("dossiersync.status_fields")

#: a field's state on a resource
PRESENT, CREATED, MISSING, OTHER_TYPE, NOT_OURS = (
    "present",
    "created",
    "missing",
    "other_type",
    "not_ours",
)
#: records tried for the shape, at most (one may have been deleted in SSM meanwhile)
PROBES = 3


@dataclass
class FieldRow:
    """One status field on one resource."""

    resource: str
    role: str
    name: str
    type: str
    state: str
    #: the type Sales Management shows for a field of that name, when it shows one
    found_type: str | None = None

    @property
    def conflict(self) -> str | None:
        """Why dossiersync must not write this field, in words."""
        where = f"{self.resource}.{self.name}"
        role = said_as("field role", self.role)
        if self.state == OTHER_TYPE:
            return said(
                "{field} exists as a {found} field, not a {wanted} one: dossiersync neither "
                "changes nor writes it; name the {role} field otherwise in "
                "[implementation.status_fields]",
                field=where,
                found=self.found_type,
                wanted=self.type,
                role=role,
            )
        if self.state == NOT_OURS:
            return said(
                "{field} exists and dossiersync did not create it: it is left to whoever "
                "did; name the {role} field otherwise in [implementation.status_fields]",
                field=where,
                role=role,
            )
        return None


@dataclass
class FieldsReport:
    """What ``dossiersync ssm fields`` found and did."""

    enabled: bool
    rows: list[FieldRow] = field(default_factory=list)
    #: with the status fields off: every extra field of the synced resources
    listed: list[dict[str, Any]] = field(default_factory=list)
    setup: Setup | None = None
    #: records of deactivated dossiers labelled inactive now
    labelled: int = 0

    @property
    def missing(self) -> list[FieldRow]:
        return [r for r in self.rows if r.state == MISSING]

    @property
    def conflicts(self) -> list[str]:
        return [c for r in self.rows if (c := r.conflict)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "fields": [asdict(r) for r in self.rows],
            "listed": self.listed,
            "conflicts": self.conflicts,
            "shape": self.setup.shape if self.setup else None,
            "problem": self.setup.problem if self.setup else None,
            "finding": self.setup.finding if self.setup else None,
            "resources": self.setup.resources if self.setup else [],
            "inactive_labelled": self.labelled,
        }


def synced_resources(config: Config, client: Any) -> tuple[dict[str, str], list[str], list[str]]:
    """The SSM resource of every entity (and entity part) the dossiers sync, by entity
    name; the resources that take extra fields; those that do not (a value list…)."""
    names: list[str] = []
    for dossier in proposed(config).values():
        names += [n for n in dossier.entities if n not in names]
    entities: dict[str, str] = {}
    for entity in load_entities(names):
        for part in entity.parts():
            if part.ssm_resource:
                entities[part.name] = part.ssm_resource
    takes = {r.lower() for r in getattr(client, "extra_field_resources", ())}
    resources = sorted({r for r in entities.values() if r.lower() in takes})
    skipped = sorted({r for r in entities.values() if r.lower() not in takes})
    return entities, resources, skipped


def check(config: Config, store: StateStore, client: Any) -> FieldsReport:
    """Each status field on each synced resource, as Sales Management lists them."""
    settings = config.implementation.status_fields
    if not hasattr(client, "list_extra_fields"):
        raise DossierSyncError(
            said(
                "the endpoint plugin {endpoint} has no extra fields",
                endpoint=repr(config.implementation.endpoint),
            )
        )
    entities, resources, skipped = synced_resources(config, client)
    report = FieldsReport(enabled=settings is not None)
    with store.session() as session:
        earlier = load_setup(session)
    created = set(earlier.created if earlier else ())
    for resource in resources:
        listed = client.list_extra_fields(resource)
        if settings is None:
            report.listed += [
                {"resource": resource, "name": f.name, "type": f.type, "description": f.description}
                for f in listed
            ]
            continue
        by_name = {f.name.lower(): f for f in listed}
        for role in ROLES:
            name, wanted = settings.names()[role], TYPES[role]
            found = by_name.get(name.lower())
            row = FieldRow(resource, role, name, wanted, MISSING)
            if found is not None:
                row.name, row.found_type = found.name, found.type
                ours = found.marked or f"{resource}.{found.name}" in created
                if found.type is not None and found.type != wanted:
                    row.state = OTHER_TYPE
                else:
                    # a type not shown by name is not refused: the shape's trial writes
                    # and reads it back before anything relies on it
                    row.state = PRESENT if ours else NOT_OURS
            report.rows.append(row)
    report.setup = Setup(
        shape=earlier.shape if earlier else None,
        names=settings.names() if settings else {},
        skipped=skipped,
        entities=entities,
        created=sorted(created),
        problem=earlier.problem if earlier else None,
        finding=earlier.finding if earlier else None,
    )
    return report


def create_missing(report: FieldsReport, client: Any) -> None:
    """Create the missing fields; each one created is remembered as dossiersync's."""
    assert report.setup is not None
    for row in report.missing:
        client.create_extra_field(row.resource, row.name, row.type, DESCRIPTIONS[row.role])
        row.state = CREATED
        report.setup.created = sorted({*report.setup.created, f"{row.resource}.{row.name}"})


def probes(store: StateStore, setup: Setup, config: Config) -> list[tuple[str, int, str]]:
    """Synced records to try the shape on (accounts first): resource, SSM id, dossier name."""
    order = sorted(setup.resources, key=lambda r: (r.lower() != "accounts", r))
    found: list[tuple[str, int, str]] = []
    with store.session() as session:
        for resource in order:
            entities = [e for e, r in setup.entities.items() if r == resource]
            rows = session.execute(
                select(Link.ssm_id, Dossier.id, Dossier.name)
                .join(Dossier, Dossier.id == Link.dossier_id)
                .where(
                    Link.entity.in_(entities),
                    Link.ssm_id.is_not(None),
                    Link.deleted.is_(False),
                    Link.label == LinkLabel.SYNCED,
                    Dossier.state == "active",
                )
                .order_by(Link.id)
                .limit(PROBES - len(found))
            ).all()
            for ssm_id, dossier_id, name in rows:
                configured = config.dossiers.get(dossier_id)
                found.append((resource, int(ssm_id or 0), configured.name if configured else name))
            if len(found) >= PROBES:
                break
    return found


def find_shape(report: FieldsReport, store: StateStore, config: Config, client: Any) -> None:
    """Find out how the implementation takes a value, on a synced record; with none
    linked yet, the shape stays unknown (a first sync, then this again)."""
    setup = report.setup
    assert setup is not None
    setup.shape, setup.problem, setup.finding = None, None, None
    for resource, record_id, dossier in probes(store, setup, config):
        try:
            finding = client.find_extra_field_shape(resource, record_id, setup.names, dossier)
        except SsmNotFound:
            continue  # deleted in SSM meanwhile: another record
        setup.finding = finding
        setup.shape = finding.get("shape")
        if setup.shape is None:
            tried = "; ".join(f"{t['shape']}: {t['said']}" for t in finding.get("trials", []))
            setup.problem = said(
                "{resource} {id} did not show a value written in any known shape ({tried}): "
                "the status fields are not written",
                resource=resource,
                id=record_id,
                tried=tried,
            )
        else:
            setup.problem = finding.get("problem")
        return


def set_up(
    config: Config,
    store: StateStore,
    client: Any,
    agree: Callable[[FieldsReport], bool],
) -> FieldsReport:
    """The whole set-up: check, create what is missing if ``agree`` (shown the report as
    found) says so, find the shape when it is not known, keep the outcome, label the
    inactive dossiers' records."""
    report = check(config, store, client)
    setup = report.setup
    if not report.enabled or setup is None:
        return report
    if report.conflicts:
        setup.resources = []  # nothing is written until a person has seen to it
        setup.problem = "; ".join(report.conflicts)
    else:
        if report.missing and agree(report):
            create_missing(report, client)
        ready = {r.resource for r in report.rows if r.state in (PRESENT, CREATED)}
        setup.resources = sorted(
            r for r in ready if all(x.state in (PRESENT, CREATED) for x in _of(report.rows, r))
        )
        with store.session() as session:
            earlier = load_setup(session)
        known = (
            earlier is not None
            and earlier.shape is not None
            and not earlier.problem
            and earlier.names == setup.names
        )
        if not known:
            setup.shape, setup.problem, setup.finding = None, None, None
            if setup.resources:
                find_shape(report, store, config, client)
    setup.checked_at = iso_utc(utcnow())
    setup.report = [asdict(r) for r in report.rows]
    with store.session() as session:
        save_setup(session, setup)
    if setup.shape and setup.resources and not setup.problem:
        report.labelled = label_inactive_dossiers(config, store, client)
    return report


def _of(rows: Iterable[FieldRow], resource: str) -> list[FieldRow]:
    return [r for r in rows if r.resource == resource]


def label_inactive_dossiers(config: Config, store: StateStore, client: Any) -> int:
    """Label ``inactive`` the records of every deactivated dossier not labelled yet."""
    with store.session() as session:
        inactive = list(session.scalars(select(Dossier.id).where(Dossier.state == "inactive")))
    return sum(label_inactive(config, store, client, d) for d in inactive)


def view(config: Config, store: StateStore) -> dict[str, Any] | None:
    """What the status page's set-up screen shows of the status fields: what ``ssm
    fields`` last found (read from the state store, nothing asked of Sales Management);
    None when they are off."""
    settings = config.implementation.status_fields
    if settings is None:
        return None
    with store.session() as session:
        setup = load_setup(session)
    return {
        "names": settings.names(),
        "language": settings.language,
        "checked_at": setup.checked_at if setup else None,
        "shape": setup.shape if setup else None,
        "problem": (setup or Setup()).usable(settings.names()),
        "rows": setup.report if setup else [],
    }


HEADERS = [
    *(NP_("column", "resource"), NP_("column", "role"), NP_("column", "field")),
    *(NP_("column", "type"), NP_("column", "state")),
]
#: a field's role and state as the table shows them (a state's ``_`` as a space)
WORDS = (
    *(NP_("field role", "dossier"), NP_("field role", "state"), NP_("field role", "problem")),
    *(NP_("field state", "present"), NP_("field state", "created")),
    *(NP_("field state", "missing"), NP_("field state", "other type")),
    NP_("field state", "not ours"),
)


def rows(report: FieldsReport) -> list[list[str]]:
    """Each status field on each resource, as a table's rows (``HEADERS``), in the
    command line's language."""
    return [
        [
            r.resource,
            term("field role", r.role),
            r.name,
            r.type,
            term("field state", r.state.replace("_", " ")),
        ]
        for r in report.rows
    ]


def lines(report: FieldsReport) -> list[str]:
    """What the report says besides its table, for the terminal, in the command line's
    language."""
    setup = report.setup
    if not report.enabled:
        out = [_("The status fields are off (see [implementation.status_fields]).")]
        if report.listed:
            out.append(_("Extra fields of the synced resources:"))
            out += [
                "  "
                + _("{field} ({type})").format(
                    field=f"{f['resource']}.{f['name']}", type=f["type"] or _("type not shown")
                )
                for f in report.listed
            ]
        else:
            out.append(_("The synced resources have no extra field."))
        return out
    out = [_("error: {message}").format(message=spoken(c)) for c in report.conflicts]
    if setup is None or report.conflicts:
        return out
    if report.missing:
        names = ", ".join(f"{r.resource}.{r.name}" for r in report.missing)
        out.append(
            _(
                "Not created: {fields}; the status fields are not written on their resources."
            ).format(fields=names)
        )
    if setup.shape == "flat":
        out.append(_("Values are written as fields of the record (shape: flat)."))
    elif setup.shape == "nested":
        out.append(_("Values are written in the record's extraFields (shape: nested)."))
    if setup.problem:
        out.append(
            _("The status fields are not written: {problem}").format(problem=spoken(setup.problem))
        )
    elif setup.shape is None and setup.resources:
        out.append(
            _(
                "How the implementation takes a value is not known yet: no record is linked. "
                "Run a sync, then this command again; until then the sync writes no status "
                "field."
            )
        )
    if report.labelled:
        out.append(
            ngettext(
                "{count} record of inactive dossiers labelled inactive.",
                "{count} records of inactive dossiers labelled inactive.",
                report.labelled,
            ).format(count=report.labelled)
        )
    return out
