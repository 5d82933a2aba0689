"""The plugin's own tests, as its author runs them: ``pip install dossiersync
./dossiersync-invoices`` and ``pytest``. The fixtures come from dossiersync's test kit
(``dossiersync.testing``, a pytest plugin installed with dossiersync): a demo dossier
read through the SQLite3 ODBC driver, the Sales Management simulator as a real HTTP
server, a workspace naming both, and the check that the simulator refused nothing.

Every command runs in a new process, as a user runs it (``sync_runner``,
``workspace.subprocess``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dossiersync.testing import SAGE_NOW, Workspace

Sync = Callable[..., list[dict[str, Any]]]


# -- dossiers with sales documents ------------------------------------------------------


def insert_document(
    workspace: Workspace,
    dossier_id: str,
    doc_type: int,
    piece: str,
    customer: str,
    articles: list[Any],
) -> None:
    """A sales document of ``doc_type`` with one line per article (money as TEXT)."""
    document = {"DO_Domaine": 0, "DO_Type": doc_type, "DO_Piece": piece}
    total = Decimal(0)
    for n, article in enumerate(articles, start=1):
        price = Decimal(article["AR_PrixVen"])
        total += price * n
        line = {
            "DL_Ligne": n * 1000,
            "AR_Ref": article["AR_Ref"],
            "DL_Design": article["AR_Design"],
            "DL_Qte": str(n),
            "DL_PrixUnitaire": str(price),
            "DL_Remise01REM_Valeur": "0",
            "DL_MontantHT": str(price * n),
        }
        workspace.sage_insert(dossier_id, "F_DOCLIGNE", {**document, **line})
    header = {
        "DO_Date": "2026-03-02",
        "DO_Tiers": customer,
        "DO_Statut": 0,
        "DO_TotalHT": str(total),
        "DO_TotalTTC": str((total * Decimal("1.2")).quantize(Decimal("0.01"))),
    }
    workspace.sage_insert(dossier_id, "F_DOCENTETE", {**document, **header})


def add_documents(workspace: Workspace, dossier_id: str) -> None:
    """Invoices (unless the demo generator wrote some) and one credit note, with lines."""
    customers = [
        row["CT_Num"]
        for row in workspace.sage_rows(
            dossier_id,
            "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Prospect = 0 ORDER BY CT_Num",
        )
    ]
    articles = workspace.sage_rows(
        dossier_id, "SELECT AR_Ref, AR_Design, AR_PrixVen FROM F_ARTICLE ORDER BY AR_Ref"
    )
    ((invoices,),) = workspace.sage_rows(
        dossier_id, "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 6"
    )
    if not invoices:
        for n in range(4):
            piece = f"FA9{n + 1:04d}"
            insert_document(workspace, dossier_id, 6, piece, customers[n], articles[n : n + 3])
    insert_document(workspace, dossier_id, 7, "AV90001", customers[0], articles[:1])


def sage_documents(workspace: Workspace, dossier_id: str, doc_type: int) -> dict[str, Any]:
    """Sage's documents of one type: piece -> (header, lines in line order)."""
    headers = workspace.sage_rows(
        dossier_id,
        "SELECT * FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = ?",
        (doc_type,),
    )
    lines = workspace.sage_rows(
        dossier_id,
        "SELECT * FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type = ? ORDER BY DO_Piece, DL_Ligne",
        (doc_type,),
    )
    out: dict[str, Any] = {h["DO_Piece"]: (h, []) for h in headers}
    for line in lines:
        out[line["DO_Piece"]][1].append(line)
    return out


def ssm_documents(workspace: Workspace, dossier_id: str, doc_type: int) -> dict[str, Any]:
    found = workspace.ssm_list("salesInvoices", f"extId LIKE '{dossier_id}:0:{doc_type}:%'")
    return {r["extId"]: r for r in found if not r["deleted"]}


