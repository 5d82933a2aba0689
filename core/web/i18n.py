"""French and English words of the status page, from gettext catalogues.

The catalogues are ``locale/<language>/LC_MESSAGES/messages.po`` (compiled to ``.mo``
beside them by ``make catalogues``, which also extracts the keys from this package's
modules and templates with Babel). A message id is a key (``nav.status``,
``health.day``…); its text may name values in braces (``{dossier}``), filled in by
:class:`Translator`.

The language comes from ``web.language`` (``fr``/``en``), or from the browser's
``Accept-Language`` when it is ``auto``.
"""

from __future__ import annotations

import functools
import gettext
from pathlib import Path

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE = Path(__file__).parent / "locale"
DOMAIN = "messages"


def N_(key: str) -> str:
    """Marks a key the page builds at run time (``"nav." ~ section``) for extraction."""
    return key


#: the keys no template or module spells out whole: extraction finds them here
BUILT_KEYS = (
    *(N_("nav.status"), N_("nav.journal"), N_("nav.incidents"), N_("nav.setup")),
    *(N_("state.new"), N_("state.active"), N_("state.inactive")),
    N_("state.previously_synced"),
    *(N_("outcome.succeeded"), N_("outcome.partial"), N_("outcome.failed")),
    *(N_("outcome.running"), N_("outcome.interrupted")),
    *(N_("direction.sage_to_ssm"), N_("direction.ssm_to_sage")),
    *(N_("label.synced"), N_("label.pending"), N_("label.pending_review")),
    *(N_("label.error"), N_("label.deleted")),
    *(N_("count.read"), N_("count.created"), N_("count.updated"), N_("count.deleted")),
    *(N_("count.unchanged"), N_("count.pending"), N_("count.refused"), N_("count.failed")),
    *(N_("health.legend.succeeded"), N_("health.legend.partial")),
    *(N_("health.legend.interrupted"), N_("health.legend.failed")),
    N_("health.legend.running"),
    *(N_("incidents.open"), N_("incidents.resolved"), N_("incidents.all")),
    *(N_("kind.invalid_record"), N_("kind.refused_by_ssm"), N_("kind.sage_write_failed")),
    *(N_("kind.run_failed"), N_("kind.mass_deletion_refused")),
    *(N_("kind.restored_database"), N_("kind.moved_between_dossiers")),
    *(N_("kind.unknown_reference"), N_("kind.account_changed"), N_("kind.deleted_in_ssm")),
    *(N_("preview.side.ssm"), N_("preview.side.sage")),
    *(N_("setup.origin.configuration"), N_("setup.origin.odbc-dsn")),
    *(N_("setup.origin.state-only"), N_("setup.origin.ssm-only")),
    *(N_("fields.shape.flat"), N_("fields.shape.nested"), N_("fields.shape.unknown")),
    *(N_("fields.state.present"), N_("fields.state.created"), N_("fields.state.missing")),
    *(N_("fields.state.other_type"), N_("fields.state.not_ours")),
    # notices and errors named in the query string after a redirect (pages.NOTICES)
    *(N_("sync.started"), N_("sync.busy"), N_("error.inactive")),
    *(N_("setup.activated"), N_("setup.deactivated"), N_("setup.unchanged")),
    *(N_("incidents.retried"), N_("incidents.retry_marked")),
)


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language``, falling back on English's."""
    found = gettext.translation(DOMAIN, LOCALE, languages=[language])
    if language != DEFAULT_LANGUAGE:
        found.add_fallback(catalogue(DEFAULT_LANGUAGE))
    return found


def choose_language(configured: str, accept_language: str | None) -> str:
    """``fr`` or ``en``: the configured one, else the browser's first supported choice."""
    if configured in LANGUAGES:
        return configured
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # earlier entries win ties, as browsers list them by preference
        q -= position * 1e-6
        if q > best_q:
            best, best_q = primary, q
    return best


class Translator:
    """``t("key", name=value)``: the label in one language, English when it has none."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._catalogue = catalogue(self.language)

    def __call__(self, key: str, **values: object) -> str:
        text = self._catalogue.gettext(key)
        return text.format(**values) if values else text

    def term(self, prefix: str, value: str | None) -> str:
        """A translated enumerated value (state, outcome, label…), or the value itself."""
        if value is None:
            return self("none")
        key = f"{prefix}.{value}"
        text = self._catalogue.gettext(key)
        return value if text == key else text
