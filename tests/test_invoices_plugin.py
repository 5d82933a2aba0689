"""The example third-party plugin, ``docs/examples/dossiersync-invoices``, installed and run.

The module installs the example distribution into the running environment the way a
user would (``pip install``, a regular non-editable install built from a copy of its
folder, so nothing is written next to its sources) and leaves it installed: the next
session finds the installed copy identical to the sources (same version, entry points
and file hashes) and skips pip; it reinstalls as soon as the sources change.  Leaving
it avoids a half-removed distribution under a concurrent run sharing the environment;
``pip uninstall dossiersync-invoices`` removes it.

Every command that must see the plugin runs in a new process, as a user runs it, so its
entry points are read fresh after the install.  Real parts only: reference dossiers
through the SQLite3 ODBC driver, the SSM simulator as a real HTTP server.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from support.workspace import Workspace

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "dossiersync-invoices"
DISTRIBUTION = "dossiersync-invoices"
PACKAGE = "dossiersync_invoices"
NOW = "strftime('%Y-%m-%d %H:%M:%f','now')"


# -- installing the example distribution -------------------------------------------------


def _record_hash(path: Path) -> str:
    """A file's hash as a wheel's RECORD writes it (sha256, urlsafe base64, no padding)."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def installed_copy_is_current() -> bool:
    """Whether the installed distribution is exactly the example's sources."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        (group, name, target)
        for group, points in project["entry-points"].items()
        for name, target in points.items()
    }
    installed = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    if dist.version != project["version"] or installed != declared:
        return False
    recorded = {str(f): f.hash.value for f in dist.files or () if f.hash is not None}
    sources = [
        p for p in (EXAMPLE / PACKAGE).rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    return all(recorded.get(p.relative_to(EXAMPLE).as_posix()) == _record_hash(p) for p in sources)


@pytest.fixture(scope="module")
def invoices_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # one installer at a time per environment, whatever runs the tests concurrently
    tag = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"dossiersync-invoices-install-{tag}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed_copy_is_current():
            source = tmp_path_factory.mktemp("example") / EXAMPLE.name
            shutil.copytree(
                EXAMPLE,
                source,
                ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "build", "*.egg-info"),
            )
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(source)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            importlib.invalidate_caches()
        assert installed_copy_is_current()
    yield


pytestmark = pytest.mark.usefixtures("invoices_plugin")


# -- dossiers with sales documents ------------------------------------------------------


def insert_row(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    """One row, its modification time set by SQLite's clock like a Sage write."""
    names = ", ".join([*row, "cbModification"])
    marks = ", ".join(["?"] * len(row) + [NOW])
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))  # noqa: S608