def counts(runs: list[dict[str, Any]], entity: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for dossier in runs:
        for run in dossier["runs"]:
            if run["entity"] == entity:
                for name, n in run["counts"].items():
                    out[name] = out.get(name, 0) + n
    return out


def writes(runs: list[dict[str, Any]]) -> int:
    return sum(
        run["counts"]["created"] + run["counts"]["updated"] + run["counts"]["deleted"]
        for dossier in runs
        for run in dossier["runs"]
    )


def assert_same_document(workspace: Workspace, record: dict[str, Any], sage: Any) -> None:
    header, lines = sage
    assert record["number"] == header["DO_Piece"]
    assert record["date"] == header["DO_Date"]
    assert record["readOnly"] is True
    assert Decimal(str(record["totalHT"])) == Decimal(header["DO_TotalHT"])
    assert Decimal(str(record["totalTTC"])) == Decimal(header["DO_TotalTTC"])
    account = workspace.account(f"{record['extId'].split(':', 1)[0]}:{header['DO_Tiers']}")
    assert record["accountId"]["id"] == account["id"]
    assert [line["product"] for line in record["lines"]] == [line["AR_Ref"] for line in lines]
    for sent, row in zip(record["lines"], lines, strict=True):
        assert sent["designation"] == row["DL_Design"]
        assert Decimal(str(sent["quantity"])) == Decimal(row["DL_Qte"])
        assert Decimal(str(sent["price"])) == Decimal(row["DL_PrixUnitaire"])
        assert Decimal(str(sent["total"])) == Decimal(row["DL_MontantHT"])


def first_sync(workspace: Workspace, sync_runner: Sync) -> list[dict[str, Any]]:
    """Dossier ``nord`` with clients, orders, invoices and a credit note, synced once."""
    workspace.add_dossier("nord", clients=30, seed=1, orders=12, entities=("clients", "invoices"))
    add_documents(workspace, "nord")
    workspace.activate_all()
    return sync_runner()


# -- the tests ----------------------------------------------------------------------------


def test_plugins_lists_invoices_from_its_distribution(dossiersync_workspace: Workspace) -> None:
    done = dossiersync_workspace.subprocess("plugins", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found = {(p["group"], p["name"]): p for p in json.loads(done.stdout)}
    invoices = found[("dossiersync.entities", "invoices")]
    assert invoices["distribution"] == "dossiersync-invoices"
    assert invoices["version"] == "0.1.0"
    assert invoices["target"] == "dossiersync_invoices:InvoicesEntity"
    assert invoices["error"] is None


def test_invoices_and_credit_notes_reach_ssm_with_their_lines(
    dossiersync_workspace: Workspace, sync_runner: Sync
) -> None:
    workspace = dossiersync_workspace
    first = first_sync(workspace, sync_runner)

    sage = {doc_type: sage_documents(workspace, "nord", doc_type) for doc_type in (6, 7)}
    for doc_type, kind, entity in ((6, "invoice", "invoices"), (7, "credit_note", "credit_notes")):
        sent = ssm_documents(workspace, "nord", doc_type)
        assert set(sent) == {f"nord:0:{doc_type}:{piece}" for piece in sage[doc_type]}
        assert counts(first, entity)["created"] == len(sage[doc_type]) > 0
        for piece, document in sage[doc_type].items():
            record = sent[f"nord:0:{doc_type}:{piece}"]
            assert record["kind"] == kind
            assert_same_document(workspace, record, document)
    # orders and other document types stay in Sage
    assert sage_documents(workspace, "nord", 1)
    everything = workspace.ssm_list("salesInvoices")
    assert len(everything) == len(sage[6]) + len(sage[7])

    before = {r["id"]: r["dateUpdated"] for r in everything}
    second = sync_runner()
    assert writes(second) == 0
    assert {r["id"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")} == before


def test_a_line_edited_in_sage_resends_its_document_only(
    dossiersync_workspace: Workspace, sync_runner: Sync
) -> None:
    workspace = dossiersync_workspace
    first_sync(workspace, sync_runner)
    piece, (_, lines) = sorted(sage_documents(workspace, "nord", 6).items())[0]
    before = {r["extId"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")}

    workspace.sage_execute(
        "nord",
        f"UPDATE F_DOCLIGNE SET DL_Design = ?, cbModification = {SAGE_NOW} "  # noqa: S608
        "WHERE DO_Domaine = 0 AND DO_Type = 6 AND DO_Piece = ? AND DL_Ligne = ?",
        ("Livraison express", piece, lines[0]["DL_Ligne"]),
    )
    runs = sync_runner()
    assert counts(runs, "invoices")["updated"] == 1
    after = {r["extId"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")}
    assert {ext for ext in before if before[ext] != after[ext]} == {f"nord:0:6:{piece}"}
    record = workspace.record("salesInvoices", f"nord:0:6:{piece}")
    assert record["lines"][0]["designation"] == "Livraison express"
    assert len(record["lines"]) == len(lines)


def test_dossier_without_invoices_enabled_never_reads_them(
    dossiersync_workspace: Workspace, sync_runner: Sync
) -> None:
    workspace = dossiersync_workspace
    workspace.add_dossier("nord", clients=20, seed=1, entities=("clients", "invoices"))
    workspace.add_dossier("sud", clients=20, seed=2, entities=("clients",))
    add_documents(workspace, "nord")
    # any read of sud's documents would now fail
    workspace.sage_execute("sud", "ALTER TABLE F_DOCENTETE RENAME TO F_DOCENTETE_hidden")
    workspace.sage_execute("sud", "ALTER TABLE F_DOCLIGNE RENAME TO F_DOCLIGNE_hidden")
    workspace.activate_all()

    runs = {d["dossier_id"]: d for d in sync_runner()}
    assert runs["sud"]["ok"] and runs["nord"]["ok"]
    assert {r["entity"] for r in runs["sud"]["runs"]} == {"clients"}
    assert len(workspace.accounts("sud")) == len(workspace.sage_clients("sud"))
    assert ssm_documents(workspace, "sud", 6) == {}
    assert len(ssm_documents(workspace, "nord", 6)) == len(sage_documents(workspace, "nord", 6))
    journal = workspace.cli_json("journal", "--dossier", "sud")
    assert journal and {r["entity"] for r in journal} == {"clients"}
    assert {"invoices", "credit_notes"} <= {
        r["entity"] for r in workspace.cli_json("journal", "--dossier", "nord")
    }

    # the control: enabling invoices for sud does read (and fail on) the hidden tables
    workspace.dossiers["sud"]["entities"] = ("clients", "invoices")
    workspace.write_config()
    failed = {d["dossier_id"]: d for d in sync_runner("--dossier", "sud", expect=1)}["sud"]
    outcomes = {r["entity"]: r["outcome"] for r in failed["runs"]}
    assert outcomes == {"clients": "succeeded", "invoices": "failed", "credit_notes": "failed"}
    assert all("F_DOCENTETE" in r["message"] for r in failed["runs"] if r["entity"] != "clients")
