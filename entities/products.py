"""Products: Sage ``F_ARTICLE`` (+ ``F_FAMILLE``, + total stock of ``F_ARTSTOCK``) -> SSM.

One way, Sage to SSM:

- families (``F_FAMILLE``) become SSM ``productFamilies`` and run first, as part of this
  plugin, so enabling ``products`` is enough;
- new and changed products go through ``/products/bulk`` (at most 100 per call), families
  through the generic bulk of value lists (200);
- the stock sent is the total of ``AS_QteSto`` over every depot; a stock movement is a
  change of the product even when ``F_ARTICLE`` itself did not change;
- a dormant product (``AR_Sommeil``) is ``notAvailable`` in SSM; a deleted one is
  deleted (soft) in SSM.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dossiersync.plugin import SAGE_TO_SSM, Entity, FieldSpec, Unreadable, normalise

if TYPE_CHECKING:
    from dossiersync.plugin import DossierContext

STOCK = "stock_total"


class ProductFamiliesEntity(Entity):
    name = "product_families"
    directions = (SAGE_TO_SSM,)
    sage_table = "F_FAMILLE"
    ssm_resource = "productFamilies"
    schema = "entities/product_families.schema.json"
    # the API requires the English description; Sage has one label, sent as both
    ssm_copies = {"description": "descriptionFR", "descriptionEN": "descriptionFR"}
    key_fields = ("code",)
    record_noun = {"en": "product family", "fr": "famille d’articles"}
    record_plural = {"en": "product families", "fr": "familles d’articles"}
    labels = {
        "code": {"en": "family code", "fr": "code famille"},
        "label": {"en": "family name", "fr": "intitulé de la famille"},
    }
    fields = (
        FieldSpec("code", sage="FA_CodeFamille", owner="sage"),
        FieldSpec("label", sage="FA_Intitule", ssm="descriptionFR", owner="sage"),
    )


class ProductsEntity(Entity):
    name = "products"
    directions = (SAGE_TO_SSM,)
    sage_table = "F_ARTICLE"
    ssm_resource = "products"
    schema = "entities/products.schema.json"
    ssm_copies = {"description": "model"}
    key_fields = ("ref",)
    record_noun = {"en": "product", "fr": "article"}
    record_plural = {"en": "products", "fr": "articles"}
    labels = {
        "ref": {"en": "product reference", "fr": "référence article"},
        "designation": {"en": "description", "fr": "désignation"},
        "family": {"en": "product family", "fr": "famille d’articles"},
        "price": {"en": "sale price", "fr": "prix de vente"},
        "cost": {"en": "purchase price", "fr": "prix d’achat"},
        "barcode": {"en": "barcode", "fr": "code-barres"},
        "dormant": {"en": "dormant flag", "fr": "mise en sommeil"},
        "stock": {"en": "stock", "fr": "stock"},
    }
    fields = (
        FieldSpec("ref", sage="AR_Ref", owner="sage"),
        FieldSpec("designation", sage="AR_Design", ssm="model", owner="sage"),
        FieldSpec(
            "family", sage="FA_CodeFamille", ssm="familyId", owner="sage", ref="product_families"
        ),
        FieldSpec("price", sage="AR_PrixVen", ssm="price", owner="sage", kind="decimal"),
        FieldSpec("cost", sage="AR_PrixAch", ssm="cost", owner="sage", kind="decimal"),
        FieldSpec("barcode", sage="AR_CodeBarre", owner="sage"),
        FieldSpec("dormant", sage="AR_Sommeil", ssm="notAvailable", owner="sage", kind="bool"),
        FieldSpec("stock", sage=STOCK, ssm="stock", owner="sage", kind="decimal", virtual=True),
    )

    def watched_tables(self) -> tuple[str, ...]:
        return (self.sage_table, "F_ARTSTOCK")  # a stock movement changes the product

    def parts(self) -> tuple[Entity, ...]:
        return (FAMILIES, self)

    def stock_totals(
        self, ctx: DossierContext, refs: Iterable[Any]
    ) -> dict[str, Decimal | Unreadable]:
        """Total stock of these articles over their depots: one read of their stock rows
        (by the leading key column), so memory follows the batch, not the dossier. A
        quantity that cannot be read makes its article's total unreadable: never a guess."""
        totals: dict[str, Decimal | Unreadable] = {}
        keys = [(ref,) for ref in refs]
        for row in ctx.sage.read("F_ARTSTOCK", ["AR_Ref", "AS_QteSto"], keys=keys):
            ref = str(row["AR_Ref"]).strip()
            total, quantity = totals.get(ref, Decimal(0)), row["AS_QteSto"]
            if isinstance(total, Unreadable) or isinstance(quantity, Unreadable):
                totals[ref] = total if isinstance(total, Unreadable) else quantity
            else:
                totals[ref] = total + Decimal(quantity or 0)
        return totals

    def enrich(self, rows: list[dict[str, Any]], ctx: DossierContext) -> None:
        totals = self.stock_totals(ctx, {row["AR_Ref"] for row in rows})
        for row in rows:
            total = totals.get(str(row["AR_Ref"]).strip(), Decimal(0))
            row[STOCK] = total if isinstance(total, Unreadable) else normalise(total, "decimal")

    def extra_changed_keys(self, ctx: DossierContext, since: str | None) -> set[str]:
        # a stock movement changes F_ARTSTOCK, not F_ARTICLE
        return {
            str(row["AR_Ref"]).strip()
            for row in ctx.sage.read("F_ARTSTOCK", ["AR_Ref"], since=since)
        }


FAMILIES = ProductFamiliesEntity()
