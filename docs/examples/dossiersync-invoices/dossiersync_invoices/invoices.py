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
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

from dossiersync.entity import SAGE_TO_SSM, Entity, FieldSpec, Kind, normalise

if TYPE_CHECKING:
    from dossiersync.context import DossierContext

SALES = 0
INVOICE = 6
CREDIT_NOTE = 7

# virtual columns: filled in ``enrich``, not read from F_DOCENTETE
KIND = "document_kind"
LINES = "document_lines"

LINE_TABLE = "F_DOCLIGNE"
LINE_COLUMNS = (
    "AR_Ref",
    "DL_Design",
    "DL_Qte",
    "DL_PrixUnitaire",
    "DL_Remise01REM_Valeur",
    "DL_MontantHT",
)
# canonical line field -> (Sage column of F_DOCLIGNE, kind)
LINE_FIELDS: Mapping[str, tuple[str, Kind]] = {
    "product": ("AR_Ref", "text"),
    "designation": ("DL_Design", "text"),
    "quantity": ("DL_Qte", "decimal"),
    "price": ("DL_PrixUnitaire", "decimal"),
    "discount": ("DL_Remise01REM_Valeur", "decimal"),
    "total": ("DL_MontantHT", "decimal"),
}
LINE_DECIMALS = tuple(name for name, (_, kind) in LINE_FIELDS.items() if kind == "decimal")


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
        FieldSpec("kind", sage=KIND, ssm="kind", owner="sage", virtual=True),
        FieldSpec("lines", sage=LINES, ssm="lines", owner="sage", virtual=True),
    )

    #: the ``DO_Type`` this part reads, and the ``kind`` SSM shows for it
    document_type: ClassVar[int] = INVOICE
    document_kind: ClassVar[str] = "invoice"

    def parts(self) -> tuple[Entity, ...]:
        return (self, CREDIT_NOTES)

    def load_schema(self) -> dict[str, Any]:
        # the schema ships in this package, not in dossiersync.schemas
        text = resources.files(__package__).joinpath("invoice.schema.json").read_text("utf-8")
        schema: dict[str, Any] = json.loads(text)
        return schema

    # -- which rows ------------------------------------------------------------------

    def sage_where(self) -> dict[str, Any]:
        return {"DO_Domaine": SALES, "DO_Type": self.document_type}

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        # a piece number may hold ':'; domain and type never do
        domain, kind, piece = text.split(":", 2)
        return (int(domain), int(kind), piece)

    def extra_changed_keys(self, ctx: DossierContext, since: str | None) -> set[str]:
        # a line edited or added changes F_DOCLIGNE, not the header
        return {
            self.key_text((row["DO_Domaine"], row["DO_Type"], row["DO_Piece"]))
            for row in ctx.sage.read(
                LINE_TABLE,
                ["DO_Domaine", "DO_Type", "DO_Piece"],
                since=since,
                where=self.sage_where(),
            )
        }

    # -- headers + lines -------------------------------------------------------------

    def enrich(self, rows: list[dict[str, Any]], ctx: DossierContext) -> None:
        for row in rows:
            row[KIND] = self.document_kind
            document = {
                "DO_Domaine": row["DO_Domaine"],
                "DO_Type": row["DO_Type"],
                "DO_Piece": row["DO_Piece"],
            }
            # ordered by key, so by DL_Ligne
            row[LINES] = [
                {
                    name: normalise(line.get(column), kind)
                    for name, (column, kind) in LINE_FIELDS.items()
                }
                for line in ctx.sage.read(LINE_TABLE, LINE_COLUMNS, where=document)
            ]

    def from_sage(self, row: Mapping[str, Any]) -> dict[str, Any]:
        record = super().from_sage({**row, LINES: None})
        record["lines"] = [dict(line) for line in row.get(LINES) or ()]
        return record

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        names = list(names)
        body = super().to_ssm(record, [n for n in names if n != "lines"], ctx, create)
        if "lines" in names:
            body["lines"] = [_ssm_line(line) for line in record.get("lines") or ()]
        if create:
            # a copy of an ERP document: nobody edits it in Sales Management
            body["readOnly"] = True
        return body


class CreditNotesEntity(InvoicesEntity):
    """Credit notes (``DO_Type`` 7): the second part of the ``invoices`` plugin."""

    name = "credit_notes"
    record_noun = {"en": "credit note", "fr": "avoir"}
    document_type = CREDIT_NOTE
    document_kind = "credit_note"

    def parts(self) -> tuple[Entity, ...]:
        return (self,)


CREDIT_NOTES = CreditNotesEntity()


def _ssm_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical line as SSM holds it: amounts as JSON numbers."""
    return {
        name: float(Decimal(value)) if name in LINE_DECIMALS and value is not None else value
        for name, value in line.items()
    }
