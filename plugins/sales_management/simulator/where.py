"""The ``where=`` filter language of the Sales Management API, parsed safely and strictly.

An expression such as ``dateUpdated > '2026-11-01T10:00:00' AND extId LIKE 'ACME:%'`` is
parsed by a lark LALR(1) parser, from the grammar below, into a small syntax tree, and
compiled into an SQL fragment whose every value *and* every field path is a bound
parameter. Nothing the caller sends is ever pasted into SQL text.

Only what the public documentation promises is accepted: the operators ``=``, ``>``,
``LIKE`` (and ``NOT LIKE``, seen in real use), joined by ``AND`` and ``OR`` (``AND``
binds tighter), with single-quoted strings and numbers as values. ``>=``, ``<``, ``!=``,
``IN``, ``IS NULL``, ``NOT``, parentheses, ``true``/``false``/``null`` are refused, as a
real tenant may refuse them: a client relying on them would work here and fail there.
The lexer knows them, so that meeting one where the parser expected a documented word is
a :class:`WhereUnsupported` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedToken

Literal = str | int | float | bool | None

FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_EXPRESSION_LENGTH = 4000

_SQL_OPERATOR = {"=": "=", ">": ">"}
DOCUMENTED_COMPARATORS = frozenset(_SQL_OPERATOR)

#: the language (keywords are words of any case, see ``_word``)
GRAMMAR = r"""
?start: disjunction
?disjunction: conjunction (OR conjunction)*
?conjunction: predicate (AND predicate)*
?predicate: FIELD COMPARATOR (STRING | NUMBER)  -> comparison
          | FIELD [NOT] LIKE STRING               -> like

COMPARATOR: "=" | ">"
STRING: /'(?:[^']|'')*'/
NUMBER: /-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?/
FIELD: /[A-Za-z_][A-Za-z0-9_.]*/
%declare AND OR NOT LIKE IN IS NULL TRUE FALSE
%ignore /\s+/

// outside the language: named by the lexer, refused by the parser
UNDOCUMENTED_OPERATOR.2: "<=" | ">=" | "!=" | "<>" | "<"
LPAREN: "("
RPAREN: ")"
COMMA: ","
"""

_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "TRUE", "FALSE"})

#: an undocumented token is refused as such where the parser expected these terminals;
#: elsewhere it is a plain syntax error (``a = 1)``)
_UNDOCUMENTED = [
    ({"FIELD"}, {"LPAREN", "RPAREN", "NOT"}),  # a predicate: no NOT, no parentheses
    ({"COMPARATOR", "LIKE"}, {"UNDOCUMENTED_OPERATOR", "IN", "IS"}),  # after a field
    ({"LIKE"}, {"IN", "IS"}),  # after NOT
    ({"NUMBER"}, {"TRUE", "FALSE", "NULL"}),  # a compared value
]
#: what the parser expected, in words
_WORDS = {
    "FIELD": "a field name",
    "COMPARATOR": "=, >",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "$END": "end of expression",
}


class WhereSyntaxError(ValueError):
    """The ``where=`` expression is not valid; ``position`` is the 0-based offending offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


class WhereUnsupported(WhereSyntaxError):
    """Well-formed SQL-like syntax the API does not document (``>=``, ``IN``, ``IS NULL``...)."""


# --- syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    field: str
    operator: str
    value: Literal


@dataclass(frozen=True)
class Like:
    field: str
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Comparison | Like | And | Or


# --- parser ------------------------------------------------------------------------------


def _word(token: Token) -> Token:
    """A keyword in any case, or a field name (``a..b`` is neither)."""
    upper = token.upper()
    if upper in _KEYWORDS:
        return Token.new_borrow_pos(upper, upper, token)
    if FIELD_PATTERN.fullmatch(token) is None:
        raise WhereSyntaxError(f"invalid field name {str(token)!r}", token.start_pos or 0)
    return token


class _KeepUndocumented:
    """A post-lexer keeping the terminals no rule uses, so the lexer still names them."""

    always_accept = ("UNDOCUMENTED_OPERATOR", "LPAREN", "RPAREN", "COMMA")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


def _text(token: Token) -> str:
    return token[1:-1].replace("''", "'")


