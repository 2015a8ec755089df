"""Tokenizer and recursive-descent parser for the rule condition language (never ``eval``).

Grammar (keywords and field names are case-insensitive)::

    condition  := or_expr END
    or_expr    := and_expr { "or" and_expr }
    and_expr   := unary { "and" unary }
    unary      := "not" unary | atom
    atom       := "(" or_expr ")" | comparison
    comparison := operand ( cmp number | "crosses" ( "above" | "below" ) number )
    operand    := field | "|" field "|" | "abs" "(" field ")"
    cmp        := ">" | ">=" | "<" | "<="
    number     := [ "+" | "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ]

``field`` is a metric field or alias (``shared.alerts.fields``). Example:
``|z| > 2 and corr > 0.7 and adf_p < 0.05``. Errors carry the 1-based column of the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.alerts.tree import And, Comparison, Node, Not, Operand, Or, RuleError, make_field, make_value

MAX_RULE_LENGTH = 2000
MAX_DEPTH = 50

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<cmp>>=|<=|>|<)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()|])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "crosses", "above", "below", "abs"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | cmp | name | keyword | punct | end
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None and text[pos] in "=!":
            raise RuleError(
                f"{text[pos]!r} is not an operator: use >, >=, <, <=, crosses above or crosses below",
                position=pos + 1,
            )
        if match is None:
            raise RuleError(f"unexpected character {text[pos]!r}", position=pos + 1)
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "name" and value.lower() in _KEYWORDS:
            tokens.append(Token("keyword", value.lower(), pos + 1))
        elif kind != "space":
            tokens.append(Token(kind, value, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _describe(token: Token) -> str:
    return "the end of the rule" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self.advance()
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise RuleError(f"expected {what}, found {_describe(self.current)}", position=self.current.column)
        return token

    def parse(self) -> Node:
        node = self.or_expr()
        if self.current.kind != "end":
            token = self.current
            if token.text == ")":
                raise RuleError("unmatched ')'", position=token.column)
            hint = " (missing 'and'/'or'?)" if token.kind in ("name", "punct", "keyword", "number") else ""
            raise RuleError(f"unexpected {_describe(token)}{hint}", position=token.column)
        return node

    def or_expr(self) -> Node:
        terms = [self.and_expr()]
        while self.accept("keyword", "or"):
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Node:
        terms = [self.unary()]
        while self.accept("keyword", "and"):
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def unary(self) -> Node:
        if self.accept("keyword", "not"):
            return Not(self.nested(self.unary))
        return self.atom()

    def nested(self, parse_fn) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"the rule nests deeper than {MAX_DEPTH} levels", position=self.current.column)
        try:
            return parse_fn()
        finally:
            self.depth -= 1

    def atom(self) -> Node:
        if self.accept("punct", "("):
            node = self.nested(self.or_expr)
            self.expect("punct", ")", "')'")
            return node
        return self.comparison()

    def operand(self) -> Operand:
        token = self.current
        if self.accept("punct", "|"):
            field = self.field()
            self.expect("punct", "|", "a closing '|'")
            return Operand(field, True)
        if self.accept("keyword", "abs"):
            self.expect("punct", "(", "'(' after abs")
            field = self.field()
            self.expect("punct", ")", "')'")
            return Operand(field, True)
        if token.kind == "name":
            return Operand(self.field(), False)
        raise RuleError(f"expected a metric field, '|field|' or '(', found {_describe(token)}", position=token.column)

    def field(self) -> str:
        token = self.current
        if token.kind != "name":
            raise RuleError(f"expected a metric field, found {_describe(token)}", position=token.column)
        self.advance()
        return make_field(token.text, position=token.column)

    def comparison(self) -> Comparison:
        operand = self.operand()
        token = self.current
        if self.accept("cmp"):
            op = token.text
        elif self.accept("keyword", "crosses"):
            direction = self.current
            if not (self.accept("keyword", "above") or self.accept("keyword", "below")):
                raise RuleError(
                    f"expected 'above' or 'below' after 'crosses', found {_describe(direction)}",
                    position=direction.column,
                )
            op = f"crosses {direction.text}"
        else:
            raise RuleError(
                f"expected a comparison (>, >=, <, <=, crosses above, crosses below) after "
                f"{operand.text()!r}, found {_describe(token)}",
                position=token.column,
            )
        number = self.current
        if number.kind != "number":
            raise RuleError(f"expected a number after {op!r}, found {_describe(number)}", position=number.column)
        self.advance()
        return Comparison(operand, op, make_value(float(number.text), position=number.column))  # type: ignore[arg-type]


def parse_condition(text: str) -> Node:
    """Parse a condition; raise ``RuleError`` with the column of the problem."""
    if not isinstance(text, str):
        raise RuleError(f"expected a rule text, got {type(text).__name__}")
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"the rule is longer than {MAX_RULE_LENGTH} characters", position=MAX_RULE_LENGTH + 1)
    if not text.strip():
        raise RuleError("the rule is empty", position=1)
    return _Parser(tokenize(text)).parse()
