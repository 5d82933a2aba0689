"""Clients and prospects of several dossiers, synced end to end.

Real parts only: reference dossiers read through the SQLite3 ODBC driver, the SSM
simulator as a real HTTP server, the CLI as a user runs it.
"""

from __future__ import annotations

from collections import Counter

from support.workspace import Workspace, totals


def writes(runs: list[dict]) -> int:
    t = totals(runs, "sage_to_ssm") + totals(runs, "ssm_to_sage")
    return t["created"] + t["updated"] + t["deleted"]


def test_overlapping_codes_give_one_account_per_dossier(workspace: Workspace) -> None:
    for n, dossier_id in enumerate(("nord", "sud", "ouest")):
        workspace.add_dossier(dossier_id, clients=25, seed=n + 1)
    workspace.activate_all()
    workspace.sync()

    everything = workspace.accounts()
    assert len(everything) == 75
    by_code = Counter(a["extId"].split(":", 1)[1] for a in everything)
    assert by_code["CL00001"] == 3
    assert all(n == 3 for n in by_code.values())
    for dossier_id in ("nord", "sud", "ouest"):
        mine = workspace.accounts(dossier_id)
        sage = workspace.sage_clients(dossier_id)
        assert len(mine) == len(sage)
        assert {a["extId"] for a in mine} == {f"{dossier_id}:{code}" for code in sage}
        one = workspace.account(f"{dossier_id}:CL00001")
        assert one["name"] == sage["CL00001"]["CT_Intitule"]


def test_second_sync_writes_nothing(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=40, seed=1)
    workspace.activate_all()
    first = workspace.sync()
    assert totals(first)["created"] == 40
    before = {a["id"]: a["dateUpdated"] for a in workspace.accounts()}

    second = workspace.sync()
    assert writes(second) == 0
    assert {a["id"]: a["dateUpdated"] for a in workspace.accounts()} == before


def test_sage_change_updates_exactly_that_account(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.add_dossier("sud", clients=30, seed=2)
    workspace.activate_all()
    workspace.sync()
    before = {a["extId"]: a["dateUpdated"] for a in workspace.accounts()}

    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Ville = ?, cbModification = strftime('%Y-%m-%d %H:%M:%f','now') "
        "WHERE CT_Num = ?",
        ("Saint-Étienne", "CL00007"),
    )
    runs = workspace.sync()
    assert totals(runs)["updated"] == 1
    after = {a["extId"]: a["dateUpdated"] for a in workspace.accounts()}
    changed = {ext for ext in before if before[ext] != after[ext]}
    assert changed == {"nord:CL00007"}
    assert workspace.account("nord:CL00007")["city"] == "Saint-Étienne"
    assert workspace.account("sud:CL00007")["city"] != "Saint-Étienne"


def test_change_without_timestamp_is_found_by_full_sync(workspace: Workspace) -> None:
    """A writer that bypasses Sage may not touch cbModification: row hashes catch it."""
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.activate_all()
    workspace.sync()
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_Telephone = '01 02 03 04 05' WHERE CT_Num = 'CL00002'"
    )
    runs = workspace.sync("--full")
    assert totals(runs)["updated"] == 1
    assert workspace.account("nord:CL00002")["phone"] == "01 02 03 04 05"


def test_ssm_only_fields_are_never_overwritten(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.activate_all()
    workspace.sync()
    account = workspace.account("nord:CL00003")
    workspace.ssm_put(
        "accounts",
        account["id"],
        {"comment": "Rappeler en janvier", "salesRepId1": 2, "extra1": "VIP"},
    )
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Intitule = ?, cbModification = strftime('%Y-%m-%d %H:%M:%f','now')"
        " WHERE CT_Num = 'CL00003'",
        ("Fromagerie Gérard",),
    )
    workspace.sync()
    workspace.sync("--full")
    after = workspace.account("nord:CL00003")
    assert after["name"] == "Fromagerie Gérard"
    assert after["comment"] == "Rappeler en janvier"
    assert after["extra1"] == "VIP"
    assert after["salesRepId1"]["id"] == 2


