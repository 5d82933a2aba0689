"""Incident and error messages in words a Sage user can act on, in English and French.

A record that fails its schema is a :class:`Problem`: the rule in a word (``email``,
``max_length``, ``required``…), the field, the value and the rule's limit, never the
validator's text (which shows regular expressions).  An incident is a :class:`Notice`:
the dossier, the record (Sage key and SSM id when known), what went wrong and what to do.
The incident row keeps the English text in ``message`` (the journal and the CLI stay
readable) and the notice in ``detail``, from which the page writes the page's language.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

#: the longest value an incident quotes
MAX_VALUE = 80

Words = Mapping[str, str]  # language -> text

# -- rules ------------------------------------------------------------------------------

#: what each rule says, with ``{label}``, ``{value}``, ``{limit}``, ``{length}``,
#: ``{expected}`` filled in
RULES: dict[str, dict[str, str]] = {
    "required": {
        "en": "{label} is missing",
        "fr": "{label} : valeur obligatoire absente",
    },
    "type": {
        "en": "{label} must be {expected}: {value}",
        "fr": "{label} : {expected} attendu, et non {value}",
    },
    "max_length": {
        "en": "{label} is too long: {length} characters, at most {limit}: {value}",
        "fr": "{label} : {length} caractères, {limit} au plus : {value}",
    },
    "min_length": {
        "en": "{label} needs at least {limit} character(s): {value}",
        "fr": "{label} : {limit} caractère(s) au moins : {value}",
    },
    "empty": {
        "en": "{label} is empty",
        "fr": "{label} : valeur vide",
    },
    "minimum": {
        "en": "{label} must be at least {limit}: {value}",
        "fr": "{label} : {limit} au minimum, et non {value}",
    },
    "maximum": {
        "en": "{label} must be at most {limit}: {value}",
        "fr": "{label} : {limit} au maximum, et non {value}",
    },
    "exclusive_minimum": {
        "en": "{label} must be greater than {limit}: {value}",
        "fr": "{label} : doit être supérieur à {limit}, et non {value}",
    },
    "exclusive_maximum": {
        "en": "{label} must be less than {limit}: {value}",
        "fr": "{label} : doit être inférieur à {limit}, et non {value}",
    },
    "multiple_of": {
        "en": "{label} must be a multiple of {limit}: {value}",
        "fr": "{label} : multiple de {limit} attendu, et non {value}",
    },
    "enum": {
        "en": "{label} must be one of {limit}: {value}",
        "fr": "{label} : une des valeurs {limit} attendue, et non {value}",
    },
    "const": {
        "en": "{label} must be {limit}: {value}",
        "fr": "{label} : {limit} attendu, et non {value}",
    },
    "min_items": {
        "en": "{label}: at least {limit} needed, {length} here",
        "fr": "{label} : {limit} au moins, {length} ici",
    },
    "max_items": {
        "en": "{label}: at most {limit}, {length} here",
        "fr": "{label} : {limit} au plus, {length} ici",
    },
    "unique_items": {
        "en": "{label} lists the same value twice",
        "fr": "{label} : la même valeur figure deux fois",
    },
    "additional_properties": {
        "en": "{label} has unexpected field(s): {value}",
        "fr": "{label} : champ(s) inattendu(s) : {value}",
    },
    "format": {
        "en": "{label} is not a valid {limit}: {value}",
        "fr": "{label} : {limit} non valide : {value}",
    },
    "email": {
        "en": "{label} is not valid: {value}",
        "fr": "{label} non valide : {value}",
    },
    "code": {
        "en": "{label} must be 1 to {limit} letters, digits, '_', '.' or '-': {value}",
        "fr": "{label} : de 1 à {limit} lettres, chiffres, « _ », « . » ou « - », et non {value}",
    },
    "decimal": {
        "en": "{label} is not a number: {value}",
        "fr": "{label} : nombre attendu, et non {value}",
    },
    "positive_decimal": {
        "en": "{label} must be a number greater than 0: {value}",
        "fr": "{label} : nombre supérieur à 0 attendu, et non {value}",
    },
    "percentage": {
        "en": "{label} must be a percentage from 0 to 100: {value}",
        "fr": "{label} : pourcentage de 0 à 100 attendu, et non {value}",
    },
    "date": {
        "en": "{label} is not a date (YYYY-MM-DD): {value}",
        "fr": "{label} : date attendue (AAAA-MM-JJ), et non {value}",
    },
    "pattern": {
        "en": "{label} does not have the expected form: {value}",
        "fr": "{label} : forme inattendue : {value}",
    },
    "invalid": {
        "en": "{label} is not valid: {value}",
        "fr": "{label} non valide : {value}",
    },
}

#: JSON Schema keywords -> rule
KEYWORD_RULES = {
    "required": "required",
    "type": "type",
    "maxLength": "max_length",
    "minLength": "min_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "multipleOf": "multiple_of",
    "enum": "enum",
    "const": "const",
    "minItems": "min_items",
    "maxItems": "max_items",
    "uniqueItems": "unique_items",
    "additionalProperties": "additional_properties",
    "format": "format",
    "pattern": "pattern",
}

#: regular expressions of the entity schemas, named by what they ask for
PATTERN_RULES = {
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "email",
    r"^-?[0-9]+(\.[0-9]+)?$": "decimal",
    r"^(?!0(\.0+)?$)[0-9]+(\.[0-9]+)?$": "positive_decimal",
    r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$": "percentage",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "date",
}
#: a Sage code: ``^[A-Za-z0-9_.-]{1,17}$``
CODE_PATTERN = re.compile(r"^\^\[A-Za-z0-9_\.-\]\{1,(\d+)\}\$$")

TYPES = {
    "string": {"en": "text", "fr": "un texte"},
    "integer": {"en": "a whole number", "fr": "un nombre entier"},
    "number": {"en": "a number", "fr": "un nombre"},
    "boolean": {"en": "yes or no", "fr": "oui ou non"},
    "array": {"en": "a list", "fr": "une liste"},
    "object": {"en": "a record", "fr": "un objet"},
    "null": {"en": "empty", "fr": "vide"},
}
OR = {"en": " or ", "fr": " ou "}
NOTHING = {"en": "empty", "fr": "vide"}


def rule_of(keyword: str, argument: Any) -> tuple[str, Any]:
    """The rule (and its limit) a JSON Schema keyword with this argument asks for."""
    if keyword == "pattern" and isinstance(argument, str):
        if argument in PATTERN_RULES:
            return PATTERN_RULES[argument], None
        code = CODE_PATTERN.match(argument)
        if code:
            return "code", int(code.group(1))
        return "pattern", None
    if keyword == "minLength" and argument == 1:
        return "empty", None
    if keyword in ("required", "additionalProperties", "uniqueItems"):
        return KEYWORD_RULES[keyword], None
    rule = KEYWORD_RULES.get(keyword)
    if rule is None:
        return "invalid", None
    return rule, argument


# -- field labels -----------------------------------------------------------------------

#: path parts naming a record's lines: ``lines[1].quantity`` is "quantity of line 2"
LINE = {"en": "{label} of line {n}", "fr": "{label} de la ligne {n}"}
_INDEX = re.compile(r"\[(\d+)\]")


def field_label(labels: Mapping[str, Words], path: str | None) -> dict[str, str]:
    """A field path in words, per language: the entity's label, else the name itself.

    ``labels`` maps canonical names (``email``; ``lines.quantity`` for a line field) to
    their words; ``lines[1].quantity`` becomes "quantity of line 2".
    """
    if not path:
        return {lang: {"en": "the record", "fr": "l’enregistrement"}[lang] for lang in LANGUAGES}
    numbers = _INDEX.findall(path)
    plain = _INDEX.sub("", path)
    words = labels.get(plain) or labels.get(plain.rsplit(".", 1)[-1])
    out = {}
    for lang in LANGUAGES:
        label = (words or {}).get(lang) or (words or {}).get(DEFAULT_LANGUAGE)
        label = label or plain.rsplit(".", 1)[-1].replace("_", " ")
        if numbers:
            label = LINE[lang].format(label=label, n=int(numbers[-1]) + 1)
        out[lang] = label
    return out


# -- what a record breaks ---------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The rule a record's field breaks, in terms words are made of."""

    rule: str
    field: str | None
    value: Any = None
    limit: Any = None
    label: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        template = RULES.get(self.rule, RULES["invalid"])[lang]
        label = self.label.get(lang) or self.label.get(DEFAULT_LANGUAGE) or self.field or ""
        return template.format(
            label=label,
            value=quote(self.value, lang),
            limit=_limit(self.limit, lang),
            length=len(self.value) if isinstance(self.value, str | list) else "",
            expected=_expected(self.limit, lang),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "field": self.field,
            "value": _plain(self.value),
            "limit": _plain(self.limit),
            "label": dict(self.label),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            rule=str(data.get("rule") or "invalid"),
            field=data.get("field"),
            value=data.get("value"),
            limit=data.get("limit"),
            label=dict(data.get("label") or {}),
        )


