"""The command line speaks French or English: every message it can say has its words in
both catalogues (core/locale), the language comes from --lang, the configuration or the
locale variables, and the main commands say everything in French under a French locale
while --json, the journal and the logs keep their English."""

from __future__ import annotations

import gettext
import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from sqlalchemy import update

from dossiersync import lang
from dossiersync.fence import Fence, LeaseLost
from dossiersync.lang import LANGUAGES, LOCALE, said, said_as, said_of, spoken
from dossiersync.lease import acquire
from dossiersync.state.models import Lease
from dossiersync.state.store import StateStore

from support.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{(\w+)(?:![rs])?(?::[^}]*)?\}|%\((\w+)\)s")
BAD_EMAIL = "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00001'"
NEW_CITY = (
    "UPDATE F_COMPTET SET CT_Ville = 'Albi', "
    "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'"
)


def po(language: str) -> Catalog:
    with (LOCALE / language / "LC_MESSAGES" / "cli.po").open("rb") as file:
        return read_po(file, locale=language)


def key(message: Message) -> tuple[str | None, str | tuple[str, ...]]:
    return message.context, message.id if isinstance(message.id, str) else tuple(message.id)


def used_messages(tmp_path: Path) -> dict[tuple[str | None, str | tuple[str, ...]], Message]:
    """What the CLI and its built-in plugins can say, extracted as `make catalogues` does."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    keywords = re.search(r"^CLI_KEYWORDS := (.+)$", makefile, re.M)
    assert keywords is not None
    pot = tmp_path / "cli.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            str(LOCALE / "babel.cfg"),
            *keywords.group(1).split(),
            "-o",
            str(pot),
            str(ROOT / "core"),
            str(ROOT / "plugins"),
        ],
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return {key(m): m for m in read_po(file) if m.id}


def texts(message: Message) -> Iterator[str]:
    yield from ([message.string] if isinstance(message.string, str) else message.string)


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def test_every_message_of_the_command_line_has_its_words_in_both_languages(
    tmp_path: Path,
) -> None:
    used = used_messages(tmp_path)
    # help (a docstring, a help=), a message, a column, a value, click's own, a plugin's
    for expected in (
        (None, "Sync state per dossier and entity."),
        (None, "Print JSON."),
        (None, "FAILED {reason}"),
        ("column", "incidents"),
        ("outcome", "partial"),
        (None, "Usage:"),
        (None, "Everything the mapping needs is in the source."),
        (None, "{where}: the source has no such column"),
        (None, "dossier {dossier} is being synced by another process; skipped"),
    ):
        assert expected in used, expected
    for language in LANGUAGES:
        catalogue = {key(m): m for m in po(language) if m.id}
        assert sorted(used.keys() - catalogue.keys(), key=str) == [], (language, "missing")
        for name in used:
            message = catalogue[name]
            assert not message.fuzzy, (language, name)
            assert all(texts(message)), (language, name, "no text")
    french = {key(m): m for m in po("fr") if m.id}
    for name in used:
        english = placeholders(" ".join([name[1]] if isinstance(name[1], str) else name[1]))
        for text in texts(french[name]):
            assert placeholders(text) <= english, name
        if english and not isinstance(name[1], tuple):
            assert placeholders(next(texts(french[name]))) == english, name


def test_the_english_catalogue_says_the_message_ids() -> None:
    for message in po("en"):
        if message.id:
            assert message.string == message.id, message.id


def test_the_compiled_catalogues_are_the_po_files() -> None:
    for language in LANGUAGES:
        with (LOCALE / language / "LC_MESSAGES" / "cli.mo").open("rb") as file:
            compiled = gettext.GNUTranslations(file)
        for message in po(language):
            if not message.id or not isinstance(message.id, str):
                continue
            if message.context:
                shown = compiled.pgettext(message.context, message.id)
            else:
                shown = compiled.gettext(message.id)
            assert shown == message.string, f"{language}: run make catalogues ({message.id})"


def test_the_language_is_lang_then_the_configuration_then_the_locale(tmp_path: Path) -> None:
    assert lang.from_environment({"LANG": "fr_FR.UTF-8"}) == "fr"
    assert lang.from_environment({"LANGUAGE": "de:fr", "LANG": "en_US.UTF-8"}) == "fr"
    assert lang.from_environment({"LC_ALL": "C.UTF-8", "LANG": "fr_FR.UTF-8"}) == "en"
    assert lang.from_environment({"LC_MESSAGES": "fr_CA", "LANG": "en_GB"}) == "fr"
    assert lang.from_environment({"LANG": "de_DE.UTF-8"}) == "en"
    assert lang.from_environment({}) == "en"
    assert lang.from_arguments(["--config", "x.toml", "--lang", "fr", "status"]) == "fr"
    assert lang.from_arguments(["--lang=en", "status"]) == "en"
    assert lang.from_arguments(["--lang", "de"]) is None
    assert lang.config_from_arguments(["--config=a.toml"]) == "a.toml"

    config = tmp_path / "dossiersync.toml"
    config.write_text('[cli]\nlanguage = "fr"\n', encoding="utf-8")
    assert lang.configured(config) == "fr"
    assert lang.configured(tmp_path / "none.toml") is None
    (tmp_path / "bad.toml").write_text("[cli\n", encoding="utf-8")
    assert lang.configured(tmp_path / "bad.toml") is None
    try:
        assert lang.settle("en", config) == "en"
        assert lang.settle(None, config) == "fr"
        config.write_text('[cli]\nlanguage = "auto"\n', encoding="utf-8")
        assert lang.settle(None, config) == lang.from_environment()
    finally:
        lang.choose(lang.from_environment())


def test_a_said_message_is_english_and_spoken_in_the_language_of_the_moment() -> None:
    message = said(
        "{dossier} {entity} {direction}: {outcome}: {message}",
        dossier="nord",
        entity="clients",
        direction="sage_to_ssm",
        outcome=said_as("outcome", "partial"),
        message=said("{count} record(s) not synced, see incidents", count=2),
    )
    english = "nord clients sage_to_ssm: partial: 2 record(s) not synced, see incidents"
    assert message == english and str(message) == english
    assert json.loads(json.dumps({"m": message})) == {"m": english}
    assert pickle.loads(pickle.dumps(message)) == english
    masked = message.map(lambda text: text.replace("nord", "***"))
    try:
        lang.choose("fr")
        assert spoken(message) == (
            "nord clients sage_to_ssm : partiel : 2 enregistrement(s) non synchronisé(s), "
            "voir les incidents"
        )
        assert spoken(pickle.loads(pickle.dumps(message))) == spoken(message)
        assert spoken(masked).startswith("*** clients") and "nord" not in spoken(masked)
        assert spoken("not said") == "not said"
    finally:
        lang.choose(lang.from_environment())
    assert spoken(message) == english


@pytest.fixture
def french(monkeypatch: pytest.MonkeyPatch) -> None:
    """A French user's shell: only LANG says the language."""
    for name in lang.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")


