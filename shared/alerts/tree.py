"""The validated condition tree (frozen dataclasses), its canonical text and its JSON form.

JSON form (what ``spec`` stores and what the api accepts as an alternative to text)::

    {"all": [node, ...]}            # AND
    {"any": [node, ...]}            # OR
    {"not": node}
    {"field": "z", "abs": true, "op": ">", "value": 2}
    {"field": "z", "op": "crosses above", "value": 2}

``op`` is one of ``>``, ``>=``, ``<``, ``<=``, ``crosses above``, ``crosses below``. ``abs`` is
optional (default false). Field names accept the aliases of ``shared.alerts.fields``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from shared.alerts.fields import canonical_field, known_names
from shared.errors import InvalidInput

CompareOp = Literal[">", ">=", "<", "<=", "crosses above", "crosses below"]
COMPARE_OPS: tuple[str, ...] = (">", ">=", "<", "<=", "crosses above", "crosses below")
CROSS_OPS = ("crosses above", "crosses below")


class RuleError(InvalidInput):
    """An invalid rule: says what is wrong and where (text column, 1-based, or JSON path)."""

    def __init__(self, problem: str, *, position: int | None = None, path: str | None = None) -> None:
        self.problem = problem
        self.position = position
        self.path = path
        where = []
        if path is not None:
            where.append(f"at {path}")
        if position is not None:
            where.append(f"column {position}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)

    def under(self, prefix: str) -> RuleError:
        """The same error located inside a containing document (``prefix`` is a JSON path)."""
        path = prefix if self.path is None else prefix + self.path.removeprefix("$")
        return RuleError(self.problem, position=self.position, path=path)


@dataclass(frozen=True, slots=True)
class Operand:
    field: str  # canonical name
    absolute: bool = False

    @property
    def key(self) -> str:
        """Name under which the previous value is remembered for ``crosses``."""
        return f"|{self.field}|" if self.absolute else self.field

    def text(self) -> str:
        return f"|{self.field}|" if self.absolute else self.field


@dataclass(frozen=True, slots=True)
class Comparison:
    operand: Operand
    op: CompareOp
    value: float


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


Node = Comparison | And | Or | Not


def _number_text(value: float) -> str:
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def to_text(node: Node) -> str:
    """Canonical text that parses back to an equal tree."""
    if isinstance(node, Comparison):
        return f"{node.operand.text()} {node.op} {_number_text(node.value)}"
    if isinstance(node, Not):
        return f"not ({to_text(node.term)})"
    joiner = " and " if isinstance(node, And) else " or "
    return joiner.join(f"({to_text(t)})" if isinstance(t, And | Or) else to_text(t) for t in node.terms)


def to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Comparison):
        out: dict[str, Any] = {"field": node.operand.field, "op": node.op, "value": node.value}
        if node.operand.absolute:
            out["abs"] = True
        return out
    if isinstance(node, Not):
        return {"not": to_json(node.term)}
    key = "all" if isinstance(node, And) else "any"
    return {key: [to_json(t) for t in node.terms]}


def fields_of(node: Node) -> set[str]:
    if isinstance(node, Comparison):
        return {node.operand.field}
    if isinstance(node, Not):
        return fields_of(node.term)
    return set().union(*(fields_of(t) for t in node.terms))


def crossing_operands(node: Node) -> set[Operand]:
    """Operands whose previous value a ``crosses`` comparison needs."""
    if isinstance(node, Comparison):
        return {node.operand} if node.op in CROSS_OPS else set()
    if isinstance(node, Not):
        return crossing_operands(node.term)
    return set().union(*(crossing_operands(t) for t in node.terms))


def make_field(name: Any, *, path: str | None = None, position: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RuleError("a field name is required", path=path, position=position)
    field = canonical_field(name)
    if field is None:
        raise RuleError(f"unknown field {name!r}; known fields: {known_names()}", path=path, position=position)
    return field


def make_value(value: Any, *, path: str | None = None, position: int | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"expected a number, got {value!r}", path=path, position=position)
    if not math.isfinite(value):
        raise RuleError(f"the threshold must be finite, got {value!r}", path=path, position=position)
    return float(value)


_NODE_KEYS = ("all", "any", "not", "field")


def from_json(data: Any, path: str = "$") -> Node:
    """Validate a JSON condition into a tree; errors name the JSON path of the bad part."""
    if not isinstance(data, dict):
        raise RuleError(f"expected an object with one of {', '.join(_NODE_KEYS)}", path=path)
    kinds = [k for k in _NODE_KEYS if k in data]
    if len(kinds) != 1:
        raise RuleError(f"expected exactly one of {', '.join(_NODE_KEYS)}, got keys {sorted(data)}", path=path)
    kind = kinds[0]
    if kind in ("all", "any"):
        extra = set(data) - {kind}
        if extra:
            raise RuleError(f"unexpected keys {sorted(extra)}", path=path)
        items = data[kind]
        if not isinstance(items, list) or not items:
            raise RuleError("expected a non-empty list of conditions", path=f"{path}.{kind}")
        terms = tuple(from_json(item, f"{path}.{kind}[{i}]") for i, item in enumerate(items))
        if len(terms) == 1:
            return terms[0]
        return And(terms) if kind == "all" else Or(terms)
    if kind == "not":
        extra = set(data) - {"not"}
        if extra:
            raise RuleError(f"unexpected keys {sorted(extra)}", path=path)
        return Not(from_json(data["not"], f"{path}.not"))
    extra = set(data) - {"field", "op", "value", "abs"}
    if extra:
        raise RuleError(f"unexpected keys {sorted(extra)}; a comparison has field, op, value, abs", path=path)
    field = make_field(data["field"], path=f"{path}.field")
    op = data.get("op")
    if isinstance(op, str):
        op = " ".join(op.lower().replace("_", " ").split())
    if op not in COMPARE_OPS:
        raise RuleError(f"op must be one of {', '.join(COMPARE_OPS)}, got {data.get('op')!r}", path=f"{path}.op")
    if "value" not in data:
        raise RuleError("a comparison needs a numeric value", path=f"{path}.value")
    value = make_value(data["value"], path=f"{path}.value")
    absolute = data.get("abs", False)
    if not isinstance(absolute, bool):
        raise RuleError(f"abs must be true or false, got {absolute!r}", path=f"{path}.abs")
    return Comparison(Operand(field, absolute), op, value)
