"""The ``where=`` filter language of the Sales Management API, parsed safely and strictly.

An expression such as ``dateUpdated > '2026-11-01T10:00:00' AND extId LIKE 'ACME:%'`` is
tokenised, parsed by recursive descent into a small syntax tree and compiled into an SQL
fragment whose every value *and* every field path is a bound parameter. Nothing the
caller sends is ever pasted into SQL text.

Only what the public documentation promises is accepted: the operators ``=``, ``>``,
``LIKE`` (and ``NOT LIKE``, seen in real use), joined by ``AND`` and ``OR`` (``AND``
binds tighter), with single-quoted strings and numbers as values. ``>=``, ``<``, ``!=``,
``IN``, ``IS NULL``, ``NOT``, parentheses, ``true``/``false``/``null`` are refused, as a
real tenant may refuse them: a client relying on them would work here and fail there.

Grammar (keywords are case-insensitive)::

    expression  := conjunction ("OR" conjunction)*
    conjunction := predicate ("AND" predicate)*
    predicate   := FIELD ("=" | ">") literal
                 | FIELD ["NOT"] "LIKE" STRING
    literal     := STRING | NUMBER
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

Literal = str | int | float | bool | None

FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_EXPRESSION_LENGTH = 4000

_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "TRUE", "FALSE"})
_COMPARATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SQL_OPERATOR = {"=": "=", ">": ">"}
DOCUMENTED_COMPARATORS = frozenset(_SQL_OPERATOR)


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


# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # FIELD, KEYWORD, STRING, NUMBER, OP, LPAREN, RPAREN, COMMA, END
    text: str
    position: int
    value: Literal = None


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; anything outside the language is a syntax error."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise WhereSyntaxError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", MAX_EXPRESSION_LENGTH
        )
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "'":
            tokens.append(_string_token(text, i))
            i += len(tokens[-1].text)
        elif char == "(":
            tokens.append(Token("LPAREN", char, i))
            i += 1
        elif char == ")":
            tokens.append(Token("RPAREN", char, i))
            i += 1
        elif char == ",":
            tokens.append(Token("COMMA", char, i))
            i += 1
        elif (number := _NUMBER.match(text, i)) is not None and (
            char != "-" or not tokens or tokens[-1].kind in ("OP", "LPAREN", "COMMA")
        ):
            i = number.end()
            if i < len(text) and (text[i].isalnum() or text[i] in "_."):
                raise WhereSyntaxError(f"malformed number {text[number.start() : i + 1]!r}", i)
            raw = number.group()
            value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("NUMBER", raw, number.start(), value))
        elif (word := _WORD.match(text, i)) is not None:
            tokens.append(_word_token(word.group(), i))
            i = word.end()
        else:
            operator = next((op for op in _COMPARATORS if text.startswith(op, i)), None)
            if operator is None:
                raise WhereSyntaxError(f"unexpected character {char!r}", i)
            tokens.append(Token("OP", operator, i))
            i += len(operator)
    tokens.append(Token("END", "", len(text)))
    return tokens


def _string_token(text: str, start: int) -> Token:
    parts: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if text.startswith("''", i):
                parts.append("'")
                i += 2
                continue
            return Token("STRING", text[start : i + 1], start, "".join(parts))
        parts.append(text[i])
        i += 1
    raise WhereSyntaxError("unterminated string", start)


def _word_token(word: str, position: int) -> Token:
    upper = word.upper()
    if upper in _KEYWORDS:
        literal: Literal = {"TRUE": True, "FALSE": False}.get(upper)
        return Token("KEYWORD", upper, position, literal)
    if FIELD_PATTERN.fullmatch(word) is None:
        raise WhereSyntaxError(f"invalid field name {word!r}", position)
    return Token("FIELD", word, position)


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "END":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.kind == "KEYWORD" and self.current.text in words

    def expect(self, kind: str, what: str) -> Token:
        if self.current.kind != kind:
            raise self.error(f"expected {what}")
        return self.advance()

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.error(f"expected {word}")
        self.advance()

    def error(self, message: str) -> WhereSyntaxError:
        token = self.current
        found = "end of expression" if token.kind == "END" else repr(token.text)
        return WhereSyntaxError(f"{message}, found {found}", token.position)

    def parse(self) -> Node:
        node = self.disjunction()
        if self.current.kind != "END":
            raise self.error("expected AND, OR or end of expression")
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.at_keyword("OR"):
            self.advance()
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.predicate()
        while self.at_keyword("AND"):
            self.advance()
            node = And(node, self.predicate())
        return node

    def predicate(self) -> Node:
        if self.current.kind in ("LPAREN", "RPAREN") or self.at_keyword("NOT"):
            raise self.unsupported()
        field = self.expect("FIELD", "a field name").text
        if self.current.kind == "OP":
            if self.current.text not in DOCUMENTED_COMPARATORS:
                raise self.unsupported()
            operator = self.advance().text
            return Comparison(field, operator, self.literal())
        negated = self.at_keyword("NOT")
        if negated:
            self.advance()
        if self.at_keyword("LIKE"):
            self.advance()
            pattern = self.expect("STRING", "a quoted LIKE pattern").value
            assert isinstance(pattern, str)
            return Like(field, pattern, negated)
        if self.at_keyword("IN", "IS"):
            raise self.unsupported()
        raise self.error("expected =, > or LIKE")

    def literal(self) -> Literal:
        token = self.current
        if token.kind in ("STRING", "NUMBER"):
            self.advance()
            return token.value
        if token.kind == "KEYWORD" and token.text in ("TRUE", "FALSE", "NULL"):
            raise self.unsupported()
        raise self.error("expected a quoted string or a number")

    def unsupported(self) -> WhereUnsupported:
        token = self.current
        return WhereUnsupported(
            f"{token.text!r} is not a documented where operator or value "
            "(documented: =, >, LIKE, AND, OR; quoted strings and numbers)",
            token.position,
        )


def parse(text: str) -> Node:
    """Parse a ``where=`` expression into its syntax tree."""
    tokens = tokenize(text)
    if tokens[0].kind == "END":
        raise WhereSyntaxError("empty expression", 0)
    return _Parser(tokens).parse()


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
