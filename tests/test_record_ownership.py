"""An entity owns the SSM records it wrote: a third party's ``quotes`` entity (Sage quotes
as sales orders, with their lines) and the built-in ``orders`` write the same resource,
and neither reads the other's records. A quote line's quantity, declared ``int`` as SSM
wants it, goes as a JSON integer, and a fractional one refuses its quote (never rounded).

The plugin is laid on ``sys.path`` as pip would leave it; the commands run in this
process, which finds it through stevedore like any other entity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_plugins import fake_distribution

from dossiersync.testing import Workspace, totals

QUOTES = """
from typing import Any

from dossiersync.plugin import SAGE_TO_SSM, ChildSpec, Entity, FieldSpec

LINE = {"type": "object", "required": ["line", "product", "quantity"]}


class QuotesEntity(Entity):
    name = "quotes"
    depends_on = ("clients", "products")
    directions = (SAGE_TO_SSM,)
    sage_table = "F_DOCENTETE"
    ssm_resource = "salesorders"
    key_fields = ("domain", "type", "piece")
    fields = (
        FieldSpec("domain", sage="DO_Domaine", kind="int"),
        FieldSpec("type", sage="DO_Type", kind="int"),
        FieldSpec("piece", sage="DO_Piece", ssm="reference"),
        FieldSpec("account", sage="DO_Tiers", ssm="accountId", ref="clients"),
    )
    children = (
        ChildSpec(
            "lines",
            sage_table="F_DOCLIGNE",
            key="line",
            ssm_resource="salesOrdersLines",
            ssm_parent="salesOrderId",
            ssm_parent_filter="salesorderId",
            fields=(
                FieldSpec("line", sage="DL_Ligne", kind="int"),
                FieldSpec("product", sage="AR_Ref", ssm="productId", ref="products"),
                FieldSpec("quantity", sage="DL_Qte", ssm="quantity", kind="int"),
                FieldSpec("price", sage="DL_PrixUnitaire", ssm="price", kind="decimal"),
            ),
        ),
    )

    def sage_where(self) -> dict[str, Any]:
        return {"DO_Domaine": 0, "DO_Type": 0}

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        domain, kind, piece = text.split(":", 2)
        return (int(domain), int(kind), piece)

    def to_ssm(self, record, names, ctx, create):
        body = super().to_ssm(record, names, ctx, create)
        if create:
            body.update(branchId=1, salesRepId=1, readOnly=True, comment="devis")
        return body

    def load_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["piece", "account", "lines"],
            "properties": {"lines": {"type": "array", "items": LINE}},
        }
