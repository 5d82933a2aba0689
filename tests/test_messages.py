"""Incident and error messages a Sage user can act on, in English and French.

Every rule the entity schemas use has words in both languages (no regular expression
shown); an incident names the dossier, the record (Sage key, SSM id) and the field; the
CLI shows the English words, the page the page's language, older incidents their
stored message.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from dossiersync.entities.clients import ClientsEntity
from dossiersync.entities.contacts import ContactsEntity
from dossiersync.entities.orders import OrdersEntity
from dossiersync.entities.products import ProductFamiliesEntity, ProductsEntity
from dossiersync.entity import Entity
from dossiersync.errors import RecordInvalid
from dossiersync.messages import (
    CAUSES,
    KINDS,
    LANGUAGES,
    PASS_KINDS,
    RULES,
    Cause,
    Notice,
    Problem,
    incident_text,
    rule_of,
    schema_rules,
)
from dossiersync.reports import incidents
from dossiersync.schemas import __file__ as schemas_init
from dossiersync.state.store import StateStore, _alembic_config

from support.workspace import Workspace

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SCHEMAS = Path(schemas_init).parent / "entities"

VALID: dict[str, dict[str, Any]] = {
    "clients": {"code": "CL00001", "name": "Boulangerie Martin", "is_prospect": False},
    "contacts": {"account": "CL00001", "number": 1, "last_name": "Martin"},
    "product_families": {"code": "PAINS", "label": "Pains"},
    "products": {"ref": "BAG-01", "designation": "Baguette", "price": "1.2", "dormant": False},
    "orders": {
        "domain": 0,
        "type": 1,
        "piece": "BC00001",
        "account": "CL00001",
        "date": "2026-05-04",
        "status": 0,
        "total_ht": "10",
        "total_ttc": "12",
        "lines": [
            {"line": 1000, "product": "BAG-01", "quantity": "1", "price": "10", "total": "10"}
        ],
    },
}
ENTITIES: list[Entity] = [
    ClientsEntity(),
    ContactsEntity(),
    ProductFamiliesEntity(),
    ProductsEntity(),
    OrdersEntity(),
]


def no_validator_text(words: str, schema_argument: Any = None) -> None:
    """Words, not a validator's text: no regular expression, keyword or placeholder."""
    assert words.strip()
    assert "{" not in words and "}" not in words, words
    assert "^" not in words and "\\" not in words and "[0-9]" not in words, words
    for keyword in ("maxLength", "minLength", "pattern", "does not match", "is not of type"):
        assert keyword not in words, words
    if isinstance(schema_argument, str) and len(schema_argument) > 3:
        assert schema_argument not in words, words


# -- every rule has words --------------------------------------------------------------


def test_every_rule_the_entity_schemas_use_has_words_in_both_languages() -> None:
    used: set[tuple[str, Any]] = set()
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        used |= schema_rules(json.loads(path.read_text(encoding="utf-8")))
    keywords = {keyword for keyword, _ in used}
    assert {"required", "type", "maxLength", "minLength", "pattern", "minimum"} <= keywords
    for keyword, argument in used:
        rule, limit = rule_of(keyword, argument)
        assert rule in RULES, (keyword, argument)
        if keyword == "pattern":
            # every regular expression of the schemas is named by what it asks for
            assert rule != "pattern", argument
        for lang in LANGUAGES:
            words = Problem(rule, "f", "§?!", limit, {"en": "the field", "fr": "le champ"}).text(
                lang
            )
            assert ("the field" if lang == "en" else "le champ") in words
            no_validator_text(words, argument if keyword == "pattern" else None)
        assert Problem(rule, "f", "x", limit, {}).text("fr") != Problem(
            rule, "f", "x", limit, {}
        ).text("en")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _breaking_values(node: dict[str, Any]) -> list[tuple[str, Any]]:
    """A value breaking each rule of a property's schema."""
    out: list[tuple[str, Any]] = []
    types = node.get("type")
    names = types if isinstance(types, list) else [types]
    if types is not None:
        out.append(("type", {"not": "expected"} if "object" not in names else 1.5))
    if "maxLength" in node:
        out.append(("maxLength", "x" * (node["maxLength"] + 1)))
    if node.get("minLength") == 1:
        out.append(("minLength", ""))
    if "pattern" in node:
        out.append(("pattern", "§ pas bon §"))
    if "minimum" in node:
        out.append(("minimum", node["minimum"] - 1))
    if "maximum" in node:
        out.append(("maximum", node["maximum"] + 1))
    if "const" in node:
        out.append(("const", 999))
    if "enum" in node:
        out.append(("enum", 999))
    if "minItems" in node:
        out.append(("minItems", []))
    return out


