"""Corrupted Sage rows: each bad row is one incident, every good row syncs, and the next
passes stay healthy.

Real parts only: bad values are written into a reference dossier with SQLite itself
(bypassing the connector, as a damaged file or another tool would leave them), read
through the SQLite3 ODBC driver and synced to the SSM simulator over HTTP.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint
from dossiersync.source import Unreadable

from support.workspace import Workspace, totals

NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def outcomes(runs: list[dict[str, Any]]) -> set[str]:
    return {run["outcome"] for dossier in runs for run in dossier["runs"]}


def set_value(conn: sqlite3.Connection, code: str, column: str, value: Any, sql: str = "?") -> None:
    """One column of one client set as SQLite stores it, and the row marked modified."""
    cbmod = "" if column == "cbModification" else f", cbModification = {NOW}"
    done = conn.execute(
        f"UPDATE F_COMPTET SET {column} = {sql}{cbmod} WHERE CT_Num = ?",  # noqa: S608
        (value, code),
    )
    assert done.rowcount == 1, code


def new_client(conn: sqlite3.Connection, code: Any, name: str = "Nouveau client") -> None:
    conn.execute(
        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil, "
        "cbModification) VALUES (?, ?, 0, 0, 0, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
        (code, name),
    )


LONG_KEY = "CL" + "9" * 40  # 42 characters, 17 fit

#: (client code, column, value as bound, SQL around the parameter, field the incident names)
BAD: list[tuple[str, str, Any, str, str]] = [
    ("CL00001", "CT_Intitule", None, "?", "name"),  # a required field is NULL
    ("CL00002", "CT_Intitule", "   ", "?", "name"),  # only spaces
    ("CL00003", "CT_Intitule", "N" * 36, "?", "name"),  # one character too many
    ("CL00004", "CT_Intitule", "L" * 10_000, "?", "name"),  # 10,000 characters
    ("CL00005", "CT_Intitule", "AB\x00CD", "?", "name"),  # NUL: the driver would cut it
    ("CL00006", "CT_Intitule", "Bell\x07e", "?", "name"),  # a control character
    ("CL00007", "CT_Intitule", b"AB\xffC\xc3(", "CAST(? AS TEXT)", "name"),  # bad UTF-8 text
    ("CL00008", "CT_Intitule", b"\x00\xff\x00\xff", "?", "name"),  # a blob
    ("CL00009", "CT_Ville", b"\xc3\x28", "?", "city"),  # a blob of invalid UTF-8
    ("CL00010", "CT_Prospect", 0.5, "?", "is_prospect"),  # the driver would say 0
    ("CL00011", "CT_Prospect", -7, "?", "is_prospect"),  # truthy, yet no flag
    ("CL00012", "CT_Prospect", "abc", "?", "is_prospect"),  # the driver would say NULL
    ("CL00013", "CT_Prospect", 2**40, "?", "is_prospect"),  # the driver would say 0
    ("CL00014", "CT_Sommeil", 2, "?", "dormant"),
    ("CL00015", "cbModification", "garbage-timestamp", "?", "cbModification"),
    ("CL00016", "cbModification", "2024-13-45 99:99:99.999", "?", "cbModification"),
    ("CL00017", "cbModification", b"\x00\x01", "?", "cbModification"),  # a blob
    ("CL00018", "CT_EMail", "pas-une-adresse", "?", "email"),
    ("CL00019", "CT_CodePostal", "6900100000", "?", "postcode"),  # over-long text
    ("CL00020", "CT_Identifiant", "FR" + "1" * 30, "?", "vat_number"),
    ("CL00021", "CT_Telephone", "01\x1b[31m02", "?", "phone"),  # an escape sequence
    ("CL00022", "CT_Site", b"\xed\xa0\x80", "CAST(? AS TEXT)", "web"),  # a UTF-16 surrogate
]

#: rows added with a bad key: (the key as stored, the record key the incident names)
BAD_KEYS: list[tuple[Any, str]] = [
    (LONG_KEY, LONG_KEY),  # over-long key
    ("CL'; DROP--", "CL'; DROP--"),  # not a client code
    ("CL\x00X", "CL\\x00X"),  # a NUL in the key, named with the NUL written out
]

#: good values, however odd they look: they must arrive exactly as they are
GOOD: list[tuple[str, str, Any, str, str, Any]] = [
    ("CL00023", "CT_Intitule", "Café ☕ 😀 Ünïcode 𝄞", "?", "name", "Café ☕ 😀 Ünïcode 𝄞"),
    (
        "CL00024",
        "CT_Intitule",
        "Robert'); DROP TABLE F_COMPTET;--",
        "?",
        "name",
        "Robert'); DROP TABLE F_COMPTET;--",
    ),
    (
        "CL00025",
        "CT_Intitule",
        "<script>alert(1)</script>",
        "?",
        "name",
        "<script>alert(1)</script>",
    ),
    ("CL00026", "CT_Ville", "'; DELETE FROM link; --", "?", "city", "'; DELETE FROM link; --"),
    ("CL00027", "CT_Intitule", "X'00FF00FF'", "?", "name", "X'00FF00FF'"),  # text, not a blob
    ("CL00028", "CT_Intitule", "E" * 35, "?", "name", "E" * 35),  # exactly what fits
    ("CL00029", "CT_Prospect", "1", "?", "typeId", 2),  # the flag as text
    ("CL00030", "CT_Prospect", 1.0, "?", "typeId", 2),  # the flag as a REAL
]


def test_every_kind_of_bad_row_is_one_incident_and_the_next_passes_stay_healthy(
    workspace: Workspace,
) -> None:
    path = workspace.add_dossier("nord", clients=40, seed=1)
    with sqlite3.connect(path) as conn:
        for code, column, value, sql, _ in BAD:
            set_value(conn, code, column, value, sql)
        for code, column, value, sql, *_ in GOOD:
            set_value(conn, code, column, value, sql)
        for key, _ in BAD_KEYS:
            new_client(conn, key)
    kinds = len(BAD) + len(BAD_KEYS)
    assert kinds >= 20
    workspace.activate_all()

    runs = workspace.sync(expect=1)
    assert outcomes(runs) <= {"partial", "succeeded"}
    assert totals(runs)["created"] == 40 - len(BAD)
    assert totals(runs)["refused"] == kinds
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    found = Counter((i["kind"], i["dossier_id"], i["record_key"], i["field"]) for i in incidents)
    expected = Counter(("invalid_record", "nord", code, field) for code, _, _, _, field in BAD)
    expected.update(("invalid_record", "nord", shown, "code") for _, shown in BAD_KEYS)
    assert found == expected
    for incident in incidents:
        assert len(incident["message"]) < 400, incident["message"]
        assert f"Dossier nord, client {incident['record_key']}" in incident["message"]
    by_key = {i["record_key"]: i for i in incidents}
    assert "U+0000" in by_key["CL00005"]["message"]
    assert "10000 characters" in by_key["CL00004"]["message"]
    assert "L" * 100 not in by_key["CL00004"]["message"]

    # the good rows, odd as they look, arrive unchanged; the bad ones are not sent
    accounts = {a["extId"]: a for a in workspace.accounts("nord")}
    assert len(accounts) == 40 - len(BAD)
    for code, *_ in BAD:
        assert f"nord:{code}" not in accounts
    for code, _, _, _, field, arrived in GOOD:
        value = accounts[f"nord:{code}"][field]
        assert (value["id"] if isinstance(value, dict) else value) == arrived, code

    # pass 2: a deletion and a change in Sage both reach SSM, though the bad rows stay
    workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = 'CL00031'")
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Ville = 'Annecy', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "WHERE CT_Num = 'CL00032'",
    )
    runs = workspace.sync(expect=1)
    assert outcomes(runs) <= {"partial", "succeeded"}
    assert totals(runs)["deleted"] == 1
    assert totals(runs)["updated"] == 1
    assert workspace.account("nord:CL00032")["city"] == "Annecy"
    assert "nord:CL00031" not in {a["extId"] for a in workspace.accounts("nord")}
    again = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert {(i["record_key"], i["field"]) for i in again} == {(k, f) for (_, _, k, f) in expected}
    assert not [i for i in again if i["kind"] == "run_failed"]

    # pass 3: rows corrected in Sage sync and their incidents close; deletions still move
    with sqlite3.connect(path) as conn:
        set_value(conn, "CL00005", "CT_Intitule", "ABCD")
        set_value(conn, "CL00010", "CT_Prospect", 1)
        conn.execute(
            "UPDATE F_COMPTET SET cbModification = strftime('%Y-%m-%d %H:%M:%f', 'now') "
            "WHERE CT_Num = 'CL00015'"
        )
        conn.execute("DELETE FROM F_COMPTET WHERE CT_Num = ?", (LONG_KEY,))
        conn.execute("DELETE FROM F_COMPTET WHERE CT_Num = 'CL00033'")
    runs = workspace.sync(expect=1)
    assert outcomes(runs) <= {"partial", "succeeded"}
    assert totals(runs)["created"] == 3
    assert totals(runs)["deleted"] == 1
    assert workspace.account("nord:CL00005")["name"] == "ABCD"
    assert workspace.account("nord:CL00010")["typeId"]["id"] == 2
    left = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert {i["record_key"] for i in left} == (
        {k for (_, _, k, _) in expected} - {"CL00005", "CL00010", "CL00015", LONG_KEY}
    )


def test_an_unparsable_modification_time_blocks_only_its_row(workspace: Workspace) -> None:
    """Its text sorts above every timestamp: the table's high-water mark must pass over it."""
    path = workspace.add_dossier("nord", clients=300, seed=3)
    with sqlite3.connect(path) as conn:
        for code in ("CL00010", "CL00150", "CL00290"):
            set_value(conn, code, "cbModification", "garbage-timestamp")
    workspace.activate_all()

    runs = workspace.sync(expect=1)
    assert totals(runs)["created"] == 297
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert sorted((i["kind"], i["record_key"], i["field"]) for i in incidents) == [
        ("invalid_record", code, "cbModification") for code in ("CL00010", "CL00150", "CL00290")
    ]
    with Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}") as sage:
        mark = sage.high_water_mark("F_COMPTET")
        assert mark is not None and mark[:2] == "20"
        assert mark < sage.clock()

    # the cursor moves: a later change is read by an incremental pass
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_Ville = 'Vienne', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "WHERE CT_Num = 'CL00020'",
    )
    runs = workspace.sync(expect=1)
    assert totals(runs)["updated"] == 1
    assert workspace.account("nord:CL00020")["city"] == "Vienne"