"""


@pytest.fixture
def quotes_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_distribution(
        site, "acme-quotes", "[dossiersync.entities]\nquotes = acme_quotes:QuotesEntity\n", QUOTES
    )
    monkeypatch.syspath_prepend(str(site))


def add_quote(workspace: Workspace, piece: str, quantities: list[str]) -> None:
    """A Sage quote (``DO_Type`` 0) of the first client, one line per quantity."""
    customer = workspace.sage_rows(
        "nord", "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Prospect = 0 LIMIT 1"
    )[0]["CT_Num"]
    articles = workspace.sage_rows("nord", "SELECT AR_Ref, AR_PrixVen FROM F_ARTICLE LIMIT 5")
    document = {"DO_Domaine": 0, "DO_Type": 0, "DO_Piece": piece}
    for n, (quantity, article) in enumerate(zip(quantities, articles, strict=False), 1):
        line = {
            "DL_Ligne": n * 1000,
            "AR_Ref": article["AR_Ref"],
            "DL_Qte": quantity,
            "DL_PrixUnitaire": article["AR_PrixVen"],
        }
        workspace.sage_insert("nord", "F_DOCLIGNE", {**document, **line})
    header = {"DO_Date": "2026-03-02", "DO_Tiers": customer, "DO_Statut": 0}
    workspace.sage_insert("nord", "F_DOCENTETE", {**document, **header})


def sales_orders(workspace: Workspace, kind: int) -> list[dict[str, Any]]:
    return [
        r
        for r in workspace.records("salesorders", "nord")
        if str(r["extId"]).startswith(f"nord:0:{kind}:")
    ]


@pytest.mark.usefixtures("quotes_plugin")
def test_orders_and_quotes_each_read_only_the_sales_orders_they_wrote(
    workspace: Workspace,
) -> None:
    entities = ("clients", "products", "orders", "quotes")
    workspace.add_dossier("nord", clients=12, seed=1, orders=6, entities=entities)
    add_quote(workspace, "DE00001", ["20", "3.000"])
    add_quote(workspace, "DE00002", ["1"])
    add_quote(workspace, "DE00003", ["2.5", "1"])  # a fractional quantity
    orders_in_sage = workspace.sage_rows(
        "nord", "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1"
    )[0][0]
    workspace.activate_all()
    workspace.sync(expect=1)  # the fractional quote is refused: exit 1, the rest synced

    quotes = {r["reference"]: r for r in sales_orders(workspace, 0)}
    assert sorted(quotes) == ["DE00001", "DE00002"]
    lines = workspace.records("salesOrdersLines")
    first = sorted(
        (line for line in lines if line["salesorderId"]["id"] == quotes["DE00001"]["id"]),
        key=lambda line: line["id"],
    )
    assert [line["quantity"] for line in first] == [20, 3]
    assert all(type(line["quantity"]) is int for line in first)
    (refused,) = [i for i in workspace.cli_json("incidents", "--open") if i["entity"] == "quotes"]
    assert (refused["record_key"], refused["kind"]) == ("0:0:DE00003", "invalid_record")
    assert "quantity must be a whole number: 2.5" in refused["message"]
    assert len(sales_orders(workspace, 1)) == orders_in_sage > 0

    # a complete pass of each: orders reads its orders only, and writes nothing back
    runs = workspace.sync("--full", expect=1)
    read_back = totals(runs, "ssm_to_sage", "orders")
    assert read_back["read"] == orders_in_sage
    assert read_back["created"] + read_back["updated"] + read_back["deleted"] == 0
    assert totals(runs, "sage_to_ssm", "quotes")["created"] == 0
    assert (
        workspace.sage_rows(
            "nord", "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1"
        )[0][0]
        == orders_in_sage
    )

    # quotes no longer enabled (no link of another entity to go by): their key still says
    # they are no orders
    workspace.dossiers["nord"]["entities"] = ("clients", "products", "orders")
    workspace.write_config()
    runs = workspace.sync("--full")
    assert totals(runs, "ssm_to_sage", "orders")["read"] == orders_in_sage
    assert len(sales_orders(workspace, 0)) == 2


SUPPLIERS = """
from typing import Any

from dossiersync.entities.clients import ClientsEntity
from dossiersync.plugin import SAGE_TO_SSM


class SuppliersEntity(ClientsEntity):
    name = "suppliers"
    directions = (SAGE_TO_SSM,)

    def sage_where(self) -> dict[str, Any]:
        return {"CT_Type": 1}
"""


def test_an_entity_whose_keys_look_alike_is_told_apart_by_its_links(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suppliers and clients are both F_COMPTET accounts keyed by CT_Num: the key cannot
    say whose an account is, the links can."""
    site = tmp_path / "site"
    fake_distribution(
        site,
        "acme-suppliers",
        "[dossiersync.entities]\nsuppliers = acme_suppliers:SuppliersEntity\n",
        SUPPLIERS,
    )
    monkeypatch.syspath_prepend(str(site))
    workspace.add_dossier("nord", clients=8, seed=1, entities=("clients", "suppliers"))
    for n in range(3):
        row = {"CT_Num": f"FR{n:05d}", "CT_Intitule": f"Fournisseur {n}", "CT_Type": 1}
        workspace.sage_insert("nord", "F_COMPTET", {**row, "CT_Sommeil": 0, "CT_Prospect": 0})
    clients = len(workspace.sage_clients("nord"))
    workspace.activate_all()
    workspace.sync()
    assert len(workspace.accounts("nord")) == clients + 3

    runs = workspace.sync("--full")
    read_back = totals(runs, "ssm_to_sage", "clients")
    assert read_back["read"] == clients
    assert read_back["created"] + read_back["updated"] + read_back["deleted"] == 0