def _cases() -> list[tuple[Entity, str, str, Any]]:
    cases: list[tuple[Entity, str, str, Any]] = []
    for entity in ENTITIES:
        schema = entity.load_schema()
        for name, node in schema["properties"].items():
            node = _resolve(schema, node)
            cases += [(entity, name, kw, bad) for kw, bad in _breaking_values(node)]
            items = node.get("items")
            if isinstance(items, dict):
                for sub, sub_node in items["properties"].items():
                    sub_node = _resolve(schema, sub_node)
                    cases += [
                        (entity, f"lines[0].{sub}", kw, bad)
                        for kw, bad in _breaking_values(sub_node)
                    ]
        for name in schema["required"]:
            cases.append((entity, name, "required", None))
    return cases


@pytest.mark.parametrize(
    ("entity", "path", "keyword", "bad"),
    _cases(),
    ids=lambda v: v.name if isinstance(v, Entity) else str(v)[:20],
)
def test_a_record_breaking_any_rule_of_its_schema_is_told_in_words(
    entity: Entity, path: str, keyword: str, bad: Any
) -> None:
    record = deepcopy(VALID[entity.name])
    entity.validate(record)  # valid as it is
    if path.startswith("lines[0]."):
        target, name = record["lines"][0], path.split(".", 1)[1]
    else:
        target, name = record, path
    if keyword == "required":
        target.pop(name)
    else:
        target[name] = bad
    with pytest.raises(RecordInvalid) as caught:
        entity.validate(record)
    problem = caught.value.problem
    assert problem is not None
    assert caught.value.field == path
    assert str(caught.value) == problem.text("en")
    for lang in LANGUAGES:
        words = problem.text(lang)
        no_validator_text(words)
        assert words.startswith(problem.label[lang]), words
        if bad not in (None, "", []) and isinstance(bad, str):
            assert repr(bad) in words  # the value as it is
    assert problem.text("fr") != problem.text("en")


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_every_field_of_the_built_in_entities_has_a_label_in_both_languages(
    entity: Entity,
) -> None:
    schema = entity.load_schema()
    names = list(schema["properties"])
    lines = schema["properties"].get("lines", {}).get("items", {}).get("properties", {})
    names += [f"lines.{name}" for name in lines]
    for name in names:
        words = entity.field_labels.get(name)
        assert words is not None, name
        assert words.get("en") and words.get("fr"), name


def test_an_invalid_e_mail_address_is_named_in_words() -> None:
    with pytest.raises(RecordInvalid) as caught:
        ClientsEntity().validate({**VALID["clients"], "email": "pas-un-email"})
    assert caught.value.field == "email"
    assert str(caught.value) == "e-mail address is not valid: 'pas-un-email'"
    assert caught.value.problem is not None
    assert caught.value.problem.rule == "email"
    assert caught.value.problem.text("fr") == "adresse e-mail non valide : 'pas-un-email'"


def test_a_long_value_is_shortened_but_its_length_stays_true() -> None:
    with pytest.raises(RecordInvalid) as caught:
        ClientsEntity().validate({**VALID["clients"], "city": "Saint-" * 100})
    problem = caught.value.problem
    assert problem is not None
    kept = Problem.from_dict(json.loads(json.dumps(problem.as_dict())))
    for shown in (problem, kept):
        assert shown.text().startswith("city is too long: 600 characters, at most 35: 'Saint-")
        assert shown.text().endswith("…'")
        assert len(shown.text()) < 150


def test_an_order_line_is_named_by_its_number_and_field() -> None:
    order = deepcopy(VALID["orders"])
    order["lines"].append({**order["lines"][0], "line": 2000, "quantity": "0"})
    with pytest.raises(RecordInvalid) as caught:
        OrdersEntity().validate(order)
    problem = caught.value.problem
    assert problem is not None and caught.value.field == "lines[1].quantity"
    assert problem.text() == "quantity of line 2 must be a number greater than 0: '0'"
    assert problem.text("fr") == (
        "quantité de la ligne 2 : nombre supérieur à 0 attendu, et non '0'"
    )


def test_a_plugin_field_without_a_label_is_named_by_its_schema_title() -> None:
    class Titled(Entity):
        name = "titled"
        sage_table = "T"
        ssm_resource = "titled"
        key_fields = ("code",)
        fields = ()

        def load_schema(self) -> dict[str, Any]:
            return {
                "type": "object",
                "properties": {"vat_rate": {"title": "VAT rate", "type": "integer"}},
            }

    with pytest.raises(RecordInvalid) as caught:
        Titled().validate({"vat_rate": "vingt"})
    assert str(caught.value) == "VAT rate must be a whole number: 'vingt'"


