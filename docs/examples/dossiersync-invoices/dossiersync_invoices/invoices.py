"""Invoices and credit notes: Sage ``F_DOCENTETE`` + ``F_DOCLIGNE`` -> SSM ``salesInvoices``.

One way, Sage to SSM, read-only in SSM:

- sales documents (``DO_Domaine`` 0) of type 6 (invoice) and 7 (credit note), each with
  its lines, become one ``salesInvoices`` record whose ``lines`` is a JSON array;
- ``extId`` = ``<dossier>:<domain>:<type>:<piece>``, e.g. ``nord:0:6:FA00012``;
- the document's client is a reference to the ``clients`` entity of the same dossier: a
  document whose client is not synced yet waits (``pending``) and goes once it is;
- a line edited, added or removed in Sage resends the whole document;
- a document deleted in Sage is deleted (soft) in SSM.

``salesInvoices`` is not part of the public Sales Management API (assumed resource:
the dossiersync simulator offers it).  The endpoint's equality filters cannot say
``DO_Type IN (6, 7)``, so this plugin runs two parts, one per document type, each
with its own name, cursor and links: ``invoices`` and ``credit_notes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

from dossiersync.plugin import SAGE_TO_SSM, ChildSpec, Entity, FieldSpec

if TYPE_CHECKING:
    from dossiersync.plugin import DossierContext


class InvoicesEntity(Entity):
    """Sales invoices (``DO_Type`` 6); runs the credit notes as its second part."""

    name = "invoices"
    depends_on = ("clients",)
    directions = (SAGE_TO_SSM,)
    sage_table = "F_DOCENTETE"
    ssm_resource = "salesInvoices"
    sage_deletions = "always"
    key_fields = ("domain", "type", "piece")
    # how incidents name a record and its fields, in English and French
    record_noun = {"en": "invoice", "fr": "facture"}
    labels = {
        "piece": {"en": "invoice number", "fr": "numéro de pièce"},
        "date": {"en": "invoice date", "fr": "date de la facture"},
        "account": {"en": "client account", "fr": "compte client"},
        "total_ht": {"en": "total excluding VAT", "fr": "total HT"},
        "total_ttc": {"en": "total including VAT", "fr": "total TTC"},
        "lines.product": {"en": "product", "fr": "article"},
        "lines.designation": {"en": "description", "fr": "désignation"},
        "lines.quantity": {"en": "quantity", "fr": "quantité"},
        "lines.price": {"en": "unit price", "fr": "prix unitaire"},
        "lines.discount": {"en": "discount", "fr": "remise"},
        "lines.total": {"en": "line total", "fr": "montant HT"},
    }
    fields = (
        FieldSpec("domain", sage="DO_Domaine", owner="sage", kind="int"),
        FieldSpec("type", sage="DO_Type", owner="sage", kind="int"),
        FieldSpec("piece", sage="DO_Piece", ssm="number", owner="sage"),
        FieldSpec("date", sage="DO_Date", ssm="date", owner="sage"),
        FieldSpec("account", sage="DO_Tiers", ssm="accountId", owner="sage", ref="clients"),
        FieldSpec("total_ht", sage="DO_TotalHT", ssm="totalHT", owner="sage", kind="decimal"),
        FieldSpec("total_ttc", sage="DO_TotalTTC", ssm="totalTTC", owner="sage", kind="decimal"),
    )
    # the document's F_DOCLIGNE rows (same DO_Domaine, DO_Type, DO_Piece), sent as a
    # JSON array in SSM's ``lines``; a line edited, added or removed resends the document
    children = (
        ChildSpec(
            "lines",
            sage_table="F_DOCLIGNE",
            key="line",
            ssm="lines",
            fields=(
                FieldSpec("line", sage="DL_Ligne", kind="int"),
                FieldSpec("product", sage="AR_Ref", ssm="product"),
                FieldSpec("designation", sage="DL_Design", ssm="designation"),
                FieldSpec("quantity", sage="DL_Qte", ssm="quantity", kind="decimal"),
                FieldSpec("price", sage="DL_PrixUnitaire", ssm="price", kind="decimal"),
                FieldSpec("discount", sage="DL_Remise01REM_Valeur", ssm="discount", kind="decimal"),
                FieldSpec("total", sage="DL_MontantHT", ssm="total", kind="decimal"),
            ),
        ),
    )

    #: the ``DO_Type`` this part reads, and the ``kind`` SSM shows for it
    document_type: ClassVar[int] = 6
    document_kind: ClassVar[str] = "invoice"

    def parts(self) -> tuple[Entity, ...]:
        return (self, CreditNotesEntity())

    def load_schema(self) -> dict[str, Any]:
        # the schema ships in this package, not in dossiersync.schemas
        text = resources.files(__package__).joinpath("invoice.schema.json").read_text("utf-8")
        schema: dict[str, Any] = json.loads(text)
        return schema

    def sage_where(self) -> dict[str, Any]:
        return {"DO_Domaine": 0, "DO_Type": self.document_type}

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        # a piece number may hold ':'; domain and type never do
        domain, kind, piece = text.split(":", 2)
        return (int(domain), int(kind), piece)

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        body = super().to_ssm(record, names, ctx, create)
        if create:
            # a copy of an ERP document: nobody edits it in Sales Management
            body.update(kind=self.document_kind, readOnly=True)
        return body


class CreditNotesEntity(InvoicesEntity):
    """Credit notes (``DO_Type`` 7): the second part of the ``invoices`` plugin."""

    name = "credit_notes"
    record_noun = {"en": "credit note", "fr": "avoir"}
    document_type = 7
    document_kind = "credit_note"

    def parts(self) -> tuple[Entity, ...]:
        return (self,)
