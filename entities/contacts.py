"""Contacts: Sage ``F_CONTACTT`` <-> SSM ``contacts``, attached to their account.

- Both ways; the account is a reference to the ``clients`` entity of the same dossier.
  A contact whose account is not synced yet waits as ``pending`` and syncs once the
  account does.
- A contact cannot move: pointing it in SSM to another account (of this dossier or of
  another) is refused with an incident and nothing is written.
- Deletion propagates only from the side where the contact was created; the other
  side's deletion leaves the record ``pending_review``.
- A field owned by both sides that changed on both since the last sync keeps Sage's
  value (``conflict_winner = "sage"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dossiersync.plugin import SAGE_TO_SSM, SSM_TO_SAGE, Entity, FieldSpec, Unreadable

if TYPE_CHECKING:
    from dossiersync.plugin import DossierContext


class ContactsEntity(Entity):
    name = "contacts"
    depends_on = ("clients",)
    directions = (SAGE_TO_SSM, SSM_TO_SAGE)
    sage_table = "F_CONTACTT"
    ssm_resource = "contacts"
    schema = "entities/contacts.schema.json"
    conflict_winner = "sage"
    sage_deletions = "origin"
    ssm_deletions = "origin"
    key_fields = ("account", "number")
    record_noun = {"en": "contact", "fr": "contact"}
    record_plural = {"en": "contacts", "fr": "contacts"}
    labels = {
        "account": {"en": "client account", "fr": "compte client"},
        "number": {"en": "contact number", "fr": "numéro du contact"},
        "last_name": {"en": "last name", "fr": "nom"},
        "first_name": {"en": "first name", "fr": "prénom"},
        "civility": {"en": "title", "fr": "civilité"},
        "position": {"en": "position", "fr": "fonction"},
        "phone": {"en": "phone number", "fr": "téléphone"},
        "mobile": {"en": "mobile number", "fr": "téléphone portable"},
        "email": {"en": "e-mail address", "fr": "adresse e-mail"},
        "comment": {"en": "comment", "fr": "commentaire"},
    }
    fields = (
        FieldSpec("account", sage="CT_Num", ssm="accountId", owner="sage", ref="clients"),
        FieldSpec("number", sage="CT_No", owner="sage", kind="int"),
        FieldSpec("last_name", sage="CT_Nom", ssm="lastName", owner="both"),
        FieldSpec("first_name", sage="CT_Prenom", ssm="firstName", owner="both"),
        FieldSpec("civility", sage="CT_Civilite", owner="sage", kind="int"),
        FieldSpec("position", sage="CT_Fonction", ssm="position", owner="both"),
        FieldSpec("phone", sage="CT_Telephone", ssm="phone1", owner="both"),
        FieldSpec("mobile", sage="CT_TelPortable", ssm="phone2", owner="both"),
        FieldSpec("email", sage="CT_EMail", ssm="email", owner="both"),
        FieldSpec("comment", ssm="comment", owner="ssm"),
    )

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        account, _, number = text.rpartition(":")
        return (account, int(number))

    def sage_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        number = row["CT_No"]
        # a number that cannot be read names the row as it is; it is its incident's key
        return (
            str(row["CT_Num"]).strip(),
            number if isinstance(number, Unreadable) else int(number),
        )

    def ssm_unlinked_filter(self, ctx: DossierContext) -> Mapping[str, int | str] | None:
        # contacts created in SSM belong to the dossier of their account
        return {}

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        body = super().to_ssm(record, names, ctx, create)
        if create:
            # required by the API; the implementation's sales rep, as for accounts
            body["salesRepId"] = ctx.ssm_settings.default_sales_rep_id
        return body

    def belongs_to_dossier(self, record: Mapping[str, Any], ctx: DossierContext) -> bool:
        account = ctx.ssm_client.fk_id(record.get("accountId"))
        return account is not None and ctx.refs.owner_of("clients", account) == ctx.dossier_id

    def new_sage_key(self, record: Mapping[str, Any], ctx: DossierContext) -> tuple[Any, ...]:
        account = str(record["account"])
        rows = ctx.sage.read("F_CONTACTT", ["CT_No"], where={"CT_Num": account})
        # a number that cannot be read (1.5, 'abc') is no integer the new one could take
        numbers = [int(row["CT_No"]) for row in rows if not isinstance(row["CT_No"], Unreadable)]
        return (account, max(numbers, default=0) + 1)

    def to_sage(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        values = super().to_sage(record, names, ctx, create)
        if create:
            values["CT_Num"] = record["account"]
            values["CT_No"] = int(record["number"])
        return values