def lines_of(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_the_main_commands_speak_french_under_a_french_locale(
    workspace: Workspace, french: None
) -> None:
    workspace.add_dossier("nord", clients=6, seed=1)
    workspace.sage_execute("nord", BAD_EMAIL)

    helped = workspace.subprocess("--help")
    assert helped.returncode == 0, helped.stderr
    assert re.match(r"Utilisation : .+ \[OPTIONS\] COMMAND \[ARGS\]", helped.stdout)
    assert "Commandes:" in helped.stdout and "Affiche cette aide et quitte." in helped.stdout
    assert re.search(r"\n  dossiers +Le groupe de dossiers : découvrir,", helped.stdout)
    assert re.search(r"\n  mapping +Le mapping Sage d’un dossier", helped.stdout)  # a plugin's

    found = workspace.subprocess("dossiers", "discover")
    assert found.returncode == 0, found.stderr
    table = lines_of(found.stdout)
    assert table[0][:5] == ["ID", "NOM", "ÉTAT", "SOURCE", "ENTITÉS"]
    assert "DÉJÀ SYNCHRONISÉ" in table[0]
    assert table[1][:4] == ["nord", "Dossier nord", "nouveau", "ok"]

    activated = workspace.subprocess("dossiers", "activate", "nord")
    assert activated.stdout.strip() == (
        "nord : actif (synchronisation complète au prochain passage)"
    ), activated.stderr

    synced = workspace.subprocess("sync")
    assert synced.returncode == 1
    assert re.search(r"nord\s+clients\s+sage_to_ssm\s+partiel\s+lus 6, créés 5", synced.stdout)
    assert re.search(r"nord\s+clients\s+ssm_to_sage\s+réussi", synced.stdout)
    assert synced.stderr.strip() == (
        "ÉCHEC nord clients sage_to_ssm : partiel : 1 enregistrement(s) non synchronisé(s), "
        "voir les incidents"
    )

    status = lines_of(workspace.subprocess("status").stdout)
    assert status[0] == [
        "DOSSIER",
        "NOM",
        "ÉTAT",
        "ENTITÉ",
        "SAGE->SSM",
        "SSM->SAGE",
        "SYNCHRONISÉS",
        "ERREUR",
        "INCIDENTS",
    ]
    assert status[1][2] == "actif" and status[1][4].startswith("partiel ")

    journal = lines_of(workspace.subprocess("journal", "--dossier", "nord").stdout)
    assert journal[0][:4] == ["PROCESSUS", "ENTITÉ", "SENS", "DÉCLENCHEUR"]
    assert {row[3] for row in journal[1:]} == {"activation"}
    assert any("lus=6 créés=5" in cell for row in journal[1:] for cell in row)

    incidents = workspace.subprocess("incidents").stdout
    header, row = lines_of(incidents)
    assert header[:6] == ["ID", "DOSSIER", "ENTITÉ", "ENREGISTREMENT", "TYPE", "ÉTAT"]
    assert header[6:] == ["FOIS", "MESSAGE"]
    assert row[4:7] == ["enregistrement invalide", "ouvert", "1"]
    assert row[7].startswith("Dossier nord, client CL00001 : ") and "pas-une-adresse" in row[7]

    checked = workspace.subprocess("mapping", "check", "--dossier", "nord")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("Dossier nord : ")
    assert "vérifié d’après" in checked.stdout
    assert checked.stdout.strip().endswith("Tout ce dont le mapping a besoin est dans la source.")

    # a record's error, from the notice of its incident
    records = lines_of(
        workspace.subprocess("records", "--dossier", "nord", "--label", "error").stdout
    )
    assert records[0][0] == "ENTITÉ" and records[0][-2:] == ["ÉTIQUETTE", "ERREUR"]
    assert records[1][-2] == "erreur"
    assert records[1][-1].startswith("Dossier nord, client CL00001 : adresse e-mail non valide")

    # what the next sync would do: its counts, its actions and why a record would fail
    workspace.sage_execute("nord", NEW_CITY)
    dry = workspace.subprocess("sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    said_lines = dry.stdout.splitlines()

    def said_once(pattern: str) -> None:
        assert len([x for x in said_lines if re.fullmatch(pattern, x)]) == 1, (pattern, dry.stdout)

    said_once(r"nord\s+clients\s+sage_to_ssm\s+modifierait 1, refuserait 1")
    said_once(r"\s+modifié\s+CL00002\s+city: '.+' -> 'Albi'")
    said_once(
        r"\s+échec\s+CL00001\s+Dossier nord, client CL00001 : adresse e-mail non valide : "
        r"'pas-une-adresse'\. .+"
    )
    said_once(r"nord\s+clients\s+ssm_to_sage\s+rien à faire")
    assert said_lines[-1] == "(simulation : rien n’a été écrit)"
    previewed = json.loads(workspace.subprocess("sync", "--dry-run", "--json").stdout)
    failed = [r for r in previewed[0]["entities"][0]["records"] if r["action"] == "failed"]
    assert failed[0]["detail"].startswith(
        "Dossier nord, client CL00001: e-mail address is not valid"
    )

    # each problem of a configuration that is not valid, its JSON path kept
    text = workspace.config_path.read_text(encoding="utf-8")
    incomplete = text.replace('name = "Groupe de test"\n', "", 1) + "[cli]\ncolour = 1\n"
    (workspace.root / "incomplet.toml").write_text(incomplete, encoding="utf-8")
    invalid = [sys.executable, "-m", "dossiersync.cli", "--config", "incomplet.toml", "status"]
    refused = subprocess.run(invalid, capture_output=True, text=True, cwd=workspace.root)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "erreur : incomplet.toml n’est pas valide :",
        "  $.cli : Clé non autorisée ici : 'colour'",
        "  $.implementation : 'name' est une clé obligatoire",
    ]
    invalid[3:3] = ["--lang", "en"]
    in_english = subprocess.run(invalid, capture_output=True, text=True, cwd=workspace.root)
    assert "  $.implementation: 'name' is a required property" in in_english.stderr.splitlines()

    # an error of the command line and one of the connector, in French
    unknown = workspace.subprocess("status", "--dossier", "sud")
    assert unknown.returncode == 2
    assert "Erreur : dossier inconnu 'sud' : il n’est ni dans la configuration" in unknown.stderr
    assert re.search(r"Voir « .+ status --help » pour l’aide\.", unknown.stderr)
    missing = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", "nulle-part.toml", "status"],
        capture_output=True,
        text=True,
        cwd=workspace.root,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith(
        "erreur : fichier de configuration nulle-part.toml introuvable (utilisez --config"
    )

    # --json stays English, keys and values: programs read it
    runs = json.loads(workspace.subprocess("journal", "--dossier", "nord", "--json").stdout)
    assert {r["outcome"] for r in runs} == {"partial", "succeeded"}
    assert any(r["message"] == "1 record(s) not synced, see incidents" for r in runs)
    listed = json.loads(workspace.subprocess("incidents", "--json").stdout)
    assert listed[0]["state"] == "open" and listed[0]["kind"] == "invalid_record"
    assert listed[0]["message"].startswith("Dossier nord, client CL00001: ")

    # --lang wins over the locale
    english = workspace.subprocess("--lang", "en", "status").stdout
    assert english.splitlines()[0].split()[:3] == ["DOSSIER", "NAME", "STATE"]

    # the status fields: the table of fields, the question and what was not done
    workspace.extra_config = '\n[implementation.status_fields]\nlanguage = "fr"\n'
    workspace.write_config()
    fields = workspace.subprocess("ssm", "fields", stdin=subprocess.DEVNULL)
    assert fields.returncode == 0, fields.stderr
    shown = fields.stdout.splitlines()
    assert lines_of(shown[0])[0] == ["RESSOURCE", "RÔLE", "CHAMP", "TYPE", "ÉTAT"]
    assert lines_of("\n".join(shown[1:4])) == [
        ["accounts", "dossier", "Z_dossier", "list", "manquant"],
        ["accounts", "état", "Z_sync_state", "list", "manquant"],
        ["accounts", "problème", "Z_sync_problem", "text", "manquant"],
    ]
    assert shown[4].startswith("Créer les 3 champs manquants dans Sales Management ?")
    assert shown[-1].startswith("Non créés : accounts.Z_dossier, accounts.Z_sync_state")
    assert workspace.http.get("/extrafields/accounts").json() == []

    # the status page's address, as serve prints it at start
    command = [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path)]
    serving = subprocess.Popen(
        [*command, "serve", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serving.stderr is not None
        first, second = serving.stderr.readline(), serving.stderr.readline()
        # stopped once it serves: a SIGTERM before then is the CLI's, which only asks the
        # running pass to stop
        address = re.search(r"http://127\.0\.0\.1:\d+/", first)
        assert address, first
        assert httpx.get(f"{address.group(0)}api/status", timeout=30).status_code == 401
    finally:
        serving.terminate()
        serving.wait(30)
    assert re.match(r"Page d’état : http://127\.0\.0\.1:\d+/\?token=\S+$", first), first
    assert second.startswith("(jeton généré et conservé dans "), second

    # a key Sales Management refuses: the connector's words in French, not the API's
    login = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "--config", str(workspace.config_path)]
        + ["sync", "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ, SSM_PRIVATE_KEY="pas-la-bonne"),
    )
    assert login.returncode == 1
    assert re.search(
        r"^ÉCHEC nord clients sage_to_ssm : échec : http://\S+ : connexion refusée : "
        r"vérifiez la clé publique/privée$",
        login.stderr,
        re.M,
    ), login.stderr
    assert "login refused: check the public/private key" in login.stdout  # --json: English


def test_the_configuration_chooses_the_language_and_lang_comes_first(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in lang.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.extra_config = '\n[cli]\nlanguage = "fr"\n'
    workspace.write_config()
    assert workspace.cli("status").stdout.split()[:3] == ["DOSSIER", "NOM", "ÉTAT"]
    helped = workspace.cli("sync", "--help").stdout
    assert "Synchronise une fois les dossiers actifs." in helped
    english = workspace.cli("--lang", "en", "status").stdout
    assert english.split()[:3] == ["DOSSIER", "NAME", "STATE"]
    # the next command, without the setting, speaks the locale's language again
    workspace.extra_config = ""
    workspace.write_config()
    assert workspace.cli("status").stdout.split()[:3] == ["DOSSIER", "NAME", "STATE"]


def test_a_lost_lease_is_journaled_in_english_and_told_in_french(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    holder = acquire(store, "nord", 10)
    now = [0.0]
    fence = Fence(store, "nord", holder, 10, clock=lambda: now[0])
    now[0] = 11.0  # held up past its lease, which another process took over meanwhile
    with store.session() as s:
        s.execute(update(Lease).where(Lease.dossier_id == "nord").values(holder="machine-b:42"))
    with pytest.raises(LeaseLost) as lost:
        fence.check()
    store.dispose()
    message = said_of(lost.value)
    english = (
        "dossier nord: its lease was taken over by machine-b:42; stopped before its next "
        "write, the dossier is left to its new holder"
    )
    assert message == english and str(lost.value) == english
    try:
        lang.choose("fr")
        assert spoken(message) == (
            "dossier nord : son bail a été repris par machine-b:42 ; arrêté avant sa prochaine "
            "écriture, le dossier est laissé à son nouveau détenteur"
        )
        assert str(message) == english  # what the journal and the log keep
    finally:
        lang.choose(lang.from_environment())


def test_a_plugin_that_cannot_be_found_is_said_in_french() -> None:
    from dossiersync.errors import PluginError
    from dossiersync.registry import load_endpoint

    with pytest.raises(PluginError) as missing:
        load_endpoint("nulle-part")
    assert str(missing.value).startswith(
        "endpoint plugin 'nulle-part' not found in dossiersync.endpoints (available: "
    )
    try:
        lang.choose("fr")
        assert lang.error_text(missing.value).startswith(
            "plugin de point d’accès 'nulle-part' introuvable dans dossiersync.endpoints "
            "(disponibles : "
        )
    finally:
        lang.choose(lang.from_environment())


def test_the_demo_speaks_french(tmp_path: Path, french: None) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "dossiersync.cli", "demo", "--clients", "1", "--dir", "demo"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    said_lines = demo.stdout.splitlines()
    assert said_lines[0] == "== Écriture de trois dossiers Sage 50FR de référence dans demo/"
    written = next(line for line in said_lines if line.startswith("demo/nord.db"))
    assert re.fullmatch(
        r"demo/nord\.db : 1 client \(\d+ prospects?, \d+ en sommeil\), \d+ contacts?, "
        r"\d+ familles?, \d+ articles?, \d+ lignes? de stock, \d+ commandes? \(\d+ lignes?\), "
        r"\d+ factures? \(\d+ lignes?\)",
        written,
    )
    status = said_lines.index("== État : dossiersync status")
    assert said_lines[status + 1].split()[:4] == ["DOSSIER", "NOM", "ÉTAT", "ENTITÉ"]
    assert "== Nouvelle synchronisation : dossiersync sync" in said_lines
    orders = next(i for i, line in enumerate(said_lines) if line.startswith("== Les commandes"))
    assert said_lines[orders + 1].startswith("RÉF. SSM  EXT ID")
    assert said_lines[orders + 1].endswith("TOTAL (SSM)  LECTURE SEULE")
    assert said_lines[orders + 2].split()[-1] == "oui"
    assert re.search(
        r"^== Simulateur de Sales Management : \d+ requêtes, 0 refusées$", demo.stdout, re.M
    )
    assert "Les fichiers de la démonstration sont dans demo/." in demo.stdout


def test_the_test_kit_has_plugins_tests_read_english_unless_asked(tmp_path: Path) -> None:
    """dossiersync.testing, loaded in a plugin's own suite (no conftest of ours): the
    command line speaks English on a French machine, French when the suite asks for it."""
    (tmp_path / "test_language.py").write_text(
        "import os\n"
        "from dossiersync.testing import Workspace\n\n"
        "def test_language(cli_speaks):\n"
        "    assert os.environ['LANGUAGE'] == os.environ['EXPECTED']\n"
        "    cli_speaks('fr')\n"
        "    assert os.environ['LANGUAGE'] == 'fr'\n",
        encoding="utf-8",
    )
    french_machine = {k: v for k, v in os.environ.items() if k not in lang.ENVIRONMENT}
    french_machine.update(LANGUAGE="fr", LANG="fr_FR.UTF-8")

    def run(expected: str, *options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(french_machine, EXPECTED=expected),
            timeout=120,
        )

    pinned = run("en")
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    asked = run("fr", "-o", "dossiersync_language=locale")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    wrong = run("en", "-o", "dossiersync_language=de")
    assert wrong.returncode != 0 and "dossiersync_language" in wrong.stderr
