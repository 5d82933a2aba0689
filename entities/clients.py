"""Clients and prospects: Sage ``F_COMPTET`` <-> SSM ``accounts``.

- Customers go Sage -> SSM and are read-only in SSM.
- Prospects go both ways; an SSM account whose type is set to client is created (or
  converted) in Sage as a client and becomes read-only.
- A Sage deletion marks the SSM account deleted; SSM deletions are not propagated.
- SSM-only fields (comment, custom fields, the sales rep assigned in SSM) are never
  written by the connector after the account is created.
- A field owned by both sides that changed on both since the last sync keeps Sage's
  value (``conflict_winner = "sage"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dossiersync.plugin import SAGE_TO_SSM, SSM_TO_SAGE, Entity, FieldSpec

if TYPE_CHECKING:
    from dossiersync.plugin import DossierContext


class ClientsEntity(Entity):
    name = "clients"
    directions = (SAGE_TO_SSM, SSM_TO_SAGE)
    sage_table = "F_COMPTET"
    ssm_resource = "accounts"
    schema = "entities/clients.schema.json"
    conflict_winner = "sage"
    key_fields = ("code",)
    record_noun = {"en": "client", "fr": "client"}
    record_plural = {"en": "clients", "fr": "clients"}
    labels = {
        "code": {"en": "client code", "fr": "code client"},
        "name": {"en": "name", "fr": "intitulé"},
        "is_prospect": {"en": "prospect flag", "fr": "type prospect"},
        "address1": {"en": "address", "fr": "adresse"},
        "address2": {"en": "address complement", "fr": "complément d’adresse"},
        "postcode": {"en": "postcode", "fr": "code postal"},
        "city": {"en": "city", "fr": "ville"},
        "country": {"en": "country", "fr": "pays"},
        "phone": {"en": "phone number", "fr": "téléphone"},
        "email": {"en": "e-mail address", "fr": "adresse e-mail"},
        "web": {"en": "website", "fr": "site web"},
        "vat_number": {"en": "VAT number", "fr": "numéro de TVA intracommunautaire"},
        "siret": {"en": "SIRET number", "fr": "numéro SIRET"},
        "dormant": {"en": "dormant flag", "fr": "mise en sommeil"},
        "comment": {"en": "comment", "fr": "commentaire"},
        "sales_rep": {"en": "sales representative", "fr": "commercial"},
    }
    fields = (
        FieldSpec("code", sage="CT_Num", owner="sage"),
        FieldSpec("name", sage="CT_Intitule", ssm="name", owner="both"),
        FieldSpec("is_prospect", sage="CT_Prospect", ssm="typeId", owner="both", kind="bool"),
        FieldSpec("address1", sage="CT_Adresse", ssm="address1", owner="both"),
        FieldSpec("address2", sage="CT_Complement", ssm="address2", owner="both"),
        FieldSpec("postcode", sage="CT_CodePostal", ssm="postcode", owner="both"),
        FieldSpec("city", sage="CT_Ville", ssm="city", owner="both"),
        FieldSpec("country", sage="CT_Pays", owner="sage"),
        FieldSpec("phone", sage="CT_Telephone", ssm="phone", owner="both"),
        FieldSpec("email", sage="CT_EMail", ssm="email", owner="both"),
        FieldSpec("web", sage="CT_Site", ssm="web", owner="both"),
        FieldSpec("vat_number", sage="CT_Identifiant", ssm="vatNumber", owner="both"),
        FieldSpec("siret", sage="CT_Siret", owner="sage"),
        FieldSpec("dormant", sage="CT_Sommeil", owner="sage", kind="bool"),
        FieldSpec("comment", ssm="comment", owner="ssm"),
        FieldSpec("sales_rep", ssm="salesRepId1", owner="ssm", kind="int"),
    )

    def sage_where(self) -> dict[str, Any]:
        return {"CT_Type": 0}

    # typeId carries is_prospect on the SSM side
    def from_ssm(self, record: Mapping[str, Any], ctx: DossierContext) -> dict[str, Any]:
        out = super().from_ssm(record, ctx)
        type_id = ctx.ssm_client.fk_id(record.get("typeId"))
        ids = ctx.ssm_settings
        if type_id == ids.client_type_id:
            out["is_prospect"] = False
        elif type_id == ids.prospect_type_id:
            out["is_prospect"] = True
        else:
            out.pop("is_prospect", None)
        return out

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        names = list(names)
        body = super().to_ssm(record, [n for n in names if n != "is_prospect"], ctx, create)
        ids = ctx.ssm_settings
        if "is_prospect" in names or create:
            prospect = bool(record.get("is_prospect"))
            body["typeId"] = ids.prospect_type_id if prospect else ids.client_type_id
            body["readOnly"] = not prospect
        if create:
            body["branchId"] = ctx.dossier.branch_id or ids.default_branch_id
            body["salesRepId1"] = ids.default_sales_rep_id
        return body

    def to_sage(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        values = super().to_sage(record, names, ctx, create)
        if "CT_Prospect" in values:
            values["CT_Prospect"] = 1 if values["CT_Prospect"] else 0
        if create:
            values["CT_Num"] = record["code"]
            values["CT_Type"] = 0
            values.setdefault("CT_Sommeil", 0)
            values.setdefault("CT_Prospect", 1 if record.get("is_prospect") else 0)
        return values

    def ssm_may_change(self, base: Mapping[str, Any]) -> tuple[str, ...]:
        # a customer is read-only in SSM: only prospects are edited there
        if base.get("is_prospect"):
            return tuple(f.name for f in self.fields_to_sage)
        return ()

    def ssm_unlinked_filter(self, ctx: DossierContext) -> Mapping[str, int | str] | None:
        # accounts created in SSM belong to the dossier whose branch they are in
        branch = ctx.dossier.branch_id
        return None if branch is None else {"branchId": int(branch)}

    def belongs_to_dossier(self, record: Mapping[str, Any], ctx: DossierContext) -> bool:
        branch = ctx.dossier.branch_id
        return branch is not None and ctx.ssm_client.fk_id(record.get("branchId")) == branch

    def new_sage_key(self, record: Mapping[str, Any], ctx: DossierContext) -> tuple[Any, ...]:
        return (ctx.sage.next_code("F_COMPTET", "CT_Num", ctx.dossier.code_prefix, 8),)

    def after_sage_write(
        self, record: Mapping[str, Any], changed: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        # a prospect turned client in SSM is a Sage customer from now on: read-only
        if "is_prospect" in set(changed):
            return {"readOnly": record.get("is_prospect") is False}
        return {}