def insert_document(
    conn: sqlite3.Connection,
    doc_type: int,
    piece: str,
    customer: str,
    articles: list[sqlite3.Row],
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
        insert_row(conn, "F_DOCLIGNE", {**document, **line})
    header = {
        "DO_Date": "2026-03-02",
        "DO_Tiers": customer,
        "DO_Statut": 0,
        "DO_TotalHT": str(total),
        "DO_TotalTTC": str((total * Decimal("1.2")).quantize(Decimal("0.01"))),
    }
    insert_row(conn, "F_DOCENTETE", {**document, **header})


def add_documents(workspace: Workspace, dossier_id: str) -> None:
    """Invoices (unless the demo generator wrote some) and one credit note, with lines."""
    with workspace.sage(dossier_id) as conn:
        customers = [
            row["CT_Num"]
            for row in conn.execute(
                "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Prospect = 0 ORDER BY CT_Num"
            )
        ]
        articles = conn.execute(
            "SELECT AR_Ref, AR_Design, AR_PrixVen FROM F_ARTICLE ORDER BY AR_Ref"
        ).fetchall()
        (invoices,) = conn.execute(
            "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 6"
        ).fetchone()
        if not invoices:
            for n in range(4):
                insert_document(conn, 6, f"FA9{n + 1:04d}", customers[n], articles[n : n + 3])
        insert_document(conn, 7, "AV90001", customers[0], articles[:1])
    conn.close()


def sage_documents(workspace: Workspace, dossier_id: str, doc_type: int) -> dict[str, Any]:
    """Sage's documents of one type: piece -> (header, lines in line order)."""
    with workspace.sage(dossier_id) as conn:
        headers = conn.execute(
            "SELECT * FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = ?", (doc_type,)
        ).fetchall()
        lines = conn.execute(
            "SELECT * FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type = ? "
            "ORDER BY DO_Piece, DL_Ligne",
            (doc_type,),
        ).fetchall()
    conn.close()
    out: dict[str, Any] = {h["DO_Piece"]: (h, []) for h in headers}
    for line in lines:
        out[line["DO_Piece"]][1].append(line)
    return out


def ssm_documents(workspace: Workspace, dossier_id: str, doc_type: int) -> dict[str, Any]:
    found = workspace.ssm_list("salesInvoices", f"extId LIKE '{dossier_id}:0:{doc_type}:%'")
    return {r["extId"]: r for r in found if not r["deleted"]}


# -- running the CLI as a user does ---------------------------------------------------


def sync(workspace: Workspace, *args: str, expect: int = 0) -> list[dict[str, Any]]:
    done = workspace.subprocess("sync", "--json", *args)
    assert done.returncode == expect, done.stdout + done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


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


# -- the tests ----------------------------------------------------------------------------


def test_plugins_lists_invoices_from_its_distribution(workspace: Workspace) -> None:
    done = workspace.subprocess("plugins", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found = {(p["group"], p["name"]): p for p in json.loads(done.stdout)}
    invoices = found[("dossiersync.entities", "invoices")]
    assert invoices["distribution"] == DISTRIBUTION
    assert invoices["version"] == "0.1.0"
    assert invoices["target"] == "dossiersync_invoices:InvoicesEntity"
    assert invoices["error"] is None


def test_invoices_and_credit_notes_reach_ssm_with_their_lines(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1, orders=12, entities=("clients", "invoices"))
    add_documents(workspace, "nord")
    workspace.activate_all()
    first = sync(workspace)

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
    second = sync(workspace)
    assert writes(second) == 0
    assert {r["id"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")} == before


def test_a_line_edited_in_sage_resends_its_document_only(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1, orders=12, entities=("clients", "invoices"))
    add_documents(workspace, "nord")
    workspace.activate_all()
    sync(workspace)
    piece, (_, lines) = sorted(sage_documents(workspace, "nord", 6).items())[0]
    before = {r["extId"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")}

    workspace.sage_execute(
        "nord",
        f"UPDATE F_DOCLIGNE SET DL_Design = ?, cbModification = {NOW} "  # noqa: S608
        "WHERE DO_Domaine = 0 AND DO_Type = 6 AND DO_Piece = ? AND DL_Ligne = ?",
        ("Livraison express", piece, lines[0]["DL_Ligne"]),
    )
    runs = sync(workspace)
    assert counts(runs, "invoices")["updated"] == 1
    after = {r["extId"]: r["dateUpdated"] for r in workspace.ssm_list("salesInvoices")}
    assert {ext for ext in before if before[ext] != after[ext]} == {f"nord:0:6:{piece}"}
    record = workspace.record("salesInvoices", f"nord:0:6:{piece}")
    assert record["lines"][0]["designation"] == "Livraison express"
    assert len(record["lines"]) == len(lines)


def test_dossier_without_invoices_enabled_never_reads_them(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=20, seed=1, entities=("clients", "invoices"))
    workspace.add_dossier("sud", clients=20, seed=2, entities=("clients",))
    add_documents(workspace, "nord")
    # any read of sud's documents would now fail
    workspace.sage_execute("sud", "ALTER TABLE F_DOCENTETE RENAME TO F_DOCENTETE_hidden")
    workspace.sage_execute("sud", "ALTER TABLE F_DOCLIGNE RENAME TO F_DOCLIGNE_hidden")
    workspace.activate_all()

    runs = {d["dossier_id"]: d for d in sync(workspace)}
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
    failed = {d["dossier_id"]: d for d in sync(workspace, "--dossier", "sud", expect=1)}["sud"]
    outcomes = {r["entity"]: r["outcome"] for r in failed["runs"]}
    assert outcomes == {"clients": "succeeded", "invoices": "failed", "credit_notes": "failed"}
    assert all("F_DOCENTETE" in r["message"] for r in failed["runs"] if r["entity"] != "clients")