def test_prospect_edited_in_ssm_reaches_sage(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    sage = workspace.sage_clients("nord")
    code = next(c for c, row in sage.items() if row["CT_Prospect"] == 1)
    customer = next(c for c, row in sage.items() if row["CT_Prospect"] == 0)
    prospect = workspace.account(f"nord:{code}")
    assert prospect["readOnly"] is False
    assert workspace.account(f"nord:{customer}")["readOnly"] is True

    workspace.ssm_put("accounts", prospect["id"], {"city": "Besançon", "phone": "03 81 00 00 00"})
    runs = workspace.sync()
    assert totals(runs, "ssm_to_sage")["updated"] == 1
    row = workspace.sage_clients("nord")[code]
    assert row["CT_Ville"] == "Besançon"
    assert row["CT_Telephone"] == "03 81 00 00 00"
    # and it settles: nothing more to write
    assert writes(workspace.sync()) == 0


def test_customer_edits_in_ssm_do_not_reach_sage(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    sage = workspace.sage_clients("nord")
    code = next(c for c, row in sage.items() if row["CT_Prospect"] == 0)
    account = workspace.account(f"nord:{code}")
    workspace.ssm_put("accounts", account["id"], {"city": "Nulle-Part"})
    workspace.sync()
    assert workspace.sage_clients("nord")[code]["CT_Ville"] == sage[code]["CT_Ville"]


def test_conflict_on_shared_field_keeps_sage_value(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    sage = workspace.sage_clients("nord")
    code = next(c for c, row in sage.items() if row["CT_Prospect"] == 1)
    account = workspace.account(f"nord:{code}")
    workspace.ssm_put("accounts", account["id"], {"city": "Ville SSM", "phone": "09 99 99 99 99"})
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Ville = 'Ville Sage', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
        (code,),
    )
    workspace.sync()
    row = workspace.sage_clients("nord")[code]
    after = workspace.account(f"nord:{code}")
    assert row["CT_Ville"] == "Ville Sage" and after["city"] == "Ville Sage"
    # the field only SSM changed still reaches Sage
    assert row["CT_Telephone"] == "09 99 99 99 99"


def test_prospect_turned_client_in_ssm_becomes_sage_customer(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    code = next(c for c, r in workspace.sage_clients("nord").items() if r["CT_Prospect"] == 1)
    account = workspace.account(f"nord:{code}")
    workspace.ssm_put("accounts", account["id"], {"typeId": 1})
    workspace.sync()
    assert workspace.sage_clients("nord")[code]["CT_Prospect"] == 0
    assert workspace.account(f"nord:{code}")["readOnly"] is True


def test_account_created_in_ssm_is_created_in_its_dossier(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=5, seed=1, branch_id=2)
    workspace.add_dossier("sud", clients=5, seed=2, branch_id=3)
    workspace.activate_all()
    workspace.sync()
    new_id = workspace.ssm_post(
        "accounts",
        {"name": "Crêperie Le Hénaff", "branchId": 3, "salesRepId1": 1, "typeId": 1},
    )
    prospect_id = workspace.ssm_post(
        "accounts",
        {"name": "Ébénisterie Noël", "branchId": 3, "salesRepId1": 1, "typeId": 2},
    )
    workspace.sync()
    sud = {r["CT_Intitule"]: r for r in workspace.sage_clients("sud").values()}
    assert sud["Crêperie Le Hénaff"]["CT_Prospect"] == 0
    assert sud["Ébénisterie Noël"]["CT_Prospect"] == 1
    assert "Crêperie Le Hénaff" not in {
        r["CT_Intitule"] for r in workspace.sage_clients("nord").values()
    }
    created = workspace.http.get(f"/accounts/{new_id}").json()
    assert created["extId"] == f"sud:{sud['Crêperie Le Hénaff']['CT_Num']}"
    assert created["readOnly"] is True
    assert workspace.http.get(f"/accounts/{prospect_id}").json()["readOnly"] is False
    assert writes(workspace.sync()) == 0
    assert len(workspace.sage_clients("sud")) == 7


def test_sage_deletion_marks_account_deleted_and_ssm_deletion_stays(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.activate_all()
    workspace.sync()
    gone = workspace.account("nord:CL00004")
    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = 'CL00004'")
    kept = workspace.account("nord:CL00005")
    workspace.ssm_delete("accounts", kept["id"])

    runs = workspace.sync()
    assert totals(runs)["deleted"] == 1
    deleted = {a["id"]: a for a in workspace.accounts("nord", deleted=True)}
    assert deleted[gone["id"]]["extId"] == "nord:CL00004"
    assert deleted[gone["id"]]["dateDeleted"]
    assert "CL00005" in workspace.sage_clients("nord")
    assert writes(workspace.sync()) == 0


def test_invalid_record_becomes_incident_and_others_sync(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=12, seed=1)
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00006'"
    )
    workspace.activate_all()
    runs = workspace.sync(expect=1)
    assert totals(runs)["created"] == 11
    assert totals(runs)["refused"] == 1
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["dossier_id"] == "nord"
    assert incident["record_key"] == "CL00006"
    assert incident["field"] == "email"
    # the rule in words, no regular expression: what is wrong and where to correct it
    assert incident["detail"]["problem"]["rule"] == "email"
    assert incident["message"] == (
        "Dossier nord, client CL00006: e-mail address is not valid: 'pas-une-adresse'. "
        "Correct it in Sage 50FR: the next sync picks it up again."
    )

    # the same failure again counts, it does not duplicate
    workspace.sync(expect=1)
    again = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert len(again) == 1 and again[0]["occurrences"] == 2

    # fixed in Sage: synced and the incident closes
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'contact@exemple.fr', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00006'",
    )
    workspace.sync()
    assert workspace.cli_json("incidents", "--dossier", "nord", "--open") == []
    assert workspace.account("nord:CL00006")["email"] == "contact@exemple.fr"


def test_deactivated_dossier_is_not_read_and_stays_in_ssm(workspace: Workspace) -> None:
    for n, dossier_id in enumerate(("nord", "sud", "ouest")):
        workspace.add_dossier(dossier_id, clients=15, seed=n + 1)
    workspace.activate_all()
    workspace.sync()
    workspace.cli("dossiers", "deactivate", "sud")
    path = workspace.dossiers["sud"]["path"]
    path.rename(path.with_suffix(".moved"))  # its ODBC source is gone

    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Ville = 'Arras', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00001'",
    )
    runs = workspace.sync()
    assert {r["dossier_id"] for r in runs} == {"nord", "ouest"}
    assert workspace.account("nord:CL00001")["city"] == "Arras"
    assert not path.exists(), "the inactive dossier's source was opened"
    assert len(workspace.accounts("sud")) == 15
    listed = {d["id"]: d["state"] for d in workspace.cli_json("dossiers", "list")}
    assert listed == {"nord": "active", "sud": "inactive", "ouest": "active"}
    journal = workspace.cli_json("journal", "--dossier", "sud")
    assert len(journal) == 2  # only the first sync's two processes


def test_failing_dossier_does_not_stop_the_others(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.add_dossier("sud", clients=10, seed=2)
    workspace.activate_all()
    workspace.dossiers["nord"]["path"] = workspace.root / "missing" / "nord.db"
    workspace.write_config()

    result = workspace.cli("sync", expect=1)
    # said once for the dossier, naming its source's driver, not once per process
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED nord")]
    assert len(failed) == 1 and "(driver SQLite3)" in failed[0], result.stderr
    assert "missing/nord.db" not in result.stderr
    assert len(workspace.accounts("sud")) == 10
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert {i["kind"] for i in incidents} == {"run_failed"}
    status = {d["id"]: d for d in workspace.cli_json("status")}
    assert status["sud"]["entities"][0]["records"]["synced"] == 10


def test_sage_key_colliding_with_another_dossiers_record_is_refused(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=10, seed=1)
    workspace.add_dossier("sud", clients=10, seed=2)
    workspace.activate_all()
    workspace.sync()
    # in SSM, sud's account is given an extId that names a nord client yet to come
    foreign = workspace.account("sud:CL00003")
    workspace.ssm_put("accounts", foreign["id"], {"extId": "nord:CL00077"})
    workspace.sage_execute(
        "nord",
        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil, "
        "cbModification) VALUES ('CL00077', 'Nouveau client', 0, 0, 0, "
        "strftime('%Y-%m-%d %H:%M:%f','now'))",
    )
    before = workspace.http.get(f"/accounts/{foreign['id']}").json()

    workspace.sync(expect=1)
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert [(i["kind"], i["record_key"]) for i in incidents] == [
        ("moved_between_dossiers", "CL00077")
    ]
    assert "sud:CL00003" in incidents[0]["message"]
    after = workspace.http.get(f"/accounts/{foreign['id']}").json()
    assert after["name"] == before["name"] and after["dateUpdated"] == before["dateUpdated"]
    assert len(workspace.ssm_list("accounts", "extId = 'nord:CL00077'")) == 1


def test_ssm_edit_refused_by_sage_is_retried_after_the_cursor_moved_on(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=30, seed=1)
    workspace.sync_settings["overlap_seconds"] = 0
    workspace.write_config()
    workspace.activate_all()
    workspace.sync()
    sage = workspace.sage_clients("nord")
    code = next(c for c, row in sage.items() if row["CT_Prospect"] == 1)
    other = next(c for c in sage if c != code)
    workspace.sage_execute(
        "nord",
        "CREATE TRIGGER verrou BEFORE UPDATE ON F_COMPTET WHEN OLD.CT_Num = '"
        + code
        + "' BEGIN SELECT RAISE(ABORT, 'fiche verrouillée dans Sage'); END",
    )
    workspace.ssm_put("accounts", workspace.account(f"nord:{code}")["id"], {"city": "Quimper"})
    workspace.ssm_put("accounts", workspace.account(f"nord:{other}")["id"], {"comment": "vu"})
    workspace.sync(expect=1)
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert incident["kind"] == "sage_write_failed" and incident["record_key"] == code

    workspace.sage_execute("nord", "DROP TRIGGER verrou")
    workspace.sync()
    assert workspace.sage_clients("nord")[code]["CT_Ville"] == "Quimper"
    assert workspace.cli_json("incidents", "--dossier", "nord", "--open") == []