def test_an_over_long_key_leaves_the_later_passes_healthy(workspace: Workspace) -> None:
    path = workspace.add_dossier("nord", clients=20, seed=1)
    with sqlite3.connect(path) as conn:
        new_client(conn, LONG_KEY)
    workspace.activate_all()
    runs = workspace.sync(expect=1)
    assert totals(runs)["created"] == 20
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert (incident["kind"], incident["record_key"], incident["field"]) == (
        "invalid_record",
        LONG_KEY,
        "code",
    )

    for n, (gone, changed) in enumerate((("CL00003", "CL00004"), ("CL00005", "CL00006")), 2):
        workspace.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = ?", (gone,))
        workspace.sage_execute(
            "nord",
            "UPDATE F_COMPTET SET CT_Ville = ?, "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE CT_Num = ?",
            (f"Ville {n}", changed),
        )
        runs = workspace.sync(expect=1)
        assert outcomes(runs) <= {"partial", "succeeded"}, n
        assert totals(runs)["deleted"] == 1, n
        assert totals(runs)["updated"] == 1, n
        assert workspace.account(f"nord:{changed}")["city"] == f"Ville {n}"
        (again,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
        assert again["record_key"] == LONG_KEY and again["occurrences"] == n


@pytest.mark.parametrize(
    ("column", "value", "sql"),
    [
        ("CT_DateCreate", "31/02/2024", "?"),
        ("CT_DateCreate", b"\x00\x01", "?"),
        ("CO_No", "douze", "?"),
        ("CO_No", 1.5, "?"),
        ("CT_Intitule", b"\xff", "CAST(? AS TEXT)"),
    ],
)
def test_the_endpoint_reads_a_value_its_type_cannot_carry_as_unreadable(
    tmp_path: Path, column: str, value: Any, sql: str
) -> None:
    from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier

    path = tmp_path / "d.db"
    write_demo_dossier(path, clients=3, seed=1)
    with sqlite3.connect(path) as conn:
        set_value(conn, "CL00002", column, value, sql)
    with Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}") as sage:
        rows = {r["CT_Num"]: r for r in sage.read("F_COMPTET", ["CT_Num", column])}
        assert isinstance(rows["CL00002"][column], Unreadable)
        assert rows["CL00002"][column].column == column
        assert not any(isinstance(rows[c][column], Unreadable) for c in ("CL00001", "CL00003"))
        got = sage.get("F_COMPTET", ("CL00002",), [column])
        assert got is not None and isinstance(got[column], Unreadable)
        one = list(sage.read("F_COMPTET", ["CT_Num", column], keys=[("CL00002",)]))
        assert isinstance(one[0][column], Unreadable)


