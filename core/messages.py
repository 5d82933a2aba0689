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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

#: the longest value an incident quotes
MAX_VALUE = 80
#: the most characters of another system's message an incident repeats
MAX_REASON = 500

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
    "unreadable": {
        "en": "{label} cannot be read as it is ({expected}): {value}",
        "fr": "{label} illisible tel quel ({expected}) : {value}",
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
SEMICOLON = {"en": "; ", "fr": " ; "}
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
    if not path or path == "(record)":
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
    #: the value's length (text) or count (list), kept apart as a long value is shortened
    length: int | None = None

    def __post_init__(self) -> None:
        if self.length is None and isinstance(self.value, str | list):
            object.__setattr__(self, "length", len(self.value))

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        template = RULES.get(self.rule, RULES["invalid"])[lang]
        label = self.label.get(lang) or self.label.get(DEFAULT_LANGUAGE) or self.field or ""
        return template.format(
            label=label,
            value=quote(self.value, lang),
            limit=_limit(self.limit, lang),
            length="" if self.length is None else self.length,
            expected=_expected(self.limit, lang),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "field": self.field,
            "value": _plain(self.value),
            "limit": _plain(self.limit),
            "label": dict(self.label),
            "length": self.length,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            rule=str(data.get("rule") or "invalid"),
            field=data.get("field"),
            value=data.get("value"),
            limit=data.get("limit"),
            label=dict(data.get("label") or {}),
            length=data["length"] if isinstance(data.get("length"), int) else None,
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


def shortened(text: str | None, limit: int) -> str:
    """``text`` cut at ``limit`` characters, its full length said: a value of 10,000
    characters (another system's message repeating it) is never repeated whole."""
    if not text:
        return ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


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


# -- why a record was refused ----------------------------------------------------------

#: why a record cannot be written as it is, with its figures filled in; ``{what}`` is
#: the kind of record referred to (``client``…), ``{field}`` the referring field's name,
#: ``{cause}``/``{items}`` nested causes. These are the core's; an entity's own
#: (``Entity.causes``) join them when its class is defined (``declare``)
CAUSES: dict[str, dict[str, str]] = {
    "other_dossier": {
        "en": "{field} {ssm_id} belongs to dossier {other}, not {dossier}",
        "fr": "{what} {ssm_id} appartient au dossier {other}, pas au dossier {dossier}",
    },
    "not_linked": {
        "en": "{field} {ssm_id} in Sales Management is not linked to Sage yet",
        "fr": "{what} {ssm_id} de Sales Management n’est pas encore lié à Sage",
    },
    "waiting": {
        "en": "waiting for {field} {key} ({what}) to be synced",
        "fr": "en attente de la synchronisation : {what} {key}",
    },
    "ext_id_taken": {
        "en": "Sales Management record {ssm_id} with extId {ext_id} is already linked to {holder}",
        "fr": "l’enregistrement {ssm_id} de Sales Management, d’extId {ext_id}, est déjà "
        "lié à {holder}",
    },
    "key_changed": {
        "en": "{fields} changed in Sales Management ({before} -> {after})",
        "fr": "{fields} modifié dans Sales Management ({before} -> {after})",
    },
    "deleted_in_ssm": {
        "en": "deleted in Sales Management; kept in Sage 50FR, which a deletion made in Sales "
        "Management does not reach (label pending_review)",
        "fr": "fiche supprimée dans Sales Management ; conservée dans Sage 50FR, où une "
        "suppression faite dans Sales Management ne se reporte pas (étiquette pending_review)",
    },
    "deleted_in_ssm_then_changed": {
        "en": "deleted in Sales Management; kept in Sage 50FR, which a deletion made in Sales "
        "Management does not reach (label pending_review). It was changed in Sage 50FR after "
        "that deletion: the change was not sent and nothing was created again in Sales "
        "Management",
        "fr": "fiche supprimée dans Sales Management ; conservée dans Sage 50FR, où une "
        "suppression faite dans Sales Management ne se reporte pas (étiquette pending_review). "
        "Elle a été modifiée dans Sage 50FR après cette suppression : la modification n’a "
        "pas été envoyée et rien n’a été recréé dans Sales Management",
    },
}


@dataclass(frozen=True)
class Cause:
    """Why a record cannot be written, as data: a code of ``CAUSES`` and its figures.

    A figure may itself be a cause (``cause``) or a list of causes (``items``).
    """

    code: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        template = CAUSES.get(self.code, {}).get(lang) if _known(CAUSES, self.code) else None
        values: dict[str, Any] = {}
        for name, value in self.params.items():
            if isinstance(value, Cause):
                values[name] = value.text(lang)
            elif isinstance(value, list) and all(isinstance(v, Cause) for v in value):
                values[name] = SEMICOLON[lang].join(v.text(lang) for v in value)
            elif isinstance(value, Mapping) and value and set(value) <= set(LANGUAGES):
                values[name] = value.get(lang) or value.get(DEFAULT_LANGUAGE)
            elif name == "what":
                _known(NOUNS, str(value))
                values[name] = NOUNS.get(str(value), {}).get(lang, str(value))
            else:
                values[name] = "" if value is None else value
        try:
            return template.format(**values) if template else self.code
        except (KeyError, IndexError):
            return self.code

    def as_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Cause):
                return value.as_dict()
            if isinstance(value, list):
                return [plain(v) for v in value]
            return _plain(value)

        return {"code": self.code, "params": {k: plain(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cause:
        def back(value: Any) -> Any:
            if isinstance(value, Mapping) and "code" in value and "params" in value:
                return cls.from_dict(value)
            if isinstance(value, list):
                return [back(v) for v in value]
            return value

        params = data.get("params") or {}
        return cls(str(data.get("code")), {k: back(v) for k, v in params.items()})


# -- incidents --------------------------------------------------------------------------

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
    "deleted_in_ssm": {
        "en": "{reason}. Its Sage 50FR edits are not sent any more: delete it in Sage 50FR "
        "too, or run `dossiersync deletions recreate --dossier {dossier_id} --entity {entity} "
        "{key}` to create it again in Sales Management.",
        "fr": "{reason}. Ses modifications dans Sage 50FR ne sont plus envoyées : supprimez "
        "aussi la fiche dans Sage 50FR, ou lancez `dossiersync deletions recreate --dossier "
        "{dossier_id} --entity {entity} {key}` pour la recréer dans Sales Management.",
    },
    "other": {"en": "{reason}", "fr": "{reason}"},
}

#: incidents about a whole pass, from their parameters
PASS_KINDS: dict[str, dict[str, str]] = {
    "mass_deletion_refused.sage_to_ssm": {
        "en": "{vanishing} of {known} known {entity} vanished from Sage at once: deletions "
        "refused (restored or replaced Sage database?); the next sync of this dossier is a "
        "full realigning one. They stay in Sales Management, labelled pending_review; if "
        "they were deleted in Sage 50FR on purpose, run `{confirm}` and the next sync deletes "
        "them there",
        "fr": "{vanishing} {entity_fr} connus sur {known} ont disparu de Sage d’un coup : "
        "suppressions refusées (base Sage restaurée ou remplacée ?) ; la prochaine "
        "synchronisation de ce dossier sera complète et réalignera tout. Ils restent dans "
        "Sales Management, étiquetés pending_review ; s’ils ont été supprimés dans Sage 50FR "
        "volontairement, lancez `{confirm}` et la prochaine synchronisation les y supprimera",
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
    # the same, naming what the restored database lacks and what a person can do
    "restored_database.kept": {
        "en": "Sage 50FR table {table} was last modified at {now}, before what this dossier "
        "already synced ({before}): restored database? Full realigning sync with Sage as "
        "master; nothing deleted in Sales Management: {vanished} {entity} not in the restored "
        "database are kept there, labelled pending_review. If they were deleted in Sage 50FR "
        "on purpose, run `{confirm}` and the next sync deletes them in Sales Management; "
        "otherwise enter them again in Sage 50FR (or restore a newer backup) and the next "
        "sync takes them up. This incident closes once none is left.",
        "fr": "La table Sage 50FR {table} a été modifiée pour la dernière fois le {now}, "
        "avant ce que ce dossier avait déjà synchronisé ({before}) : base restaurée ? "
        "Synchronisation complète de réalignement, Sage faisant foi ; rien n’est supprimé "
        "dans Sales Management : {vanished} fiches ({entity}) absentes de la base restaurée "
        "y sont conservées, étiquetées pending_review. Si elles ont été supprimées dans Sage "
        "50FR volontairement, lancez `{confirm}` et la prochaine synchronisation les "
        "supprimera dans Sales Management ; sinon, saisissez-les de nouveau dans Sage 50FR "
        "(ou restaurez une sauvegarde plus récente) et la prochaine synchronisation les "
        "reprendra. Cet incident se ferme quand il n’en reste aucune.",
    },
    "run_failed": {
        "en": "{reason}",
        "fr": "La synchronisation n’a pas pu se faire : {reason}",
    },
}

#: what a record of each entity is called, by entity name (``Entity.record_noun``, added
#: when its class is defined); "" is a record of no entity
NOUNS: dict[str, dict[str, str]] = {"": {"en": "record", "fr": "fiche"}}
#: what records of each entity are called in French, by entity name
#: (``Entity.record_plural``; English says the entity's name)
PLURALS: dict[str, str] = {}

#: loads the installed entities' classes, so that a process which never synced (the
#: incidents' page, ``dossiersync incidents``) knows their words: set by the registry,
#: which this module may not import
entity_loader: Callable[[], object] | None = None
_loaded = False


def declare(
    entity: str,
    noun: Mapping[str, str],
    plural: Mapping[str, str],
    causes: Mapping[str, Mapping[str, str]],
) -> None:
    """Add an entity's words: what one record is called, what several are, and the
    causes of a refusal it gives (a code another entity gives in other words is refused)."""
    for code, words in causes.items():
        held = CAUSES.get(code)
        if held is not None and held != dict(words):
            raise ValueError(f"entity {entity}: cause {code!r} is already said otherwise")
        CAUSES[code] = dict(words)
    if noun:
        NOUNS[entity] = dict(noun)
    if plural.get("fr"):
        PLURALS[entity] = plural["fr"]


def _known(table: Mapping[str, Any], name: str) -> bool:
    """Whether ``name`` is in ``table``, the installed entities' words loaded once if not."""
    global _loaded
    if name not in table and not _loaded and entity_loader is not None:
        _loaded = True
        try:
            entity_loader()
        except Exception:  # noqa: BLE001 - a broken plugin leaves its names as they are
            pass
    return name in table


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
    #: a cause in ours, written in either language (takes the place of ``reason``)
    cause: Cause | None = None
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
            reason=self.cause.text(lang) if self.cause else shortened(self.reason, MAX_REASON),
            source=SOURCE.get(self.direction or "", "Sage 50FR"),
            dossier_id=self.dossier_id,
            entity=self.entity or "",
            key=self.key or "",
        )
        return f"{self.subject(lang)}: {body}" if lang == "en" else f"{self.subject(lang)} : {body}"

    def subject(self, lang: str) -> str:
        noun = self.noun.get(lang)
        if not noun and _known(NOUNS, self.entity or ""):
            noun = NOUNS[self.entity or ""].get(lang)
        noun = noun or self.entity or NOUNS[""][lang]
        if self.key and self.ssm_id is not None:
            form = "key_and_id"
        elif self.key:
            form = "key"
        elif self.ssm_id is not None:
            form = "id"
        else:
            form = "none"
        key = shortened(self.key, MAX_VALUE)
        record = SUBJECT[form][lang].format(noun=noun, key=key, ssm_id=self.ssm_id)
        return f"{DOSSIER[lang].format(dossier=self.dossier_id)}, {record}"

    def _pass_text(self, lang: str) -> str:
        name = self.kind
        if self.kind == "mass_deletion_refused":
            name = f"{self.kind}.{self.direction}"
        elif self.kind == "restored_database" and self.params.get("vanished"):
            name = f"{self.kind}.kept"
        template = PASS_KINDS.get(name, {}).get(lang)
        entity = self.entity or ""
        reason = shortened(self.reason, MAX_REASON)
        values = dict(self.params, reason=reason, entity=entity)
        values["confirm"] = f"dossiersync deletions confirm --dossier {self.dossier_id}"
        if entity:
            values["confirm"] += f" --entity {entity}"
        values["entity_fr"] = PLURALS.get(entity, entity) if _known(PLURALS, entity) else entity
        try:
            return template.format(**values) if template else reason
        except (KeyError, IndexError):
            return reason

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
            "cause": self.cause.as_dict() if self.cause else None,
            "params": {k: _plain(v) for k, v in self.params.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        problem = data.get("problem")
        cause = data.get("cause")
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
            cause=Cause.from_dict(cause) if isinstance(cause, Mapping) else None,
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
