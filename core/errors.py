"""The one error hierarchy of dossiersync.

Every error a user can act on derives from :class:`DossierSyncError` and says what
failed, for which dossier or record, and what to do.  Messages never carry secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .messages import Cause, Problem


class DossierSyncError(Exception):
    """Base of every error raised on purpose by dossiersync."""


class ConfigError(DossierSyncError):
    """The configuration file is missing, unreadable or invalid."""


class PluginError(DossierSyncError):
    """A plugin could not be found or loaded."""


class SourceUnavailable(DossierSyncError):
    """A Sage 50FR dossier cannot be reached (ODBC data source missing, driver error)."""


class SourceError(DossierSyncError):
    """A Sage 50FR read or write failed for a reason other than reachability."""


class SsmError(DossierSyncError):
    """A Sales Management API call failed.

    ``status`` is the HTTP status when there was an answer, ``None`` otherwise;
    ``answer`` the API's own explanation, without the request it answered (what an
    incident quotes).
    """

    def __init__(self, message: str, status: int | None = None, answer: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer


class SsmAuthError(SsmError):
    """Login refused: the public/private key pair is wrong."""


class SsmRefused(SsmError):
    """The API refused one record (4xx other than 401/429): a record-level problem."""


class SsmNotFound(SsmRefused):
    """The API says the record does not exist (any more): deleted, or never there."""


class SsmUnavailable(SsmError):
    """The API could not be reached or kept failing after every retry.

    ``may_have_acted`` is true when the call was a write the server may have carried out
    before failing (a create answered 500, reset or timed out after it was sent): its
    outcome is unknown and the record is looked up by ``extId`` before it is sent again.
    False when the server surely did not act (the connection never made, 429 or 503
    through the whole retry budget): the API is out.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        answer: str | None = None,
        *,
        may_have_acted: bool = False,
    ) -> None:
        super().__init__(message, status, answer)
        self.may_have_acted = may_have_acted


class RecordInvalid(DossierSyncError):
    """A mapped record does not satisfy its entity's JSON Schema.

    ``problem`` says which rule the field breaks, in terms ``dossiersync.messages`` puts
    into words (English and French); the message is its English text.
    """

    def __init__(
        self, message: str, field: str | None = None, problem: Problem | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem


class LeaseTaken(DossierSyncError):
    """Another process holds this dossier's sync lease."""


class RecordPending(DossierSyncError):
    """A record waits for another one it refers to (e.g. a contact for its account).

    ``cause`` says why in terms ``dossiersync.messages`` writes in English and French.
    """

    def __init__(self, message: str, cause: Cause | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class RecordMoved(DossierSyncError):
    """A record refers to a record of another dossier: records never move.

    ``cause`` says why in terms ``dossiersync.messages`` writes in English and French.
    """

    def __init__(self, message: str, cause: Cause | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class RecordRefused(DossierSyncError):
    """A record that cannot be written as it is (an order naming a product its dossier
    does not know); nothing was written.

    ``kind`` is the kind of its incident, ``field`` the field at fault; ``problem`` (a
    rule broken) or ``cause`` (why it cannot be written) say it in words.
    """

    def __init__(
        self,
        kind: str,
        field: str | None,
        message: str,
        problem: Problem | None = None,
        cause: Cause | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field
        self.problem = problem
        self.cause = cause
