"""The simulator's ``where=`` language: parsed into a tree, compiled to bound parameters only."""

from __future__ import annotations

from pathlib import Path

import pytest

from dossiersync.plugins.sales_management.simulator.store import ApiError, Store
from dossiersync.plugins.sales_management.simulator.where import (
    And,
    Comparison,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    SqlFragment,
    WhereSyntaxError,
    compile_where,
    fields,
    parse,
)


class JsonColumns:
    """Every field read from ``data`` with its JSON path bound as a parameter."""

    def expression(self, field: str) -> SqlFragment:
        return SqlFragment("json_extract(data, ?)", (f"$.{field}",))

    def literal(self, field: str, value: object) -> object:
        return value


def test_and_binds_tighter_than_or() -> None:
    assert parse("a = 1 OR b = 2 AND c = 3") == Or(
        Comparison("a", "=", 1), And(Comparison("b", "=", 2), Comparison("c", "=", 3))
    )


def test_parentheses_override_precedence() -> None:
    assert parse("(a = 1 OR b = 2) AND c = 3") == And(
        Or(Comparison("a", "=", 1), Comparison("b", "=", 2)), Comparison("c", "=", 3)
    )


def test_not_applies_to_the_next_operand_only() -> None:
    assert parse("NOT a = 1 AND b = 2") == And(
        Not(Comparison("a", "=", 1)), Comparison("b", "=", 2)
    )


def test_keywords_are_case_insensitive() -> None:
    assert parse("a like 'x%' or b is not null") == Or(Like("a", "x%"), IsNull("b", negated=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("extId LIKE 'ACME:%'", Like("extId", "ACME:%")),
        ("extId NOT LIKE 'A_C%'", Like("extId", "A_C%", negated=True)),
        ("id IN (1, 2, 3)", InList("id", (1, 2, 3))),
        ("id NOT IN ('a')", InList("id", ("a",), negated=True)),
        ("comment IS NULL", IsNull("comment")),
        ("name = 'O''Brien'", Comparison("name", "=", "O'Brien")),
        ("price >= -1.5", Comparison("price", ">=", -1.5)),
        ("stock <> 0", Comparison("stock", "<>", 0)),
        ("readOnly = true", Comparison("readOnly", "=", True)),
        ("deleted != false", Comparison("deleted", "!=", False)),
        ("typeId = null", Comparison("typeId", "=", None)),
        ("branchId.id = 2", Comparison("branchId.id", "=", 2)),
        (
            "dateUpdated > '2026-11-01T10:00:00'",
            Comparison("dateUpdated", ">", "2026-11-01T10:00:00"),
        ),
    ],
)
def test_predicates(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_fields_lists_every_field_named() -> None:
    tree = parse("a = 1 AND (NOT b LIKE 'x' OR c IS NULL) AND d IN (1)")
    assert list(fields(tree)) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("name =", 6),
        ("name 'x'", 5),
        ("= 'x'", 0),
        ("name = 'x", 7),
        ("name = 'x' AND", 14),
        ("(name = 'x'", 11),
        ("name = 'x')", 10),
        ("a..b = 1", 0),
        ("1 = 1", 0),
        ("name LIKE 5", 10),
        ("name == 'x'", 6),
        ("name = 12abc", 9),
        ('name = "x"', 7),
    ],
)
def test_syntax_errors_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(WhereSyntaxError) as caught:
        parse(text)
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(WhereSyntaxError, match="nested too deeply"):
        parse("(" * 200 + "a = 1" + ")" * 200)


def test_compiled_sql_holds_placeholders_only() -> None:
    text = "name = 'x'' OR 1=1 --' AND extId LIKE 'A%' OR id IN (1, 2) AND c IS NOT NULL"
    fragment = compile_where(parse(text), JsonColumns())
    assert "'" not in fragment.sql
    assert "1=1" not in fragment.sql
    assert fragment.sql.count("?") == len(fragment.params)
    assert "x' OR 1=1 --" in fragment.params
    assert "$.name" in fragment.params


def test_comparison_with_null_becomes_is_null() -> None:
    assert "IS NULL" in compile_where(parse("a = null"), JsonColumns()).sql
    assert "IS NOT NULL" in compile_where(parse("a != null"), JsonColumns()).sql


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    store = Store(str(tmp_path / "ssm.sqlite"))
    for n in range(3):
        store.create(
            "accounts",
            {"name": f"Client {n}", "branchId": 1, "salesRepId1": 1, "extId": f"D1:{n}"},
        )
    return store


@pytest.mark.parametrize(
    "attack",
    [
        "name = 'x' OR 1=1; DROP TABLE records --",
        "name = 'x'; DELETE FROM records",
        "name = 'x' UNION SELECT data FROM records",
        "name') OR 1=1 --",
        "json_extract(data, '$.name') = 'x'",
    ],
)
def test_injection_attempts_are_refused(store: Store, attack: str) -> None:
    with pytest.raises(ApiError) as caught:
        store.page("accounts", where=attack)
    assert caught.value.status == 400
    assert store.page("accounts")[1] == 3


@pytest.mark.parametrize(
    "attack",
    [
        "name = 'x'' OR 1=1; DROP TABLE records; --'",
        "name = '''); DELETE FROM records; --'",
        "extId LIKE '%'' OR ''1''=''1'",
    ],
)
def test_sql_inside_a_string_is_only_a_value(store: Store, attack: str) -> None:
    records, total = store.page("accounts", where=attack)
    assert (records, total) == ([], 0)
    assert store.page("accounts")[1] == 3


def test_filters_run_against_the_store(store: Store) -> None:
    records, total = store.page("accounts", where="extId LIKE 'D1:%' AND NOT name = 'Client 1'")
    assert total == 2
    assert [r["name"] for r in records] == ["Client 0", "Client 2"]
    records, _ = store.page("accounts", where="branchId = 1 AND branchId.value = 'Siège'")
    assert len(records) == 3
    records, _ = store.page("accounts", where="(id = 1 OR id = 3) AND extId IS NOT NULL")
    assert [r["id"] for r in records] == [1, 3]