def test_an_ssm_edit_over_an_unreadable_sage_row_is_an_incident(workspace: Workspace) -> None:
    """The SSM -> Sage pass reads the Sage row it writes over: a value there that cannot
    be read as it is makes that record an incident, not the pass an internal error."""
    path = workspace.add_dossier("nord", clients=20, seed=1)
    workspace.activate_all()
    workspace.sync()
    code = workspace.sage_rows(
        "nord", "SELECT CT_Num FROM F_COMPTET WHERE CT_Prospect = 1 ORDER BY CT_Num LIMIT 1"
    )[0][0]
    account = workspace.account(f"nord:{code}")
    workspace.ssm_put("accounts", account["id"], {"phone": "04 72 00 00 00"})
    with sqlite3.connect(path) as conn:  # a blob where Sage has its city: no change time
        conn.execute("UPDATE F_COMPTET SET CT_Ville = ? WHERE CT_Num = ?", (b"\xff\xfe", code))

    runs = workspace.sync(expect=1)
    assert "failed" not in outcomes(runs)
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert (incident["kind"], incident["record_key"], incident["field"]) == (
        "invalid_record",
        code,
        "city",
    )
    assert incident["direction"] == "ssm_to_sage"
    assert (
        workspace.sage_rows("nord", "SELECT CT_Telephone FROM F_COMPTET WHERE CT_Num = ?", (code,))[
            0
        ][0]
        != "04 72 00 00 00"
    )