class _ToNodes(Transformer[Token, Node]):
    def comparison(self, items: list[Token]) -> Comparison:
        field, operator, value = items
        literal: Literal = _text(value) if value.type == "STRING" else _number(value)
        return Comparison(str(field), str(operator), literal)

    def like(self, items: list[Token | None]) -> Like:
        field, negated, _like, pattern = items
        assert field is not None and pattern is not None
        return Like(str(field), _text(pattern), negated is not None)

    def conjunction(self, items: list[Node | Token]) -> Node:
        return _fold(And, items)

    def disjunction(self, items: list[Node | Token]) -> Node:
        return _fold(Or, items)


def _number(token: Token) -> int | float:
    return float(token) if any(c in token for c in ".eE") else int(token)


def _fold(join: type[And] | type[Or], items: list[Node | Token]) -> Node:
    """``a AND b AND c`` as ``(a AND b) AND c``: both associate to the left."""
    node = items[0]
    for right in items[2::2]:
        assert not isinstance(node, Token) and not isinstance(right, Token)
        node = join(node, right)
    assert not isinstance(node, Token)
    return node


_PARSER = Lark(
    GRAMMAR,
    parser="lalr",
    lexer="basic",
    lexer_callbacks={"FIELD": _word},
    postlex=_KeepUndocumented(),
)
_PARSER.parse("a = 1")  # the lexer builds its scanner on first use: not in a request


def parse(text: str) -> Node:
    """Parse a ``where=`` expression into its syntax tree."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise WhereSyntaxError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", MAX_EXPRESSION_LENGTH
        )
    if not text.strip():
        raise WhereSyntaxError("empty expression", 0)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        raise _character_error(text, exc.pos_in_stream or 0) from None
    except UnexpectedToken as exc:
        raise _token_error(text, exc) from None
    return _ToNodes().transform(tree)


def _character_error(text: str, position: int) -> WhereSyntaxError:
    char = text[position]
    if char == "'":
        return WhereSyntaxError("unterminated string", position)
    return WhereSyntaxError(f"unexpected character {char!r}", position)


def _token_error(text: str, exc: UnexpectedToken) -> WhereSyntaxError:
    token = exc.token
    at_end = token.type == "$END"
    position = len(text) if at_end else (token.start_pos or 0)
    expected = set(exc.expected)
    if any(where <= expected and token.type in refused for where, refused in _UNDOCUMENTED):
        return WhereUnsupported(
            f"{str(token)!r} is not a documented where operator or value "
            "(documented: =, >, LIKE, AND, OR; quoted strings and numbers)",
            position,
        )
    words = ", ".join(_WORDS.get(name, name) for name in sorted(expected))
    found = "end of expression" if at_end else repr(str(token))
    return WhereSyntaxError(f"expected {words}, found {found}", position)


def fields(node: Node) -> Iterator[str]:
    """Every field name the expression mentions, in order of appearance."""
    match node:
        case And(left, right) | Or(left, right):
            yield from fields(left)
            yield from fields(right)
        case Comparison() | Like():
            yield node.field


# --- compiler ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlFragment:
    """SQL text holding only ``?`` placeholders, and the values bound to them."""

    sql: str
    params: tuple[Literal, ...] = ()


class FieldResolver(Protocol):
    """Knows how a resource stores its fields."""

    def expression(self, field: str) -> SqlFragment:
        """SQL expression reading ``field`` of the current row (paths bound as parameters)."""
        ...

    def literal(self, field: str, value: Literal) -> Literal:
        """``value`` as it must be compared with ``field`` (date forms, id strings...)."""
        ...


def compile_where(node: Node, resolver: FieldResolver) -> SqlFragment:
    """Compile a syntax tree into a parameterised SQL condition."""
    match node:
        case And(left, right) | Or(left, right):
            joiner = "AND" if isinstance(node, And) else "OR"
            a, b = compile_where(left, resolver), compile_where(right, resolver)
            return SqlFragment(f"({a.sql} {joiner} {b.sql})", a.params + b.params)
        case Comparison(field, operator, value):
            column = resolver.expression(field)
            value = resolver.literal(field, value)
            sql = f"({column.sql} {_SQL_OPERATOR[operator]} ?)"
            return SqlFragment(sql, (*column.params, value))
        case Like(field, pattern, negated):
            column = resolver.expression(field)
            keyword = "NOT LIKE" if negated else "LIKE"
            return SqlFragment(f"({column.sql} {keyword} ?)", (*column.params, pattern))
    raise TypeError(f"not a where node: {node!r}")