# -- every incident kind has words -----------------------------------------------------

RECORD_KINDS = [k for k in KINDS if k != "other"]


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_every_record_incident_names_dossier_record_and_what_to_do(kind: str) -> None:
    notice = Notice(
        kind,
        "nord",
        entity="clients",
        direction="sage_to_ssm",
        key="CL00006",
        ssm_id=1234,
        noun=ClientsEntity.record_noun,
        problem=Problem("max_length", "city", "x" * 40, 35, {"en": "city", "fr": "ville"}),
        reason="accountId: the account does not exist",
    )
    english, french = notice.text("en"), notice.text("fr")
    assert english.startswith("Dossier nord, client CL00006 (SSM id 1234): ")
    assert french.startswith("Dossier nord, client CL00006 (id SSM 1234) : ")
    if kind == "invalid_record":
        assert "city is too long: 40 characters, at most 35" in english
        assert "ville : 40 caractères, 35 au plus" in french
    else:
        # the other system's own words are kept, inside ours
        assert "accountId: the account does not exist" in english
        assert "accountId: the account does not exist" in french
    assert english != french
    assert Notice.from_dict(json.loads(json.dumps(notice.as_dict()))) == notice


def test_a_record_known_only_in_sales_management_is_named_by_its_ssm_id() -> None:
    notice = Notice(
        "unknown_reference",
        "beta",
        entity="orders",
        direction="ssm_to_sage",
        ssm_id=42,
        noun=OrdersEntity.record_noun,
        reason="product 7 is not linked",
    )
    assert notice.text().startswith(
        "Dossier beta, order with SSM id 42 (not in Sage 50FR yet): it refers to a record"
    )
    assert notice.text("fr").startswith(
        "Dossier beta, commande d’id SSM 42 (pas encore dans Sage 50FR) : référence"
    )


SAMPLE_FIGURES: dict[str, Any] = {
    "what": "clients",
    "field": "account",
    "ssm_id": 42,
    "key": "CL00001",
    "other": "sud",
    "dossier": "nord",
    "ext_id": "nord:CL00077",
    "holder": "sud:CL00003",
    "fields": {"en": "client code", "fr": "code client"},
    "before": "CL00001",
    "after": "CL00002",
    "piece": "BC00001",
    "account": 7,
    "label": " (Boulangerie Martin)",
    "line": 3,
    "product": 9,
    "ref": "BAG-01",
    "cause": Cause("not_linked", {"what": "products", "field": "product", "ssm_id": 9}),
    "items": [Cause("line_no_product", {"line": 1, "field": "lines[0].productId"})],
}


@pytest.mark.parametrize("code", sorted(CAUSES))
def test_every_cause_of_a_refusal_has_words_in_both_languages(code: str) -> None:
    cause = Cause(code, SAMPLE_FIGURES)
    english, french = cause.text("en"), cause.text("fr")
    for words in (english, french):
        assert words != code and "{" not in words and "}" not in words, words
    assert english != french
    assert Cause.from_dict(json.loads(json.dumps(cause.as_dict()))).text("fr") == french


def test_a_refused_order_names_each_unknown_line_in_both_languages() -> None:
    items = [
        Cause(
            "line_product",
            {
                "line": 2,
                "field": "lines[1].productId",
                "product": 17,
                "label": " (Sel de Guérande)",
                "cause": Cause(
                    "other_dossier",
                    {
                        "what": "products",
                        "field": "product",
                        "ssm_id": 17,
                        "other": "alpha",
                        "dossier": "beta",
                    },
                ),
            },
        ),
        Cause("line_not_in_sage", {"line": 3, "field": "lines[2].productId", "ref": "OLD-1"}),
    ]
    notice = Notice(
        "unknown_reference",
        "beta",
        entity="orders",
        direction="ssm_to_sage",
        ssm_id=42,
        cause=Cause("products_unknown", {"ssm_id": 42, "dossier": "beta", "items": items}),
    )
    assert (
        "line 2 (lines[1].productId): product 17 (Sel de Guérande) (product 17 belongs to "
        "dossier alpha, not beta); line 3 (lines[2].productId): article OLD-1 is no longer "
        "in Sage" in notice.text("en")
    )
    french = Notice.from_dict(json.loads(json.dumps(notice.as_dict()))).text("fr")
    assert (
        "ligne 2 (lines[1].productId) : article 17 (Sel de Guérande) (article 17 "
        "appartient au dossier alpha, pas au dossier beta) ; ligne 3 (lines[2].productId) : "
        "l’article OLD-1 n’est plus dans Sage" in french
    )


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mass_deletion_refused.sage_to_ssm", {"vanishing": 30, "known": 40}),
        ("mass_deletion_refused.ssm_to_sage", {"vanishing": 30, "known": 40}),
        ("restored_database", {"table": "F_COMPTET", "now": "2026-01-01", "before": "2026-02"}),
        ("run_failed", {}),
    ],
)
def test_every_pass_incident_has_words_in_both_languages(name: str, params: dict[str, Any]) -> None:
    assert name in PASS_KINDS
    kind, _, direction = name.partition(".")
    notice = Notice(
        kind,
        "nord",
        entity="clients",
        direction=direction or "sage_to_ssm",
        reason="cannot open the data source",
        params=params,
    )
    english, french = notice.text("en"), notice.text("fr")
    for words in (english, french):
        assert "{" not in words
        for value in params.values():
            assert str(value) in words
    assert english != french