def test_bad_product_prices_and_stock_are_one_incident_each(workspace: Workspace) -> None:
    path = workspace.add_dossier("nord", clients=3, seed=1, products=20, entities=("products",))
    with sqlite3.connect(path) as conn:
        refs = [r[0] for r in conn.execute("SELECT AR_Ref FROM F_ARTICLE ORDER BY AR_Ref")]
        stocked = [
            r[0] for r in conn.execute("SELECT DISTINCT AR_Ref FROM F_ARTSTOCK ORDER BY AR_Ref")
        ]
        bad = {
            refs[0]: ("AR_PrixVen", "douze euros", "price"),  # not a number
            refs[1]: ("AR_PrixVen", b"\x00\xff", "price"),  # a blob
            refs[2]: ("AR_PrixVen", "1e400", "price"),  # out of any range
            refs[3]: ("AR_Design", "Vis\x00 inox", "designation"),
            refs[4]: ("AR_Sommeil", 0.5, "dormant"),
        }
        for ref, (column, value, _) in bad.items():
            conn.execute(
                f"UPDATE F_ARTICLE SET {column} = ? WHERE AR_Ref = ?",  # noqa: S608
                (value, ref),
            )
        short = next(r for r in stocked if r not in bad)
        conn.execute("UPDATE F_ARTSTOCK SET AS_QteSto = 'beaucoup' WHERE AR_Ref = ?", (short,))
        bad[short] = ("AS_QteSto", "beaucoup", "stock")
    workspace.activate_all()

    runs = workspace.sync(expect=1)
    assert "failed" not in outcomes(runs)
    incidents = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert sorted((i["kind"], i["record_key"], i["field"]) for i in incidents) == sorted(
        ("invalid_record", ref, field) for ref, (_, _, field) in bad.items()
    )
    synced = {r["extId"] for r in workspace.records("products", "nord")}
    assert synced == {f"nord:{ref}" for ref in refs if ref not in bad}


