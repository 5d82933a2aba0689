"""The public API of dossiersync for plugins: ``from dossiersync.plugin import …``.

Everything an entity plugin, a hook-only plugin or an endpoint plugin needs, and only
that: the names in ``__all__`` are the stable ones (documented name by name in
``docs/plugins.md``); every other module of ``dossiersync`` is the connector's own and
may change in any release.  The names are imported on first use, so importing this
module costs nothing at the start of ``dossiersync`` (a plugin's command module imports
``hookimpl`` from here).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config as Config
    from .config import DossierConfig as DossierConfig
    from .config import ImplementationConfig as ImplementationConfig
    from .context import DossierContext as DossierContext
    from .display import visible as visible
    from .dossiers import proposed as proposed_dossiers
    from .entity import Entity as Entity
    from .errors import ConfigError as ConfigError
    from .errors import DossierSyncError as DossierSyncError
    from .errors import PluginError as PluginError
    from .errors import RecordInvalid as RecordInvalid
    from .errors import RecordMoved as RecordMoved
    from .errors import RecordPending as RecordPending
    from .errors import RecordRefused as RecordRefused
    from .errors import SourceError as SourceError
    from .errors import SourceUnavailable as SourceUnavailable
    from .errors import SsmAuthError as SsmAuthError
    from .errors import SsmError as SsmError
    from .errors import SsmNotFound as SsmNotFound
    from .errors import SsmRefused as SsmRefused
    from .errors import SsmUnavailable as SsmUnavailable
    from .fields import ChildSpec as ChildSpec
    from .fields import FieldSpec as FieldSpec
    from .fields import normalise as normalise
    from .hookspecs import hookimpl as hookimpl
    from .journal import IncidentRecord as IncidentRecord
    from .journal import RunRecord as RunRecord
    from .journal import iso_utc as iso_utc
    from .lang import _ as gettext
    from .lang import language as cli_language
    from .lang import ngettext as ngettext
    from .lang import said as said
    from .lang import spoken as spoken
    from .messages import Cause as Cause
    from .messages import Problem as Problem
    from .messages import Words as Words
    from .messages import field_label as field_label
    from .registry import load_endpoint as load_endpoint
    from .registry import load_entities as load_entities
    from .secrets import Secret as Secret
    from .secrets import resolve as resolve
    from .secrets import scrub as scrub
    from .source import SageSource as SageSource
    from .source import Unreadable as Unreadable
    from .source import shown as shown
    from .target import Record as Record
    from .target import SsmEndpoint as SsmEndpoint
    from .target import SsmTarget as SsmTarget
    from .target import WriteResult as WriteResult
    from .vocabulary import SAGE_TO_SSM as SAGE_TO_SSM
    from .vocabulary import SSM_TO_SAGE as SSM_TO_SAGE
    from .vocabulary import Direction as Direction
    from .vocabulary import IncidentKind as IncidentKind
    from .vocabulary import RunOutcome as RunOutcome

#: each public name -> (the module defining it, its name there)
_WHERE: dict[str, tuple[str, str]] = {
    # an entity: its declaration, its override points, what they are given
    "Entity": (".entity", "Entity"),
    "FieldSpec": (".fields", "FieldSpec"),
    "ChildSpec": (".fields", "ChildSpec"),
    "Direction": (".vocabulary", "Direction"),
    "SAGE_TO_SSM": (".vocabulary", "SAGE_TO_SSM"),
    "SSM_TO_SAGE": (".vocabulary", "SSM_TO_SAGE"),
    "normalise": (".fields", "normalise"),
    "DossierContext": (".context", "DossierContext"),
    "DossierConfig": (".config", "DossierConfig"),
    "ImplementationConfig": (".config", "ImplementationConfig"),
    # a record that cannot go, in words
    "RecordInvalid": (".errors", "RecordInvalid"),
    "RecordPending": (".errors", "RecordPending"),
    "RecordMoved": (".errors", "RecordMoved"),
    "RecordRefused": (".errors", "RecordRefused"),
    "Cause": (".messages", "Cause"),
    "Problem": (".messages", "Problem"),
    "Words": (".messages", "Words"),
    "field_label": (".messages", "field_label"),
    # hooks
    "hookimpl": (".hookspecs", "hookimpl"),
    "Config": (".config", "Config"),
    "RunRecord": (".journal", "RunRecord"),
    "RunOutcome": (".vocabulary", "RunOutcome"),
    "IncidentRecord": (".journal", "IncidentRecord"),
    "IncidentKind": (".vocabulary", "IncidentKind"),
    "iso_utc": (".journal", "iso_utc"),
    # settings and secrets
    "ConfigError": (".errors", "ConfigError"),
    "Secret": (".secrets", "Secret"),
    "resolve": (".secrets", "resolve"),
    "scrub": (".secrets", "scrub"),
    # endpoints
    "SageSource": (".source", "SageSource"),
    "Unreadable": (".source", "Unreadable"),
    "shown": (".source", "shown"),
    "visible": (".display", "visible"),
    "SsmTarget": (".target", "SsmTarget"),
    "SsmEndpoint": (".target", "SsmEndpoint"),
    "WriteResult": (".target", "WriteResult"),
    "Record": (".target", "Record"),
    "DossierSyncError": (".errors", "DossierSyncError"),
    "PluginError": (".errors", "PluginError"),
    "SourceError": (".errors", "SourceError"),
    "SourceUnavailable": (".errors", "SourceUnavailable"),
    "SsmError": (".errors", "SsmError"),
    "SsmAuthError": (".errors", "SsmAuthError"),
    "SsmRefused": (".errors", "SsmRefused"),
    "SsmNotFound": (".errors", "SsmNotFound"),
    "SsmUnavailable": (".errors", "SsmUnavailable"),
    # a plugin's commands
    "load_endpoint": (".registry", "load_endpoint"),
    "load_entities": (".registry", "load_entities"),
    "proposed_dossiers": (".dossiers", "proposed"),
    # a plugin's words in the command line's language
    "gettext": (".lang", "_"),
    "ngettext": (".lang", "ngettext"),
    "said": (".lang", "said"),
    "spoken": (".lang", "spoken"),
    "cli_language": (".lang", "language"),
}

__all__ = [
    "SAGE_TO_SSM",
    "SSM_TO_SAGE",
    "Cause",
    "ChildSpec",
    "Config",
    "ConfigError",
    "Direction",
    "DossierConfig",
    "DossierContext",
    "DossierSyncError",
    "Entity",
    "FieldSpec",
    "ImplementationConfig",
    "IncidentKind",
    "IncidentRecord",
    "PluginError",
    "Problem",
    "Record",
    "RecordInvalid",
    "RecordMoved",
    "RecordPending",
    "RecordRefused",
    "RunOutcome",
    "RunRecord",
    "SageSource",
    "Secret",
    "SourceError",
    "SourceUnavailable",
    "SsmAuthError",
    "SsmEndpoint",
    "SsmError",
    "SsmNotFound",
    "SsmRefused",
    "SsmTarget",
    "SsmUnavailable",
    "Unreadable",
    "Words",
    "WriteResult",
    "cli_language",
    "field_label",
    "gettext",
    "hookimpl",
    "iso_utc",
    "load_endpoint",
    "load_entities",
    "ngettext",
    "normalise",
    "proposed_dossiers",
    "resolve",
    "said",
    "scrub",
    "shown",
    "spoken",
    "visible",
]

if not TYPE_CHECKING:  # for the type checker the names are the imports above

    def __getattr__(name: str) -> Any:
        where = _WHERE.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(where[0], __package__), where[1])
        globals()[name] = value  # found once
        return value


def __dir__() -> list[str]:
    return sorted(__all__)