# -- stored incidents: older rows, the CLI, the page -----------------------------------


def test_an_incident_written_before_notices_shows_its_stored_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = create_engine(url)
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0003")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dossier (id, name, origin, state, needs_full_sync, created_at) "
                "VALUES ('nord', 'Nord', 'configuration', 'active', false, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO incident (dossier_id, entity, record_key, direction, kind, field, "
                "message, first_seen, last_seen, occurrences, state) VALUES ('nord', 'clients', "
                "'CL00006', 'sage_to_ssm', 'invalid_record', 'email', 'field ''email'' fails "
                "rule ''pattern''', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 'open')"
            )
        )
    engine.dispose()
    store = StateStore(url)  # migrates to the head
    (old,) = incidents(store, "nord")
    store.dispose()
    assert old["detail"] is None
    for lang in LANGUAGES:
        assert incident_text(old, lang) == "field 'email' fails rule 'pattern'"


TOKEN = "web-token-for-message-tests-0123"


def test_an_invalid_e_mail_is_an_incident_in_words_in_the_cli_and_on_the_page_in_french(
    workspace: Workspace,
) -> None:
    from dossiersync.config import load
    from dossiersync.web import create_app

    workspace.add_dossier("nord", clients=12, seed=1)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'pas-un-email' WHERE CT_Num = 'CL00006'"
    )
    workspace.activate_all()
    workspace.sync(expect=1)
    # a client already in SSM becomes invalid: its incident names its SSM id too
    ssm_id = workspace.account("nord:CL00007")["id"]
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'chez moi@exemple', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00007'",
    )
    workspace.sync(expect=1)

    found = {
        i["record_key"]: i for i in workspace.cli_json("incidents", "--dossier", "nord", "--open")
    }
    assert set(found) == {"CL00006", "CL00007"}
    new, synced = found["CL00006"], found["CL00007"]
    assert (new["kind"], new["field"]) == ("invalid_record", "email")
    assert new["message"] == (
        "Dossier nord, client CL00006: e-mail address is not valid: 'pas-un-email'. "
        "Correct it in Sage 50FR: the next sync picks it up again."
    )
    assert synced["message"].startswith(
        f"Dossier nord, client CL00007 (SSM id {ssm_id}): "
        "e-mail address is not valid: 'chez moi@exemple'."
    )
    assert new["detail"]["problem"]["rule"] == "email"
    assert synced["detail"]["ssm_id"] == ssm_id
    pattern = ClientsEntity().load_schema()["properties"]["email"]["pattern"]
    table = workspace.cli("incidents", "--dossier", "nord").output
    assert "e-mail address is not valid: 'pas-un-email'" in table
    assert pattern not in table

    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\n'
    workspace.write_config()
    config = load(workspace.config_path)
    store = StateStore(config.state_url)
    try:
        app = create_app(config, store)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        french = TestClient(app, headers={**auth, "Accept-Language": "fr-FR,fr;q=0.9"})
        english = TestClient(app, headers={**auth, "Accept-Language": "en-GB"})
        # the page as read: entities unescaped
        listing = html.unescape(french.get("/incidents?dossier=nord").text)
        assert (
            "Dossier nord, client CL00006 : adresse e-mail non valide : 'pas-un-email'. "
            "Corrigez la fiche dans Sage 50FR : la prochaine synchronisation la reprendra."
        ) in listing
        assert f"client CL00007 (id SSM {ssm_id}) : adresse e-mail non valide" in listing
        one = french.get(f"/incidents/{new['incident_id']}").text
        shown = re.search(r'id="incident-message">([^<]*)<', one)
        assert shown is not None
        assert html.unescape(shown.group(1)).startswith(
            "Dossier nord, client CL00006 : adresse e-mail non valide : 'pas-un-email'."
        )
        assert 'data-field="email">adresse e-mail (email)<' in one
        page = html.unescape(english.get(f"/incidents/{new['incident_id']}").text)
        assert new["message"] in page
        assert 'data-field="email">e-mail address (email)<' in page
        with_id = english.get(f"/incidents/{synced['incident_id']}").text
        assert f'data-ssm-id="{ssm_id}">{ssm_id}<' in with_id
        assert "data-ssm-id" not in page  # not in SSM yet: no id to show
        for answer in (listing, html.unescape(one), page):
            assert pattern not in answer
    finally:
        store.dispose()


