"""The simulator's ``where=`` language: parsed into a tree, compiled to bound parameters only.

Only what the public documentation promises is accepted (``=``, ``>``, ``LIKE``, ``AND``,
``OR``, plus ``NOT LIKE`` seen in real use; quoted strings and numbers); the rest is
refused as ``WhereUnsupported``, which the API answers 400 with code 901.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dossiersync.plugins.sales_management.simulator.store import ApiError, Store
from dossiersync.plugins.sales_management.simulator.where import (
    MAX_EXPRESSION_LENGTH,
    And,
    Comparison,
    Like,
    Or,
    SqlFragment,
    WhereSyntaxError,
    WhereUnsupported,
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


def test_and_and_or_associate_to_the_left() -> None:
    assert parse("a = 1 AND b = 2 AND c = 3") == And(
        And(Comparison("a", "=", 1), Comparison("b", "=", 2)), Comparison("c", "=", 3)
    )
    assert parse("a = 1 OR b = 2 OR c = 3") == Or(
        Or(Comparison("a", "=", 1), Comparison("b", "=", 2)), Comparison("c", "=", 3)
    )


def test_keywords_are_case_insensitive() -> None:
    assert parse("a like 'x%' or b not like 'y' and c = 1") == Or(
        Like("a", "x%"), And(Like("b", "y", negated=True), Comparison("c", "=", 1))
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("extId LIKE 'ACME:%'", Like("extId", "ACME:%")),
        ("extId NOT LIKE 'A_C%'", Like("extId", "A_C%", negated=True)),
        ("name = 'O''Brien'", Comparison("name", "=", "O'Brien")),
        ("name = ''", Comparison("name", "=", "")),
        ("price > -1.5", Comparison("price", ">", -1.5)),
        ("price > 1e3", Comparison("price", ">", 1000.0)),
        ("stock = 0", Comparison("stock", "=", 0)),
        ("id > 12", Comparison("id", ">", 12)),
        ("branchId.id = 2", Comparison("branchId.id", "=", 2)),
        ("branchId.value = 'Siège'", Comparison("branchId.value", "=", "Siège")),
        (
            "dateUpdated > '2026-11-01T10:00:00.123Z'",
            Comparison("dateUpdated", ">", "2026-11-01T10:00:00.123Z"),
        ),
        ("  extId   =   'x'  ", Comparison("extId", "=", "x")),
    ],
)
def test_documented_predicates(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("price >= -1.5", 6),
        ("price < 3", 6),
        ("price <= 3", 6),
        ("stock != 0", 6),
        ("stock <> 0", 6),
        ("id IN (1, 2, 3)", 3),
        ("id NOT IN ('a')", 7),
        ("comment IS NULL", 8),
        ("comment IS NOT NULL", 8),
        ("NOT a = 1", 0),
        ("a = 1 AND NOT b LIKE 'x'", 10),
        ("(a = 1 OR b = 2) AND c = 3", 0),
        ("a = 1 AND (b = 2 OR c = 3)", 10),
        ("readOnly = true", 11),
        ("deleted = false", 10),
        ("typeId = null", 9),
        ("deleted = TRUE", 10),
    ],
)
def test_undocumented_syntax_is_refused_as_unsupported(text: str, position: int) -> None:
    with pytest.raises(WhereUnsupported) as caught:
        parse(text)
    assert caught.value.position == position
    assert "not a documented where operator" in str(caught.value)
    # an unsupported expression is a syntax error like any other (400 code 901)
    assert isinstance(caught.value, WhereSyntaxError)


def test_fields_lists_every_field_named() -> None:
    tree = parse("a = 1 AND b LIKE 'x' OR c NOT LIKE 'y' AND d > 2")
    assert list(fields(tree)) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("   ", 0),
        ("name =", 6),
        ("name 'x'", 5),
        ("= 'x'", 0),
        ("name = 'x", 7),
        ("name = 'x' AND", 14),
        ("name = 'x')", 10),
        ("a..b = 1", 0),
        ("1 = 1", 0),
        ("name LIKE 5", 10),
        ("name NOT = 5", 9),
        ("name == 'x'", 6),
        ("name = 12abc", 9),
        ('name = "x"', 7),
    ],
)
def test_syntax_errors_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(WhereSyntaxError) as caught:
        parse(text)
    assert not isinstance(caught.value, WhereUnsupported)
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name 'x'", "expected =, >, LIKE, NOT, found \"'x'\" at position 5"),
        ("name =", "expected a number, a quoted string, found end of expression at position 6"),
        ("name LIKE 5", "expected a quoted string, found '5' at position 10"),
        ("a = 'x' AND", "expected a field name, found end of expression at position 11"),
        ("a = 'x' b", "expected end of expression, AND, OR, found 'b' at position 8"),
        ("name = 'x", "unterminated string at position 7"),
        ('name = "x"', "unexpected character '\"' at position 7"),
        ("a..b = 1", "invalid field name 'a..b' at position 0"),
    ],
)
def test_syntax_errors_say_what_was_expected(text: str, words: str) -> None:
    with pytest.raises(WhereSyntaxError) as caught:
        parse(text)
    assert str(caught.value) == words


def test_the_documented_examples_parse() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "simulator.md").read_text("utf-8")
    block = page.split("`?where=` takes the documented language")[1].split("```")[1]
    examples = [line for line in block.splitlines() if line.strip()]
    assert len(examples) == 3
    for example in examples:
        assert set(fields(parse(example))) <= {"dateUpdated", "dateDeleted", "extId", "branchId"}


def test_overlong_expressions_are_refused() -> None:
    longest = " OR ".join(["a = 1"] * 400)
    assert len(longest) <= MAX_EXPRESSION_LENGTH
    fragment = compile_where(parse(longest), JsonColumns())
    assert fragment.sql.count("?") == len(fragment.params) == 800
    with pytest.raises(WhereSyntaxError, match="longer than"):
        parse("a = 1" + " " * MAX_EXPRESSION_LENGTH)


def test_compiled_sql_holds_placeholders_only() -> None:
    text = "name = 'x'' OR 1=1 --' AND extId LIKE 'A%' OR id > 2 AND c NOT LIKE 'z'"
    fragment = compile_where(parse(text), JsonColumns())
    assert "'" not in fragment.sql
    assert "1=1" not in fragment.sql
    assert fragment.sql.count("?") == len(fragment.params)
    assert "x' OR 1=1 --" in fragment.params
    assert "$.name" in fragment.params
    assert "NOT LIKE" in fragment.sql


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
    assert caught.value.message.startswith("901:")
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


@pytest.mark.parametrize(
    "where",
    ["id >= 1", "id IN (1, 2)", "extId IS NOT NULL", "NOT id = 1", "(id = 1)", "deleted = false"],
)
def test_the_store_answers_undocumented_syntax_with_901(store: Store, where: str) -> None:
    with pytest.raises(ApiError) as caught:
        store.page("accounts", where=where)
    assert caught.value.status == 400
    assert caught.value.message.startswith("901:")
    assert "not a documented where operator" in caught.value.message


def test_filters_run_against_the_store(store: Store) -> None:
    records, total = store.page("accounts", where="extId LIKE 'D1:%' AND name NOT LIKE 'Client 1'")
    assert total == 2
    assert [r["name"] for r in records] == ["Client 0", "Client 2"]
    records, _ = store.page("accounts", where="branchId = 1 AND branchId.value = 'Siège'")
    assert len(records) == 3
    records, _ = store.page("accounts", where="id = 1 AND extId LIKE 'D1:%' OR id = 3")
    assert [r["id"] for r in records] == [1, 3]
    records, _ = store.page("accounts", where="id > 1 AND extId = 'D1:2'")
    assert [r["id"] for r in records] == [3]
    records, _ = store.page("accounts", where="id > '1'")
    assert [r["id"] for r in records] == [2, 3]
