"""Every word of the status page and of the incident and error messages exists in French
and in English: the page's gettext catalogues (core/web/locale) against what its modules
and templates use, and core/messages.py's words."""

from __future__ import annotations

import gettext
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from dossiersync import messages
from dossiersync.web import i18n
from dossiersync.web.i18n import LANGUAGES, LOCALE, Translator

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def po(language: str) -> Catalog:
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as file:
        return read_po(file, locale=language)


def used_keys(tmp_path: Path) -> set[str]:
    """The keys the page's modules and templates use, extracted as `make catalogues` does."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            str(LOCALE / "babel.cfg"),
            "-k",
            "t",
            "-k",
            "N_",
            "-o",
            str(pot),
            str(ROOT / "core" / "web"),
        ],
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return {str(m.id) for m in read_po(file) if m.id}


def test_every_key_of_the_page_has_its_words_in_both_languages(tmp_path: Path) -> None:
    used = used_keys(tmp_path)
    # templates (status page, health pictures), modules, and the keys built at run time
    assert {"title", "health.day", "notfound.title", "kind.run_failed", "count.read"} <= used
    for language in LANGUAGES:
        catalogue = po(language)
        ids = {str(m.id) for m in catalogue if m.id}
        assert used - ids == set(), (language, "missing")
        assert ids - used == set(), (language, "no longer used")
        untranslated = [m.id for m in catalogue if m.id and (not m.string or m.fuzzy)]
        assert untranslated == [], language
        assert not catalogue.obsolete, language


def test_both_languages_fill_in_the_same_values() -> None:
    english = {m.id: m.string for m in po("en") if m.id}
    french = {m.id: m.string for m in po("fr") if m.id}
    assert english.keys() == french.keys()
    for key, text in english.items():
        said = set(PLACEHOLDER.findall(str(text)))
        assert said == set(PLACEHOLDER.findall(str(french[key]))), key


def test_the_compiled_catalogues_are_the_po_files() -> None:
    for language in LANGUAGES:
        with (LOCALE / language / "LC_MESSAGES" / "messages.mo").open("rb") as file:
            compiled = gettext.GNUTranslations(file)
        written = {str(m.id): str(m.string) for m in po(language) if m.id}
        assert {k: compiled.gettext(k) for k in written} == written, (
            f"{language}: run make catalogues"
        )


def test_the_page_speaks_each_language_and_falls_back_on_its_key_or_value() -> None:
    english, french = Translator("en"), Translator("fr")
    assert english("nav.status") == "Status" and french("nav.status") == "État"
    assert french("status.every", minutes=5) == "toutes les 5 min"
    # the page's header names the implementation with the seed's word for it
    assert english("implementation", name="Groupe Nord") == "Dossier group: Groupe Nord"
    assert french("implementation", name="Groupe Nord") == "Groupe de dossiers : Groupe Nord"
    assert english.term("kind", "run_failed") == "run failed"
    assert french.term("kind", "run_failed") == "processus en échec"
    assert french.term("kind", "made_up") == "made_up"
    assert french.term("outcome", None) == "—"
    assert french("no.such.key") == "no.such.key"
    assert Translator("de").language == "en"
    assert i18n.catalogue("fr") is i18n.catalogue("fr")


def test_every_incident_kind_has_a_page_term_in_both_languages() -> None:
    kinds = {k for k in messages.KINDS if k != "other"}
    kinds |= {k.split(".")[0] for k in messages.PASS_KINDS}
    for language in LANGUAGES:
        t = Translator(language)
        for kind in sorted(kinds):
            assert t.term("kind", kind) != kind, (language, kind)


# -- the incident and error messages (core/messages.py) ------------------------------------


#: where French names a value otherwise than English, on purpose: the record's noun
#: (``{what}``) for the field's label, the plural of the record kind (``{entity_fr}``)
SAID_OTHERWISE = {
    "CAUSES[other_dossier]": [("field", "what")],
    "CAUSES[not_linked]": [("field", "what")],
    "CAUSES[waiting]": [("field", "")],
    "PASS_KINDS[mass_deletion_refused.sage_to_ssm]": [("entity", "entity_fr")],
    "PASS_KINDS[mass_deletion_refused.ssm_to_sage]": [("entity", "entity_fr")],
}


def words_of_messages() -> Iterator[tuple[str, Mapping[str, str]]]:
    """Every ``{"en": …, "fr": …}`` of core/messages.py, alone or in a table of them."""
    for name, value in vars(messages).items():
        if not isinstance(value, dict) or not value or name.startswith("_"):
            continue
        if set(value) & set(LANGUAGES):
            yield name, value
        elif all(isinstance(v, dict) and set(v) & set(LANGUAGES) for v in value.values()):
            for key, words in value.items():
                yield f"{name}[{key}]", words


def test_every_incident_and_error_message_has_both_languages() -> None:
    found = dict(words_of_messages())
    assert {"OR", "LINE", "DOSSIER"} <= found.keys()
    for table in ("RULES", "CAUSES", "KINDS", "PASS_KINDS", "NOUNS", "SUBJECT", "TYPES"):
        assert any(name.startswith(f"{table}[") for name in found), table
    for name, words in found.items():
        assert set(words) == set(LANGUAGES), name
        assert all(words[language] for language in LANGUAGES), name
        english = set(PLACEHOLDER.findall(words["en"]))
        french = set(PLACEHOLDER.findall(words["fr"]))
        for said_in_english, said_in_french in SAID_OTHERWISE.get(name, ()):
            english.discard(said_in_english)
            french.discard(said_in_french)
        assert english == french, name


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogues_are_installed_with_the_package(language: str) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"dossiersync.web" = ["locale/*/LC_MESSAGES/*.mo"]' in pyproject
    assert (LOCALE / language / "LC_MESSAGES" / "messages.mo").is_file()