def problem_of(
    keyword: str,
    argument: Any,
    instance: Any,
    path: str | None,
    labels: Mapping[str, Words],
    schema: Mapping[str, Any] | None = None,
) -> Problem:
    """The problem a validator's error (``keyword`` failed on ``instance`` at ``path``) is."""
    rule, limit = rule_of(keyword, argument)
    value: Any = instance
    if rule == "required":
        value = None
    elif rule == "additional_properties" and isinstance(instance, Mapping):
        known = set((schema or {}).get("properties") or {})
        value = ", ".join(sorted(str(k) for k in instance if k not in known))
    elif rule in ("min_items", "max_items") and isinstance(instance, list):
        value = list(instance)
    return Problem(rule, path, value, limit, field_label(labels, path))


def quote(value: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """A value as an incident shows it: text in quotes, shortened; empty in words."""
    if value is None or value == "":
        return NOTHING.get(lang, NOTHING[DEFAULT_LANGUAGE])
    if isinstance(value, bool):
        return {"en": ("no", "yes"), "fr": ("non", "oui")}[lang][value]
    if isinstance(value, list | tuple):
        return TYPES["array"][lang]
    if isinstance(value, Mapping):
        return TYPES["object"][lang]
    text = str(value)
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def _limit(limit: Any, lang: str) -> str:
    if isinstance(limit, list):
        return ", ".join(quote(v, lang) for v in limit)
    if limit is None:
        return ""
    return quote(limit, lang) if isinstance(limit, str | bool) else str(limit)


def _expected(limit: Any, lang: str) -> str:
    names = limit if isinstance(limit, list) else [limit]
    return OR[lang].join(TYPES.get(str(n), {}).get(lang, str(n)) for n in names)


def _plain(value: Any) -> Any:
    """A value the state store's JSON column keeps as it is."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value][:20]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in list(value.items())[:20]}
    text = str(value)
    return text if len(text) <= MAX_VALUE * 4 else text[: MAX_VALUE * 4]


# -- incidents --------------------------------------------------------------------------

SIDES = {"sage": "Sage 50FR", "ssm": "Sales Management"}
#: where a record is corrected, by direction
SOURCE = {"sage_to_ssm": "Sage 50FR", "ssm_to_sage": "Sales Management"}

SUBJECT = {
    "key_and_id": {"en": "{noun} {key} (SSM id {ssm_id})", "fr": "{noun} {key} (id SSM {ssm_id})"},
    "key": {"en": "{noun} {key}", "fr": "{noun} {key}"},
    "id": {
        "en": "{noun} with SSM id {ssm_id} (not in Sage 50FR yet)",
        "fr": "{noun} d’id SSM {ssm_id} (pas encore dans Sage 50FR)",
    },
    "none": {"en": "{noun}", "fr": "{noun}"},
}
DOSSIER = {"en": "Dossier {dossier}", "fr": "Dossier {dossier}"}

#: what each kind of incident says after the record, then what to do
KINDS: dict[str, dict[str, str]] = {
    "invalid_record": {
        "en": "{problem}. Correct it in {source}: the next sync picks it up again.",
        "fr": "{problem}. Corrigez la fiche dans {source} : la prochaine synchronisation "
        "la reprendra.",
    },
    "refused_by_ssm": {
        "en": "Sales Management refused it: {reason}. Correct the record in {source}; "
        "it is tried again on every sync.",
        "fr": "refus de Sales Management : {reason}. Corrigez la fiche dans {source} ; "
        "un nouvel essai a lieu à chaque synchronisation.",
    },
    "sage_write_failed": {
        "en": "writing it to Sage 50FR failed: {reason}. Check that the dossier can be "
        "written to (not locked by Sage 50FR); it is tried again on every sync.",
        "fr": "échec de l’écriture dans Sage 50FR : {reason}. Vérifiez que le dossier "
        "accepte l’écriture (pas verrouillé par Sage 50FR) ; un nouvel essai a lieu à chaque "
        "synchronisation.",
    },
    "unknown_reference": {
        "en": "it refers to a record dossier {dossier_id} does not know: {reason}. Point it "
        "to a record of this dossier in Sales Management; it is tried again on every sync.",
        "fr": "référence à une fiche que le dossier {dossier_id} ne connaît pas : {reason}. "
        "Rattachez la fiche à une fiche de ce dossier dans Sales Management ; un nouvel essai "
        "a lieu à chaque synchronisation.",
    },
    "moved_between_dossiers": {
        "en": "{reason}. A record never moves between dossiers: nothing was written on "
        "either side. Point it back to its own dossier in Sales Management.",
        "fr": "{reason}. Une fiche ne change jamais de dossier : rien n’a été écrit, ni "
        "d’un côté ni de l’autre. Rattachez la fiche de nouveau à son dossier dans Sales "
        "Management.",
    },
    "account_changed": {
        "en": "its account was changed in Sales Management once synced: {reason}. Put its "
        "account back in Sales Management.",
        "fr": "compte changé dans Sales Management après la synchronisation : {reason}. "
        "Remettez le compte d’origine dans Sales Management.",
    },
    "other": {"en": "{reason}", "fr": "{reason}"},
}

#: incidents about a whole pass, from their parameters
PASS_KINDS: dict[str, dict[str, str]] = {
    "mass_deletion_refused.sage_to_ssm": {
        "en": "{vanishing} of {known} known {entity} vanished from Sage at once: deletions "
        "refused (restored or replaced Sage database?); the next sync of this dossier is a "
        "full realigning one",
        "fr": "{vanishing} {entity_fr} connus sur {known} ont disparu de Sage d’un coup : "
        "suppressions refusées (base Sage restaurée ou remplacée ?) ; la prochaine "
        "synchronisation de ce dossier sera complète et réalignera tout",
    },
    "mass_deletion_refused.ssm_to_sage": {
        "en": "{vanishing} of {known} linked {entity} missing from the Sales Management "
        "listing: nothing deleted in Sage 50FR",
        "fr": "{vanishing} {entity_fr} liés sur {known} absents de la liste de Sales "
        "Management : rien n’a été supprimé dans Sage 50FR",
    },
    "restored_database": {
        "en": "Sage 50FR table {table} was last modified at {now}, before what this dossier "
        "already synced ({before}): restored database? Full realigning sync with Sage as "
        "master; nothing deleted in Sales Management.",
        "fr": "La table Sage 50FR {table} a été modifiée pour la dernière fois le {now}, "
        "avant ce que ce dossier avait déjà synchronisé ({before}) : base restaurée ? "
        "Synchronisation complète de réalignement, Sage faisant foi ; rien n’est supprimé "
        "dans Sales Management.",
    },
    "run_failed": {
        "en": "{reason}",
        "fr": "La synchronisation n’a pas pu se faire : {reason}",
    },
}

#: what a record of each built-in entity is called (a plugin's own says ``record_noun``)
NOUNS: dict[str, dict[str, str]] = {
    "clients": {"en": "client", "fr": "client"},
    "contacts": {"en": "contact", "fr": "contact"},
    "products": {"en": "product", "fr": "article"},
    "product_families": {"en": "product family", "fr": "famille d’articles"},
    "orders": {"en": "order", "fr": "commande"},
}
PLURALS: dict[str, str] = {
    "clients": "clients",
    "contacts": "contacts",
    "products": "articles",
    "product_families": "familles d’articles",
    "orders": "commandes",
}


@dataclass(frozen=True)
class Notice:
    """What an incident says: which dossier, which record, what went wrong, what to do."""

    kind: str
    dossier_id: str
    entity: str | None = None
    direction: str | None = None
    #: the record's Sage key, None when it is not in Sage (yet)
    key: str | None = None
    ssm_id: int | None = None
    noun: Mapping[str, str] = dataclasses.field(default_factory=dict)
    problem: Problem | None = None
    #: a cause in another system's words (the SSM's message, the driver's error)
    reason: str | None = None
    #: the figures of an incident about a whole pass
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        if self.kind in ("run_failed", "mass_deletion_refused", "restored_database"):
            return self._pass_text(lang)
        template = KINDS.get(self.kind, KINDS["other"])[lang]
        if self.kind == "invalid_record" and self.problem is None:
            template = KINDS["other"][lang]
        body = template.format(
            problem=self.problem.text(lang) if self.problem else "",
            reason=self.reason or "",
            source=SOURCE.get(self.direction or "", "Sage 50FR"),
            dossier_id=self.dossier_id,
        )
        return f"{self.subject(lang)}: {body}" if lang == "en" else f"{self.subject(lang)} : {body}"

    def subject(self, lang: str) -> str:
        noun = self.noun.get(lang) or NOUNS.get(self.entity or "", {}).get(lang)
        noun = noun or (self.entity or {"en": "record", "fr": "fiche"}[lang])
        if self.key and self.ssm_id is not None:
            form = "key_and_id"
        elif self.key:
            form = "key"
        elif self.ssm_id is not None:
            form = "id"
        else:
            form = "none"
        record = SUBJECT[form][lang].format(noun=noun, key=self.key, ssm_id=self.ssm_id)
        return f"{DOSSIER[lang].format(dossier=self.dossier_id)}, {record}"

    def _pass_text(self, lang: str) -> str:
        name = self.kind
        if self.kind == "mass_deletion_refused":
            name = f"{self.kind}.{self.direction}"
        template = PASS_KINDS.get(name, {}).get(lang)
        entity = self.entity or ""
        values = dict(self.params, reason=self.reason or "", entity=entity)
        values["entity_fr"] = PLURALS.get(entity, entity)
        try:
            return template.format(**values) if template else self.reason or ""
        except (KeyError, IndexError):
            return self.reason or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dossier_id": self.dossier_id,
            "entity": self.entity,
            "direction": self.direction,
            "key": self.key,
            "ssm_id": self.ssm_id,
            "noun": dict(self.noun),
            "problem": self.problem.as_dict() if self.problem else None,
            "reason": self.reason,
            "params": {k: _plain(v) for k, v in self.params.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        problem = data.get("problem")
        ssm_id = data.get("ssm_id")
        return cls(
            kind=str(data.get("kind") or "other"),
            dossier_id=str(data.get("dossier_id") or ""),
            entity=data.get("entity"),
            direction=data.get("direction"),
            key=data.get("key"),
            ssm_id=int(ssm_id) if isinstance(ssm_id, int) else None,
            noun=dict(data.get("noun") or {}),
            problem=Problem.from_dict(problem) if isinstance(problem, Mapping) else None,
            reason=data.get("reason"),
            params=dict(data.get("params") or {}),
        )


def incident_text(incident: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """An incident (a row of ``reports.incidents``) in ``lang``; an incident written
    before incidents kept their notice shows its stored message."""
    detail = incident.get("detail")
    if isinstance(detail, Mapping) and detail.get("kind"):
        try:
            return Notice.from_dict(detail).text(lang)
        except (KeyError, ValueError, TypeError):
            pass
    return str(incident.get("message") or "")


def record_of(key: str | None, ssm_id: int | None) -> tuple[str | None, int | None]:
    """The Sage key and SSM id an incident's record key names: ``ssm:<resource>/<id>`` is a
    record known only in SSM."""
    if key and key.startswith("ssm:"):
        tail = key.rsplit("/", 1)[-1]
        return None, ssm_id if ssm_id is not None else (int(tail) if tail.isdigit() else None)
    return key or None, ssm_id


def schema_rules(schema: Any) -> set[tuple[str, Any]]:
    """Every (keyword, argument) of a schema that can fail, for the tests and the docs."""
    found: set[tuple[str, Any]] = set()
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in KEYWORD_RULES:
                argument = value if isinstance(value, str | int | float | bool) else None
                found.add((key, argument))
            if isinstance(value, Mapping | list):
                found |= schema_rules(value)
    elif isinstance(schema, Sequence) and not isinstance(schema, str):
        for item in schema:
            found |= schema_rules(item)
    return found
