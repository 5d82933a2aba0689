"""The connector's words for the values it stores and tells: one ``StrEnum`` each.

A member *is* its string (``Direction.SAGE_TO_SSM == "sage_to_ssm"``), so what the state
store, the journal, ``--json`` and the hooks have always held stays equal, and code that
compares with a plain string keeps working; new code names the member.
"""

from __future__ import annotations

from enum import StrEnum


class Direction(StrEnum):
    """Which way a sync pass goes: each direction is its own journaled run, Sage first."""

    SAGE_TO_SSM = "sage_to_ssm"
    SSM_TO_SAGE = "ssm_to_sage"


class RunOutcome(StrEnum):
    """How a run (dossier x entity x direction) ended, or that it has not yet."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: it ran to the end, some records refused or failed (each with its incident)
    PARTIAL = "partial"
    FAILED = "failed"
    #: stopped at a safe point (a signal, a lease taken over); its cursor kept
    INTERRUPTED = "interrupted"


class WriteKind(StrEnum):
    """What a Sage -> SSM pass does with one record it writes."""

    CREATE = "create"
    UPDATE = "update"
    #: already in SSM under its extId (a create whose answer was lost): linked, not sent
    ADOPT = "adopt"


class LinkOrigin(StrEnum):
    """Where a linked record was created: its deletion rules depend on it."""

    SAGE = "sage"
    SSM = "ssm"


class IncidentKind(StrEnum):
    """The kinds of incident the core opens; an entity may raise others
    (``RecordRefused(kind, …)``), which the journal keeps as they are."""

    INVALID_RECORD = "invalid_record"
    REFUSED_BY_SSM = "refused_by_ssm"
    SAGE_WRITE_FAILED = "sage_write_failed"
    UNKNOWN_REFERENCE = "unknown_reference"
    MOVED_BETWEEN_DOSSIERS = "moved_between_dossiers"
    ACCOUNT_CHANGED = "account_changed"
    DELETED_IN_SSM = "deleted_in_ssm"
    RUN_FAILED = "run_failed"
    MASS_DELETION_REFUSED = "mass_deletion_refused"
    RESTORED_DATABASE = "restored_database"


class DossierState(StrEnum):
    """A dossier's place in the group: ``new`` until activated, then read and written
    while ``active``, left alone while ``inactive``."""

    NEW = "new"
    ACTIVE = "active"
    INACTIVE = "inactive"


SAGE_TO_SSM = Direction.SAGE_TO_SSM
SSM_TO_SAGE = Direction.SSM_TO_SAGE
