"""Dossiers synced side by side share the tenant's calls, and keep their own books.

``sync`` runs several dossiers at a time (``service.parallel_dossiers``); their bulk writes
to one tenant may travel in the same call (``plugins/sales_management/combine.py``).
Whatever goes wrong in one dossier — a record refused, its source gone, its deactivation,
its lease taken over — must change nothing for the others: their runs, records, links
and incidents are as if each had been synced alone. Against the simulator, with a paced
tenant so that passes wait for their turn together (as on a real tenant's budget).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dossiersync.journal import utcnow
from dossiersync.plugins.sales_management import listing
from dossiersync.plugins.sales_management.simulator.process import running_simulator
from dossiersync.state.models import Lease
from dossiersync.state.store import StateStore

from support.workspace import Workspace

CLIENTS = 20
LENT = 60
OTHER = "machine-b:4242/17"


def paced_workspace(
    tmp_path: Path, sim: object, monkeypatch: pytest.MonkeyPatch, rate: float
) -> Workspace:
    monkeypatch.setenv("SSM_PUBLIC_KEY", sim.public_key)  # type: ignore[attr-defined]
    monkeypatch.setenv("SSM_PRIVATE_KEY", sim.private_key)  # type: ignore[attr-defined]
    ws = Workspace(tmp_path, sim)  # type: ignore[arg-type]
    ws.extra_config = "[service]\nparallel_dossiers = 4\n"
    return ws


def pace(ws: Workspace, rate: float, *extra: str) -> None:
    """The tenant's budget, as a remote tenant's: requests wait for their turn."""
    text = ws.config_path.read_text(encoding="utf-8")
    setting = "\n".join([f"max_requests_per_second = {rate}", *extra])
    ws.config_path.write_text(text.replace("max_requests_per_second = 0", setting))


def runs_of(results: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    return {str(r["dossier_id"]): list(r["runs"]) for r in results}  # type: ignore[call-overload]


@pytest.mark.ssm_refusals
def test_a_refused_dossier_shares_calls_and_keeps_its_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        ws = paced_workspace(tmp_path, sim, monkeypatch, 3)
        for n, branch in enumerate((1, 2, 3, 99), start=1):
            # branch 99 does not exist: SSM refuses every account of d4, item by item
            ws.add_dossier(f"d{n}", clients=CLIENTS, seed=n, branch_id=branch)
        # a bulk call waits for the other dossiers' items up to 10 s (0.5 s by default)
        pace(ws, 3, "bulk_linger_seconds = 10")
        ws.activate_all()
        before = ws.simulator_stats()["calls"].get("POST /accounts/bulk", 0)

        results = ws.sync(expect=1)

        bulk = ws.simulator_stats()["calls"]["POST /accounts/bulk"] - before
        assert bulk <= 2, f"the 4 dossiers' accounts went in {bulk} bulk calls"
        runs = runs_of(results)
        for good in ("d1", "d2", "d3"):
            assert all(r["outcome"] == "succeeded" for r in runs[good]), runs[good]
            accounts = Counter(a["extId"] for a in ws.accounts(good))
            assert len(accounts) == CLIENTS and max(accounts.values()) == 1
            assert ws.cli_json("incidents", "--dossier", good) == []
        refused = [r for r in runs["d4"] if r["direction"] == "sage_to_ssm"]
        assert refused[0]["outcome"] == "partial"
        assert refused[0]["counts"]["refused"] == CLIENTS  # type: ignore[index]
        assert ws.accounts("d4") == []
        incidents = ws.cli_json("incidents", "--dossier", "d4")
        assert len(incidents) == CLIENTS
        assert all("branches with id 99" in i["message"] for i in incidents)

        # d4 deactivated: a change in each dossier reaches SSM from the others only,
        # and d4's file is not read (its records stay unsynced, its incidents as they were)
        ws.cli("dossiers", "deactivate", "d4")
        for n in (1, 2, 3, 4):
            ws.sage_execute(
                f"d{n}",
                "UPDATE F_COMPTET SET CT_Ville = ?, cbModification = "
                "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00001'",
                (f"Ville {n}",),
            )
        results = ws.sync()
        assert sorted(runs_of(results)) == ["d1", "d2", "d3"]
        for n in (1, 2, 3):
            assert ws.account(f"d{n}:CL00001")["city"] == f"Ville {n}"
        assert ws.accounts("d4") == []
        assert len(ws.cli_json("incidents", "--dossier", "d4")) == CLIENTS


@pytest.mark.slow
def test_a_lost_lease_or_a_gone_source_changes_nothing_for_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_simulator(str(tmp_path / "ssm.sqlite"), latency_ms=500) as sim:
        ws = paced_workspace(tmp_path, sim, monkeypatch, 0)
        ws.sync_settings.update(batch_size=5, lease_seconds=10)
        # lent's first pass takes a dozen bulk calls of 5, long enough to lose its lease
        for name, clients, seed in (("kept", CLIENTS, 1), ("lent", LENT, 2), ("gone", CLIENTS, 3)):
            ws.add_dossier(name, clients=clients, seed=seed)
        pace(ws, 0, "max_concurrency = 1")
        ws.activate_all()
        ws.dossiers["gone"]["path"].unlink()  # its file moved away: it cannot be opened

        command = [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
        first = subprocess.Popen(
            [*command, "sync", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ws.accounts("lent"):
            time.sleep(0.1)
        store = StateStore(ws.state_url)
        with store.session() as s:  # another process takes lent's lease over
            s.execute(
                update(Lease)
                .where(Lease.dossier_id == "lent")
                .values(holder=OTHER, expires_at=utcnow() + timedelta(seconds=600))
            )
        out, err = first.communicate(timeout=180)
        assert first.returncode == 1, err

        kept = Counter(a["extId"] for a in ws.accounts("kept"))
        assert len(kept) == CLIENTS and max(kept.values()) == 1
        journal = ws.cli_json("journal", "--dossier", "kept")
        assert journal and all(r["outcome"] == "succeeded" for r in journal)
        assert ws.cli_json("incidents", "--dossier", "kept") == []
        assert 0 < len(ws.accounts("lent")) < LENT, "lent went on after losing its lease"
        assert any(
            r["outcome"] == "interrupted" for r in ws.cli_json("journal", "--dossier", "lent")
        )
        assert ws.accounts("gone") == []

        with store.session() as s:  # the other holder is gone: lent completes, no double
            s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        store.dispose()
        ws.sync("--dossier", "lent")
        lent = Counter(a["extId"] for a in ws.accounts("lent"))
        assert len(lent) == LENT and max(lent.values()) == 1
        assert Counter(a["extId"] for a in ws.accounts("kept")) == kept


def test_complete_passes_of_contacts_share_one_listing_and_keep_their_own_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each dossier's complete pass of contacts reads every contact with no extId (one
    created in SSM may be any dossier's): the dossiers' passes are served from one
    listing of the tenant, topped up with what changed since, and each still takes
    into Sage only the contacts of its own accounts."""
    # a top-up reads again only what changed after the newest date held (5 s back by
    # default: here, every contact is seconds old, and the count would depend on timing)
    monkeypatch.setattr(listing, "TOP_UP_OVERLAP_SECONDS", 0)
    with running_simulator(str(tmp_path / "ssm.sqlite")) as sim:
        ws = paced_workspace(tmp_path, sim, monkeypatch, 0)
        for n in range(1, 5):
            ws.add_dossier(f"d{n}", clients=10, seed=n, entities=("clients", "contacts"))
        pace(ws, 0, "page_size = 5")  # a listing of the tenant takes many pages
        ws.activate_all()
        ws.sync()
        contacts = ws.ssm_list("contacts")
        tenant_pages = len(contacts) // 5 + 1
        for n in range(2, 4):  # created in SSM under an account of d2, and of d3
            code = sorted(ws.sage_clients(f"d{n}"))[0]
            ws.ssm_post(
                "contacts",
                {
                    "accountId": ws.account(f"d{n}:{code}")["id"],
                    "firstName": "Solène",
                    "lastName": f"Née-en-SSM {n}",
                    "salesRepId": 2,
                },
            )
        before = ws.simulator_stats()["calls"].get("GET /contacts", 0)

        results = ws.sync("--full")

        listed = ws.simulator_stats()["calls"]["GET /contacts"] - before
        # four listings of the tenant would be 4 × tenant_pages: one dossier lists it
        # for itself, one for the index, the two others read what changed since
        assert listed <= 2 * tenant_pages + 4, (listed, tenant_pages)
        assert all(r["outcome"] == "succeeded" for d in results for r in d["runs"]), results
        for n in range(1, 5):
            born = ws.sage_rows(
                f"d{n}", "SELECT CT_Num FROM F_CONTACTT WHERE CT_Nom LIKE 'Née-en-SSM%'"
            )
            assert len(born) == (1 if n in (2, 3) else 0), (n, born)
        in_ssm = Counter(c["extId"] for c in ws.ssm_list("contacts"))
        assert max(in_ssm.values()) == 1 and None not in in_ssm and "" not in in_ssm
        assert len(in_ssm) == len(contacts) + 2

        # the passes since each dossier's cursor are served from the same listing
        code = sorted(ws.sage_clients("d4"))[1]
        ws.ssm_post(
            "contacts",
            {
                "accountId": ws.account(f"d4:{code}")["id"],
                "firstName": "Maëlle",
                "lastName": "Née-en-SSM 4",
                "salesRepId": 2,
            },
        )
        results = ws.sync()
        assert all(r["outcome"] == "succeeded" for d in results for r in d["runs"]), results
        for n in range(1, 5):
            born = ws.sage_rows(
                f"d{n}", "SELECT CT_Num FROM F_CONTACTT WHERE CT_Nom = ?", ("Née-en-SSM 4",)
            )
            assert [r[0] for r in born] == ([code] if n == 4 else []), n
        in_ssm = Counter(c["extId"] for c in ws.ssm_list("contacts"))
        assert max(in_ssm.values()) == 1 and len(in_ssm) == len(contacts) + 3
