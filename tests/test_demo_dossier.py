"""Demo dossiers: deterministic French data in the reference schema, readable over ODBC."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from dossiersync.plugins.sage50fr_odbc import Sage50OdbcEndpoint, SageMapping
from dossiersync.plugins.sage50fr_odbc.demo_dossier import DemoSummary, write_demo_dossier

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


def _clients(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute('SELECT * FROM "F_COMPTET" ORDER BY "CT_Num"').fetchall()


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    return path, write_demo_dossier(path, clients=400, seed=7)


def test_same_seed_gives_the_same_rows(tmp_path: Path, demo: tuple[Path, DemoSummary]) -> None:
    path, _ = demo
    again = write_demo_dossier(tmp_path / "again.db", clients=400, seed=7)

    assert _clients(again.path) == _clients(path)


def test_other_seeds_give_other_names_under_the_same_codes(
    tmp_path: Path, demo: tuple[Path, DemoSummary]
) -> None:
    path, _ = demo
    other = write_demo_dossier(tmp_path / "other.db", clients=300, seed=8)

    first = {row[0]: row[1] for row in _clients(path)}
    second = {row[0]: row[1] for row in _clients(other.path)}

    assert set(second) <= set(first)
    assert sorted(first)[:3] == ["CL00001", "CL00002", "CL00003"]
    assert sum(first[code] != second[code] for code in second) > 250


def test_clients_look_like_french_companies(demo: tuple[Path, DemoSummary]) -> None:
    path, summary = demo
    rows = _clients(path)
    names = [row[1] for row in rows]

    assert summary.clients == len(rows) == 400
    assert all(0 < len(name) <= 35 for name in names)
    assert sum(1 for name in names if re.search(r"[àâçéèêëîïôûùüÿœÉÈÊÂÔ]", name)) > 40
    assert 40 < summary.prospects < 130
    assert summary.prospects == sum(1 for row in rows if row[3] == 1)
    assert 0 < summary.dormant == sum(1 for row in rows if row[15] == 1)
    assert {row[2] for row in rows} == {0}


def test_identifiers_are_well_formed(demo: tuple[Path, DemoSummary]) -> None:
    path, _ = demo
    for row in _clients(path):
        vat, siret = row[12], row[13]
        assert re.fullmatch(r"FR\d{11}", vat)
        assert vat[4:] == siret[:9]
        assert int(vat[2:4]) == (12 + 3 * (int(siret[:9]) % 97)) % 97
        assert re.fullmatch(r"\d{14}", siret)
        assert _luhn_valid(siret[:9])
        assert _luhn_valid(siret)
        assert re.fullmatch(r"\d{5}", row[6])
        assert "@" in row[10]
        assert row[11].startswith("www.")


def test_dates_come_from_the_seed_not_from_today(tmp_path: Path) -> None:
    first = write_demo_dossier(tmp_path / "a.db", clients=50, seed=3)
    time.sleep(0.01)
    second = write_demo_dossier(tmp_path / "b.db", clients=50, seed=3)

    rows = _clients(first.path)
    assert [row[16:18] for row in rows] == [row[16:18] for row in _clients(second.path)]
    assert all(TIMESTAMP.match(row[17]) and row[16] <= row[17][:10] for row in rows)
    assert max(row[17] for row in rows) < "2026-01-01"


def test_demo_dossier_reads_through_the_sqlite_odbc_driver(
    demo: tuple[Path, DemoSummary],
) -> None:
    path, summary = demo

    with Sage50OdbcEndpoint(f"DRIVER={{SQLite3}};Database={path}", fetch_size=64) as endpoint:
        rows = list(endpoint.read("F_COMPTET"))
        prospects = list(endpoint.read_keys("F_COMPTET", where={"CT_Prospect": 1}))
        empty = [
            list(endpoint.read(table))
            for table in SageMapping.load().tables
            if table != "F_COMPTET"
        ]
        high_water_mark = endpoint.high_water_mark("F_COMPTET")

    assert len(rows) == summary.clients
    assert len(prospects) == summary.prospects
    assert empty == [[]] * 6
    assert rows[0]["CT_Num"] == "CL00001"
    assert rows[0]["CT_Pays"] == "France"
    assert high_water_mark == max(row["cbModification"] for row in rows)


def test_an_existing_file_is_kept_unless_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "dossier.db"
    write_demo_dossier(path, clients=5, seed=1)

    with pytest.raises(FileExistsError):
        write_demo_dossier(path, clients=10, seed=1)
    assert len(_clients(path)) == 5

    write_demo_dossier(path, clients=10, seed=1, overwrite=True)
    assert len(_clients(path)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dossier.db"]


def test_five_thousand_clients_are_written_quickly(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = write_demo_dossier(tmp_path / "big.db", clients=5000, seed=2)

    assert summary.clients == 5000
    assert time.perf_counter() - started < 10