def test_a_contact_number_that_cannot_be_read_leaves_contacts_made_in_ssm_numbered(
    workspace: Workspace,
) -> None:
    path = workspace.add_dossier("nord", clients=5, seed=1, entities=("clients", "contacts"))
    workspace.activate_all()
    workspace.sync()
    code = workspace.sage_rows("nord", "SELECT CT_Num FROM F_CONTACTT ORDER BY CT_Num LIMIT 1")[0][
        0
    ]
    with sqlite3.connect(path) as conn:
        top = conn.execute("SELECT MAX(CT_No) FROM F_CONTACTT WHERE CT_Num = ?", (code,)).fetchone()
        conn.execute(
            "INSERT INTO F_CONTACTT (CT_Num, CT_No, CT_Nom, cbModification) "
            "VALUES (?, 1.5, 'Demi', strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            (code,),
        )
    account = workspace.account(f"nord:{code}")
    workspace.ssm_post(
        "contacts",
        {"accountId": account["id"], "firstName": "Loïc", "lastName": "Le Dréan", "salesRepId": 2},
    )
    runs = workspace.sync(expect=1)
    assert "failed" not in outcomes(runs)
    created = workspace.sage_rows(
        "nord", "SELECT CT_Num, CT_No FROM F_CONTACTT WHERE CT_Nom = 'Le Dréan'"
    )
    assert [tuple(r) for r in created] == [(code, top[0] + 1)]
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert incident["entity"] == "contacts" and incident["kind"] == "invalid_record"
    assert incident["record_key"] == f"{code}:1.5"


def test_a_ten_thousand_character_key_is_never_repeated_whole(workspace: Workspace) -> None:
    path = workspace.add_dossier("nord", clients=5, seed=1)
    huge = "K" * 10_000
    with sqlite3.connect(path) as conn:  # SQLite holds it, whatever VARCHAR(17) says
        new_client(conn, huge)
    workspace.activate_all()
    runs = workspace.sync(expect=1)
    assert totals(runs)["created"] == 5
    (incident,) = workspace.cli_json("incidents", "--dossier", "nord", "--open")
    assert incident["record_key"] == huge
    assert len(incident["message"]) < 500
    assert f"client {'K' * 80}… (10,000 characters):" in incident["message"]


def test_another_systems_message_is_cut_in_an_incident() -> None:
    from dossiersync.messages import Notice

    answer = "Field name is too long: " + "N" * 10_000
    notice = Notice("refused_by_ssm", "nord", entity="clients", key="CL00001", reason=answer)
    assert len(notice.text()) < 700
    assert "… (10,024 characters)" in notice.text()
    assert "… (10,024 characters)" in notice.text("fr")


def test_a_failed_pass_does_not_repeat_a_huge_error_whole() -> None:
    from dossiersync.messages import Notice

    error = "the driver says: " + "E" * 10_000
    notice = Notice("run_failed", "nord", entity="clients", direction="sage_to_ssm", reason=error)
    assert len(notice.text()) < 800
    assert "… (10,017 characters)" in notice.text()
