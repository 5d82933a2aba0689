"""Sales orders: SSM ``salesorders`` + ``salesOrdersLines`` <-> Sage ``F_DOCENTETE`` + lines.

- An order created in SSM is created in the dossier its account belongs to (the
  ``clients`` link of ``accountId``), as a sales order (``DO_Domaine`` 0, ``DO_Type``
  1) numbered from the dossier's own ``BC`` sequence, header and lines in one Sage
  transaction.  An order whose account belongs to another dossier is that dossier's.
- Sage computes: the unit price is the article's ``AR_PrixVen`` in that dossier, the
  line amount ``quantity x price x (1 - discount %)`` to the cent, the order's totals
  the sum of the lines and that sum with 20 % VAT.  Exact decimals throughout.
- What Sage computed (prices, totals, status, the piece number) goes back to SSM and the
  order becomes read-only there.  SSM's ``number`` is an integer: it gets the digits of
  the Sage piece (``BC00042`` -> 42); the whole piece is in the extId, and in
  ``reference`` of an order entered in Sage without a reference of its own.
- SSM line quantities are integers.  A line's SSM description is its Sage designation;
  a Sage line with a fractional quantity (2.5 kg) goes to SSM as quantity 1 at the
  line's undiscounted amount (2.5 x 12.00 = 30.00), its description saying
  ``2.5 x <designation> (12)``: the line and order totals stay exact.
- From then on the Sage document is the order: when it changes in Sage its status,
  total and lines (compared as a set) are realigned in SSM.  SSM-only fields
  (``comment``, custom fields) are never written.
- Refused with an incident, nothing written: an account or a line product the dossier
  does not know, an order that fails the schema, a synced order re-pointed to another
  account (``moved_between_dossiers`` when that account is another dossier's).
- Crash-safe (the engine's promise for every entity): the link (the intent, with the
  new Sage key) is committed before the Sage write; a later pass finishes an intent
  whose document exists instead of writing it again.
- Sales orders created in Sage go to SSM as read-only orders with their lines, once
  their account and every line's product are in SSM (``pending`` until then).  Sage
  stays their master: what changes in Sage is realigned in SSM, and an order deleted in
  Sage is deleted in SSM with its lines.  The link (the intent) is committed before the
  SSM create; a later pass finds what an interrupted one created by ``extId``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from dossiersync.plugin import (
    SAGE_TO_SSM,
    SSM_TO_SAGE,
    Cause,
    ChildSpec,
    Entity,
    FieldSpec,
    Problem,
    RecordInvalid,
    RecordMoved,
    RecordPending,
    RecordRefused,
    field_label,
    normalise,
)

if TYPE_CHECKING:
    from dossiersync.plugin import DossierContext

HEADER = "F_DOCENTETE"
LINES = "F_DOCLIGNE"
SALES = 0  # DO_Domaine
ORDER = 1  # DO_Type
LINE_STEP = 1000
VAT_FACTOR = Decimal("1.2")
CENT = Decimal("0.01")
SALES_ORDERS = {"DO_Domaine": SALES, "DO_Type": ORDER}

# "both": set from SSM when the order is created, then kept as Sage has it
LINE_FIELDS = (
    FieldSpec("line", sage="DL_Ligne", owner="sage", kind="int"),
    FieldSpec("product", sage="AR_Ref", ssm="productId", owner="both", ref="products"),
    FieldSpec("designation", sage="DL_Design", owner="sage"),
    FieldSpec("quantity", sage="DL_Qte", ssm="quantity", owner="both", kind="decimal"),
    FieldSpec(
        "discount", sage="DL_Remise01REM_Valeur", ssm="discount1", owner="both", kind="decimal"
    ),
    FieldSpec("price", sage="DL_PrixUnitaire", ssm="price", owner="sage", kind="decimal"),
    FieldSpec("total", sage="DL_MontantHT", ssm="total", owner="sage", kind="decimal"),
)
#: canonical line fields -> SSM line fields
LINE_TO_SSM = {f.name: f.ssm for f in LINE_FIELDS if f.ssm}
#: a document's lines: SSM records of their own, created with ``salesOrderId`` and read
#: back with ``salesorderId``
ORDER_LINES = ChildSpec(
    "lines",
    sage_table=LINES,
    key="line",
    fields=LINE_FIELDS,
    ssm_resource="salesOrdersLines",
    ssm_parent="salesOrderId",
    ssm_parent_filter="salesorderId",
    key_step=LINE_STEP,
)


class OrdersEntity(Entity):
    name = "orders"
    depends_on = ("clients", "products")
    directions = (SAGE_TO_SSM, SSM_TO_SAGE)
    sage_table = HEADER
    ssm_resource = "salesorders"
    schema = "entities/orders.schema.json"
    key_fields = ("domain", "type", "piece")
    # an order created in SSM and deleted in Sage stays in SSM, where it was created
    sage_deletions = "origin"
    record_noun = {"en": "order", "fr": "commande"}
    record_plural = {"en": "orders", "fr": "commandes"}
    causes = {
        "order_moved": {
            "en": "order {ssm_id} ({piece}) was re-pointed in Sales Management to account "
            "{account}{label} of dossier {other}",
            "fr": "la commande {ssm_id} ({piece}) a été rattachée dans Sales Management au "
            "compte {account}{label} du dossier {other}",
        },
        "order_account_changed": {
            "en": "order {ssm_id} ({piece}) is in Sage 50FR for account {before}; its account "
            "was changed to {account}{label}, which is read-only once synced; nothing written",
            "fr": "la commande {ssm_id} ({piece}) est dans Sage 50FR pour le compte {before} ; "
            "son compte a été changé en {account}{label}, ce qui n’est plus possible une fois "
            "synchronisée ; rien n’a été écrit",
        },
        "no_account": {
            "en": "order {ssm_id} has no account: give it a client of dossier {dossier}; "
            "nothing written",
            "fr": "la commande {ssm_id} n’a pas de compte : donnez-lui un client du dossier "
            "{dossier} ; rien n’a été écrit",
        },
        "account_unknown": {
            "en": "order {ssm_id}: account {account}{label} is not a client of dossier "
            "{dossier} ({cause}); nothing written",
            "fr": "commande {ssm_id} : le compte {account}{label} n’est pas un client du "
            "dossier {dossier} ({cause}) ; rien n’a été écrit",
        },
        "products_unknown": {
            "en": "order {ssm_id}: product(s) unknown to dossier {dossier}: {items}; "
            "nothing written",
            "fr": "commande {ssm_id} : article(s) inconnu(s) du dossier {dossier} : {items} ; "
            "rien n’a été écrit",
        },
        "line_product": {
            "en": "line {line} ({field}): product {product}{label} ({cause})",
            "fr": "ligne {line} ({field}) : article {product}{label} ({cause})",
        },
        "line_no_product": {
            "en": "line {line} ({field}): no product",
            "fr": "ligne {line} ({field}) : pas d’article",
        },
        "line_not_in_sage": {
            "en": "line {line} ({field}): article {ref} is no longer in Sage",
            "fr": "ligne {line} ({field}) : l’article {ref} n’est plus dans Sage",
        },
    }
    labels = {
        "domain": {"en": "document domain", "fr": "domaine du document"},
        "type": {"en": "document type", "fr": "type de document"},
        "piece": {"en": "order number", "fr": "numéro de pièce"},
        "account": {"en": "client account", "fr": "compte client"},
        "reference": {"en": "reference", "fr": "référence"},
        "date": {"en": "order date", "fr": "date de la commande"},
        "status": {"en": "status", "fr": "statut"},
        "total_ht": {"en": "total excluding VAT", "fr": "total HT"},
        "total_ttc": {"en": "total including VAT", "fr": "total TTC"},
        "comment": {"en": "comment", "fr": "commentaire"},
        "lines": {"en": "order lines", "fr": "lignes de la commande"},
        "lines.line": {"en": "line number", "fr": "numéro de ligne"},
        "lines.product": {"en": "product", "fr": "article"},
        "lines.designation": {"en": "description", "fr": "désignation"},
        "lines.quantity": {"en": "quantity", "fr": "quantité"},
        "lines.discount": {"en": "discount", "fr": "remise"},
        "lines.price": {"en": "unit price", "fr": "prix unitaire"},
        "lines.total": {"en": "line total", "fr": "montant HT"},
    }
    #: new orders are numbered <prefix><digits>, ``piece_width`` characters in all
    piece_prefix = "BC"
    piece_width = 7
    # "both": set from SSM when the order is created, then kept as Sage has it
    fields = (
        FieldSpec("domain", sage="DO_Domaine", owner="sage", kind="int"),
        FieldSpec("type", sage="DO_Type", owner="sage", kind="int"),
        FieldSpec("piece", sage="DO_Piece", owner="sage"),
        FieldSpec("account", sage="DO_Tiers", ssm="accountId", owner="both", ref="clients"),
        FieldSpec("reference", sage="DO_Ref", ssm="reference", owner="both"),
        FieldSpec("date", sage="DO_Date", ssm="date", owner="both"),
        FieldSpec("status", sage="DO_Statut", ssm="statusId", owner="sage", kind="int"),
        FieldSpec("total_ht", sage="DO_TotalHT", ssm="total", owner="sage", kind="decimal"),
        FieldSpec("total_ttc", sage="DO_TotalTTC", owner="sage", kind="decimal"),
        FieldSpec("comment", ssm="comment", owner="ssm"),
    )
    children = (ORDER_LINES,)

    def sage_where(self) -> dict[str, Any]:
        return dict(SALES_ORDERS)

    def to_ssm(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        """SSM fields of an order as Sage holds it: what Sage computed (status, total) and,
        for one created in Sage, its account and reference (its piece when it has none).
        A new order is read-only with SSM's integer ``number``; it goes to the dossier's
        branch and the implementation's sales rep."""
        wanted = set(names)
        if create or ctx.realign:
            wanted |= {"number", "readOnly"}
        view = self.born_view(record)
        shown = {"account": "account", "reference": "reference", "status": "status"}
        shown.update(total_ht="total", number="number", readOnly="readOnly")
        body = self.born_body(view, [v for n, v in shown.items() if n in wanted], ctx)
        if create:
            ids = ctx.ssm_settings
            body.update(
                branchId=ctx.dossier.branch_id or ids.default_branch_id,
                salesRepId=ids.default_sales_rep_id,
            )
        return body

    def child_to_ssm(
        self, spec: ChildSpec, line: Mapping[str, Any], names: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        return self.line_body(line, [n for n in names if n in LINE_TO_SSM], ctx)

    # -- keys ------------------------------------------------------------------------

    def order_key(self, piece: str) -> str:
        return self.key_text((SALES, ORDER, piece))

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        domain, kind, piece = text.split(":", 2)
        return (int(domain), int(kind), piece)

    def piece_of(self, key: str) -> str:
        return str(self.key_from_text(key)[2])

    # -- validation ------------------------------------------------------------------

    def validate(
        self, record: Mapping[str, Any], lengths: Mapping[str, int | None] | None = None
    ) -> None:
        """Raise RecordInvalid naming the first failing field (``lines[1].quantity``)."""
        if self.passes_quick_check(record, lengths):
            return
        errors = sorted(
            self.checks(lengths)[0].iter_errors(dict(record)),
            key=lambda e: [str(p) for p in e.absolute_path],
        )
        if not errors:
            return
        e = errors[0]
        path = list(e.absolute_path)
        if e.validator == "required" and isinstance(e.instance, dict):
            required: list[str] = list(e.validator_value)
            path += [n for n in required if n not in e.instance][:1]
        field_name = field_path(path) or "(record)"
        problem = self.problem(e, field_name)
        raise RecordInvalid(problem.text(), field_name, problem)

    # -- SSM side --------------------------------------------------------------------

    def status_id(self, status: int | None, ctx: DossierContext) -> int | None:
        """The SSM status of a ``DO_Statut``: the status at that position in SSM's list.

        0 (saisi), 1 (confirmé), 2 (accepté) are the first, second and third entries of
        ``salesorderStatuses`` ordered by id; None when the list is shorter.
        """
        ids: list[int] | None = ctx.scratch.get("order_statuses")
        if ids is None:
            ids = sorted(int(s["id"]) for s in ctx.ssm_client.list_changed("salesorderStatuses"))
            ctx.scratch["order_statuses"] = ids
        if status is None or not 0 <= status < len(ids):
            return None
        return ids[status]

    def ssm_lines(self, order_id: int, ctx: DossierContext) -> list[dict[str, Any]]:
        """The live lines of an SSM order."""
        resource, parent = ORDER_LINES.ssm_resource or "", ORDER_LINES.listed_by
        return list(ctx.ssm_client.list_changed(resource, equals={parent: order_id}))

    def line_body(
        self, line: Mapping[str, Any], names: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        """SSM fields of a line; the product becomes its SSM id (RecordPending if unknown).

        The quantity is an integer in SSM: a fractional one is sent as 1 at the line's
        undiscounted amount, and quantity and price always go together.
        """
        names = list(names)
        body: dict[str, Any] = {}
        for name in names:
            value = line.get(name)
            if name == "product":
                body[LINE_TO_SSM[name]] = ctx.refs.ssm_id("products", str(value), "product")
            elif name == "discount":
                body[LINE_TO_SSM[name]] = float(Decimal(value)) if value is not None else 0
            elif name not in ("quantity", "price"):
                body[LINE_TO_SSM[name]] = None if value is None else float(Decimal(value))
        if "quantity" in names or "price" in names:
            body.update(integer_quantity(line))
        return body

    # -- orders created in SSM -----------------------------------------------------------

    def ssm_unlinked_filter(self, ctx: DossierContext) -> Mapping[str, int | str] | None:
        return {}  # any order may be this dossier's: its account decides

    def belongs_to_dossier(self, record: Mapping[str, Any], ctx: DossierContext) -> bool:
        """An order is its account's dossier's; with an unknown account, its branch's."""
        client = ctx.ssm_client
        account = client.fk_id(record.get("accountId"))
        if account is not None:
            owner = ctx.refs.owner_of("clients", account)
            if owner is not None:
                return owner == ctx.dossier_id
        branch = ctx.dossier.branch_id
        return branch is not None and client.fk_id(record.get("branchId")) == branch

    def ssm_may_change(self, base: Mapping[str, Any]) -> tuple[str, ...]:
        return ()  # a synced order is read-only in SSM: Sage is its master

    def check_ssm_edit(
        self, record: Mapping[str, Any], base: Mapping[str, Any], ctx: DossierContext
    ) -> None:
        """Refused when a synced order's account was changed in SSM: an order never moves
        to another client, let alone to another dossier."""
        base_account = base.get("account")
        label = _label(record.get("accountId"))
        account = ctx.ssm_client.fk_id(record.get("accountId"))
        piece = base.get("piece")
        owner = None if account is None else ctx.refs.owner_of("clients", account)
        if owner is not None and owner != ctx.dossier_id:
            cause = Cause(
                "order_moved",
                {
                    "ssm_id": record["id"],
                    "piece": piece,
                    "account": account,
                    "label": label,
                    "other": owner,
                },
            )
            raise RecordRefused("moved_between_dossiers", "accountId", cause.text(), cause=cause)
        try:
            code = None if account is None else ctx.refs.sage_key("clients", account, "account")
        except (RecordPending, RecordMoved):
            code = None
        if code != base_account:
            cause = Cause(
                "order_account_changed",
                {
                    "ssm_id": record["id"],
                    "piece": piece,
                    "before": base_account,
                    "account": account,
                    "label": label,
                },
            )
            raise RecordRefused("account_changed", "accountId", cause.text(), cause=cause)

    def from_ssm(self, record: Mapping[str, Any], ctx: DossierContext) -> dict[str, Any]:
        """The order as it will be written to Sage, priced from the dossier's catalogue;
        RecordRefused when it cannot be written (its account or a product unknown to the
        dossier, a quantity that is no number)."""
        client = ctx.ssm_client
        account = client.fk_id(record.get("accountId"))
        if account is None:
            cause = Cause("no_account", {"ssm_id": record["id"], "dossier": ctx.dossier_id})
            raise RecordRefused("unknown_reference", "accountId", cause.text(), cause=cause)
        try:
            code = ctx.refs.sage_key("clients", account, "account")
        except (RecordPending, RecordMoved) as exc:
            cause = Cause(
                "account_unknown",
                {
                    "ssm_id": record["id"],
                    "account": account,
                    "label": _label(record.get("accountId")),
                    "dossier": ctx.dossier_id,
                    "cause": exc.cause or str(exc),
                },
            )
            raise RecordRefused(
                "unknown_reference", "accountId", cause.text(), cause=cause
            ) from None
        lines = sorted(self.ssm_lines(int(record["id"]), ctx), key=lambda line: int(line["id"]))
        refs: list[str] = []
        missing: list[tuple[int, Cause]] = []
        for n, line in enumerate(lines):
            product = client.fk_id(line.get("productId"))
            where = {"line": n + 1, "field": f"lines[{n}].productId"}
            if product is None:
                missing.append((n, Cause("line_no_product", where)))
                refs.append("")
                continue
            try:
                refs.append(ctx.refs.sage_key("products", product, "product"))
            except (RecordPending, RecordMoved) as exc:
                label = _label(line.get("productId"))
                why = {"product": product, "label": label, "cause": exc.cause or str(exc)}
                missing.append((n, Cause("line_product", {**where, **why})))
                refs.append("")
        articles = {
            str(row["AR_Ref"]): row
            for row in ctx.sage.read(
                "F_ARTICLE", ["AR_Ref", "AR_Design", "AR_PrixVen"], keys=[(r,) for r in refs if r]
            )
        }
        for n, ref in enumerate(refs):
            if ref and ref not in articles:
                where = {"line": n + 1, "field": f"lines[{n}].productId", "ref": ref}
                missing.append((n, Cause("line_not_in_sage", where)))
        if missing:
            missing.sort(key=lambda item: item[0])
            cause = Cause(
                "products_unknown",
                {
                    "ssm_id": record["id"],
                    "dossier": ctx.dossier_id,
                    "items": [c for _, c in missing],
                },
            )
            field_name = f"lines[{missing[0][0]}].productId"
            raise RecordRefused("unknown_reference", field_name, cause.text(), cause=cause)
        planned_lines: list[dict[str, Any]] = []
        total = Decimal(0)
        for n, (line, ref) in enumerate(zip(lines, refs, strict=True)):
            quantity = self.number(line.get("quantity"), n, "quantity")
            discount = self.number(line.get("discount1") or 0, n, "discount")
            article = articles[ref]
            price = Decimal(article["AR_PrixVen"] if article["AR_PrixVen"] is not None else 0)
            amount_ht = (quantity * price * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
            total += amount_ht
            planned_lines.append(
                {
                    "line": LINE_STEP * (n + 1),
                    "product": ref,
                    "designation": normalise(article["AR_Design"], "text"),
                    "quantity": amount(quantity),
                    "discount": amount(discount),
                    "price": amount(price),
                    "total": amount(amount_ht),
                }
            )
        day = str(record.get("date") or record.get("dateCreated") or "")[:10]
        return {
            "account": code,
            "reference": normalise(record.get("reference"), "text"),
            "date": day or None,
            "status": 0,
            "total_ht": amount(total),
            "total_ttc": amount((total * VAT_FACTOR).quantize(CENT, ROUND_HALF_UP)),
            "lines": planned_lines,
        }

    def number(self, value: Any, n: int, name: str) -> Decimal:
        """A line's number as SSM sent it; RecordRefused, naming the field, when it is none."""
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            number = Decimal("NaN")
        if not number.is_finite():
            path = self.ssm_path(f"lines[{n}].{name}")
            label = field_label(self.field_labels, f"lines[{n}].{name}")
            problem = Problem("decimal", path, value, None, label)
            raise RecordRefused("invalid_record", path, problem.text(), problem)
        return number

    def new_sage_key(self, record: Mapping[str, Any], ctx: DossierContext) -> tuple[Any, ...]:
        """The dossier's next order number, skipping numbers a link holds (orders on their
        way to Sage, orders deleted from Sage)."""
        prefix, width = self.piece_prefix, self.piece_width
        piece = ctx.sage.next_code(HEADER, "DO_Piece", prefix, width)
        held = {self.piece_of(k) for k in ctx.refs.held_keys(self.name)}
        while piece in held:
            piece = f"{prefix}{int(piece[len(prefix) :]) + 1:0{width - len(prefix)}d}"
        return (SALES, ORDER, piece)

    def to_sage(
        self, record: Mapping[str, Any], names: Iterable[str], ctx: DossierContext, create: bool
    ) -> dict[str, Any]:
        if create:  # a new order is written whole, as planned (its lines by the engine)
            return {f.sage: record.get(f.name) for f in self.fields if f.sage}
        return super().to_sage(record, names, ctx, create)

    def after_sage_write(
        self, record: Mapping[str, Any], changed: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        """What Sage computed goes back to SSM, and the order becomes read-only there."""
        view = self.born_view(record)
        return self.born_body(view, ["total", "number", "status", "readOnly"], ctx)

    # -- orders created in Sage ----------------------------------------------------------

    def born_view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """What SSM holds of an order created in Sage, field by field (canonical values)."""
        return {
            "account": record.get("account"),
            "reference": record.get("reference") or record.get("piece"),
            "number": piece_number(record.get("piece")),
            "total": record.get("total_ht"),
            "status": record.get("status"),
            "readOnly": True,
        }

    def born_body(
        self, view: Mapping[str, Any], names: Iterable[str], ctx: DossierContext
    ) -> dict[str, Any]:
        """SSM fields of an order created in Sage; the account becomes its SSM id."""
        body: dict[str, Any] = {}
        for name in names:
            value = view.get(name)
            if name == "account":
                body["accountId"] = ctx.refs.ssm_id("clients", str(value), "account")
            elif name == "total":
                body["total"] = None if value is None else float(Decimal(value))
            elif name == "status":
                status = self.status_id(value, ctx)
                if status is not None:
                    body["statusId"] = status
            else:
                body[name] = value
        return body


def piece_number(piece: Any) -> int | None:
    """SSM's integer ``number`` of a Sage piece: its trailing digits (``BC00042`` -> 42)."""
    digits = re.search(r"(\d+)\s*$", str(piece or ""))
    return int(digits.group(1)) if digits else None


def integer_quantity(line: Mapping[str, Any]) -> dict[str, Any]:
    """``quantity`` (an integer, as SSM takes it), ``price`` and ``description`` (the Sage
    designation) of a line; a fractional quantity goes as 1 at the undiscounted amount,
    the description saying what the line really holds."""
    quantity = Decimal(line.get("quantity") or 0)
    price = Decimal(line.get("price") or 0)
    what = line.get("designation") or line.get("product") or ""
    if quantity == quantity.to_integral_value():
        return {"quantity": int(quantity), "price": float(price), "description": what}
    undiscounted = (quantity * price).quantize(CENT, ROUND_HALF_UP)
    return {
        "quantity": 1,
        "price": float(undiscounted),
        "description": f"{amount(quantity)} x {what} ({amount(price)})".strip(),
    }


def field_path(parts: Sequence[Any]) -> str:
    """``["lines", 1, "quantity"]`` -> ``lines[1].quantity``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def amount(value: Decimal) -> str:
    return str(normalise(value, "decimal"))


def _label(value: Any) -> str:
    """`` (label)`` of a foreign key as SSM renders it, or nothing."""
    if isinstance(value, Mapping) and value.get("value"):
        return f" ({value['value']})"
    return ""
