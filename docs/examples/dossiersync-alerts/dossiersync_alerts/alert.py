"""What an alert says: the same words for the webhook and the e-mail, no link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dossiersync.plugin import IncidentRecord, RunRecord, Secret, iso_utc, scrub


@dataclass(frozen=True)
class Alert:
    subject: str
    #: (label, value) lines of the body, in order
    facts: tuple[tuple[str, str], ...]
    #: the same facts as data, for the webhook's JSON
    data: dict[str, Any]

    def text(self) -> str:
        width = max(len(label) for label, _ in self.facts)
        return "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in self.facts)

    def scrubbed(self, secrets: list[Secret]) -> Alert:
        """The alert with every secret value removed, wherever a message quoted one."""
        return Alert(
            subject=scrub(self.subject, secrets),
            facts=tuple((label, scrub(value, secrets)) for label, value in self.facts),
            data={k: scrub(v, secrets) if isinstance(v, str) else v for k, v in self.data.items()},
        )


def _entity(entity: str | None, direction: str | None) -> str:
    if entity is None:
        return "-"
    return f"{entity} ({direction})" if direction else entity


def incident_alert(implementation: str, incident: IncidentRecord) -> Alert:
    where = f"{incident.entity} {incident.record_key}" if incident.record_key else incident.entity
    subject = (
        f"dossiersync: {implementation}, dossier {incident.dossier_id}: "
        f"{incident.kind} seen {incident.occurrences} time"
        + ("s" if incident.occurrences != 1 else "")
        + (f" ({where})" if where else "")
    )
    facts = (
        ("Implementation", implementation),
        ("Dossier", incident.dossier_id),
        ("Entity", _entity(incident.entity, incident.direction)),
        ("Record", incident.record_key or "- (the whole run)"),
        ("Kind", incident.kind),
        ("Occurrences", str(incident.occurrences)),
        ("First seen", iso_utc(incident.first_seen) or "-"),
        ("Last seen", iso_utc(incident.last_seen) or "-"),
        ("Incident", f"#{incident.id} (dossiersync incidents --dossier {incident.dossier_id})"),
        ("Message", incident.message),
    )
    data = {
        "alert": "incident",
        "implementation": implementation,
        "dossier": incident.dossier_id,
        "entity": incident.entity,
        "direction": incident.direction,
        "record_key": incident.record_key,
        "kind": incident.kind,
        "occurrences": incident.occurrences,
        "incident_id": incident.id,
        "first_seen": iso_utc(incident.first_seen),
        "last_seen": iso_utc(incident.last_seen),
        "message": incident.message,
    }
    return Alert(subject, facts, data)


def failed_runs_alert(implementation: str, run: RunRecord) -> Alert:
    subject = (
        f"dossiersync: {implementation}, dossier {run.dossier_id}: {run.entity} "
        f"{run.direction} failed {run.failed_in_a_row} runs in a row"
    )
    facts = (
        ("Implementation", implementation),
        ("Dossier", run.dossier_id),
        ("Entity", _entity(run.entity, run.direction)),
        ("Kind", "run_failed"),
        ("Failed runs in a row", str(run.failed_in_a_row)),
        ("Last run", f"#{run.id}, {iso_utc(run.finished_at) or '-'}"),
        ("Message", run.message or "-"),
    )
    data = {
        "alert": "failed_runs",
        "implementation": implementation,
        "dossier": run.dossier_id,
        "entity": run.entity,
        "direction": run.direction,
        "record_key": None,
        "kind": "run_failed",
        "occurrences": run.failed_in_a_row,
        "run_id": run.id,
        "message": run.message,
    }
    return Alert(subject, facts, data)