@pytest.mark.ssm_refusals
def test_a_record_sales_management_refuses_quotes_its_answer_in_both_languages(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=20, seed=1, entities=("clients", "contacts"))
    workspace.activate_all()
    workspace.sync("--entity", "clients")
    code, number = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
    workspace.ssm_delete("accounts", workspace.account(f"nord:{code}")["id"])

    workspace.sync("--entity", "contacts", expect=1)
    found = {
        i["record_key"]: i
        for i in workspace.cli_json("incidents", "--dossier", "nord", "--open")
        if i["kind"] == "refused_by_ssm"
    }
    incident = found[f"{code}:{number}"]
    english = incident["message"]
    assert english.startswith(
        f"Dossier nord, contact {code}:{number}: Sales Management refused it: "
    )
    assert "accountId" in english  # the API's own words, inside ours
    assert "/contacts" not in english  # not the request it answered
    assert english.endswith("Correct the record in Sage 50FR; it is tried again on every sync.")
    french = incident_text(incident, "fr")
    assert french.startswith(
        f"Dossier nord, contact {code}:{number} : refus de Sales Management : "
    )
    assert "accountId" in french


def test_a_contact_moved_to_another_dossier_is_told_in_both_languages(
    workspace: Workspace,
) -> None:
    entities = ("clients", "contacts")
    workspace.add_dossier("nord", clients=10, seed=1, entities=entities)
    workspace.add_dossier("sud", clients=10, seed=2, entities=entities)
    workspace.activate_all()
    workspace.sync()
    code, number = workspace.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
    contact = workspace.record("contacts", f"nord:{code}:{number}")
    elsewhere = workspace.account("sud:CL00002")
    workspace.ssm_put("contacts", contact["id"], {"accountId": elsewhere["id"]})

    workspace.sync(expect=1)
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert incident["kind"] == "moved_between_dossiers"
    assert incident["message"] == (
        f"Dossier nord, contact {code}:{number} (SSM id {contact['id']}): account "
        f"{elsewhere['id']} belongs to dossier sud, not nord. A record never moves between "
        "dossiers: nothing was written on either side. Point it back to its own dossier in "
        "Sales Management."
    )
    assert incident_text(incident, "fr") == (
        f"Dossier nord, contact {code}:{number} (id SSM {contact['id']}) : client "
        f"{elsewhere['id']} appartient au dossier sud, pas au dossier nord. Une fiche ne change "
        "jamais de dossier : rien n’a été écrit, ni d’un côté ni de l’autre. Rattachez la "
        "fiche de nouveau à son dossier dans Sales Management."
    )


def test_an_edit_sage_cannot_write_is_told_in_both_languages(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=12, seed=1)
    workspace.activate_all()
    workspace.sync()
    code = next(c for c, row in workspace.sage_clients("nord").items() if row["CT_Prospect"])
    workspace.sage_execute(
        "nord",
        f"CREATE TRIGGER verrou BEFORE UPDATE ON F_COMPTET WHEN OLD.CT_Num = '{code}' "
        "BEGIN SELECT RAISE(ABORT, 'fiche verrouillée dans Sage'); END",
    )
    account = workspace.account(f"nord:{code}")
    workspace.ssm_put("accounts", account["id"], {"city": "Quimper"})

    workspace.sync(expect=1)
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert incident["kind"] == "sage_write_failed"
    english, french = incident["message"], incident_text(incident, "fr")
    assert english.startswith(
        f"Dossier nord, client {code} (SSM id {account['id']}): writing it to Sage 50FR failed: "
    )
    assert english.endswith("(not locked by Sage 50FR); it is tried again on every sync.")
    assert french.startswith(
        f"Dossier nord, client {code} (id SSM {account['id']}) : échec de l’écriture dans "
        "Sage 50FR : "
    )
    for words in (english, french):
        assert "fiche verrouillée dans Sage" in words  # the driver's own words, inside ours
