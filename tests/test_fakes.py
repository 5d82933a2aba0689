"""The in-memory fakes keep the endpoint rules the engine's unit tests rely on."""

from __future__ import annotations

import pytest

from dossiersync.errors import SsmRefused

from support.fakes import FakeSage, FakeSsm


def sage_with_one_client() -> FakeSage:
    sage = FakeSage({"F_COMPTET": ["CT_Num"]})
    sage.insert("F_COMPTET", {"CT_Num": "CL00001", "CT_Intitule": "Dupont", "CT_Type": 0})
    return sage


def test_a_failed_transaction_leaves_sage_as_it_was() -> None:
    sage = sage_with_one_client()
    with pytest.raises(RuntimeError), sage.transaction():
        sage.update("F_COMPTET", ("CL00001",), {"CT_Intitule": "Martin"})
        sage.insert("F_COMPTET", {"CT_Num": "CL00002", "CT_Intitule": "Leroy"})
        raise RuntimeError("write failed")

    assert [r["CT_Intitule"] for r in sage.read("F_COMPTET")] == ["Dupont"]


def test_held_writes_are_read_back_then_undone_by_close() -> None:
    sage = sage_with_one_client()
    sage.hold_writes()
    with sage.transaction():
        sage.insert("F_COMPTET", {"CT_Num": "CL00002", "CT_Intitule": "Leroy"})
    assert sage.next_code("F_COMPTET", "CT_Num", "CL", 7) == "CL00003"

    sage.close()

    assert list(sage.read_keys("F_COMPTET")) == [("CL00001",)]


def test_sage_reads_rows_modified_at_or_after_since() -> None:
    sage = sage_with_one_client()
    cursor = sage.clock()
    sage.insert("F_COMPTET", {"CT_Num": "CL00002", "CT_Intitule": "Leroy", "CT_Type": 0})

    assert [r["CT_Num"] for r in sage.read("F_COMPTET", since=cursor)] == ["CL00002"]
    newest = sage.get("F_COMPTET", ["CL00002"])
    assert newest is not None
    assert sage.high_water_mark("F_COMPTET") == newest["cbModification"]


def test_ssm_deletion_is_listed_only_when_deleted_records_are_asked_for() -> None:
    ssm = FakeSsm()
    kept = ssm.create("accounts", {"extId": "nord:CL00001", "name": "Dupont", "typeId": 1})
    gone = ssm.create("accounts", {"extId": "nord:CL00002", "name": "Leroy"})
    since = ssm.changed_at(ssm.get("accounts", gone))
    assert since is not None and since.endswith("Z") and len(since) == 24

    ssm.delete("accounts", gone)

    assert [r["id"] for r in ssm.list_changed("accounts")] == [kept]
    changed = list(ssm.list_changed("accounts", since=since, deleted=True))
    assert [(r["id"], r["deleted"]) for r in changed] == [(gone, True)]
    assert ssm.get("accounts", kept)["typeId"] == {"id": 1, "value": "typeId 1"}


def test_a_refused_record_fails_alone_in_a_bulk_write() -> None:
    ssm = FakeSsm()
    ssm.refuse("accounts", ext_id="nord:CL00002")

    results = ssm.bulk_create(
        "accounts", [{"extId": f"nord:CL0000{n}", "name": f"Client {n}"} for n in (1, 2, 3)]
    )

    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, SsmRefused)
    assert sorted(ssm.live("accounts")) == ["nord:CL00001", "nord:CL00003"]
