"""Three-valued evaluation of a condition tree against one metric and the previous operand values.

A comparison on a missing value (a metric that is not warm yet) is *unknown* (``None``), and the
connectives follow Kleene logic: ``false and unknown`` is false, ``true or unknown`` is true,
``not unknown`` is unknown. The state machines take no transition on an unknown result.

``crosses above v`` is true when the previous value was ``<= v`` and the current one is ``> v``
(``crosses below v``: previous ``>= v``, current ``< v``); without a previous value it is false.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.alerts.tree import And, Comparison, Node, Not, Operand, Or

Values = Mapping[str, float | None]


def operand_value(operand: Operand, values: Values) -> float | None:
    value = values.get(operand.field)
    if value is None:
        return None
    return abs(value) if operand.absolute else value


def operand_snapshot(operands: set[Operand] | frozenset[Operand], values: Values) -> dict[str, float | None]:
    """Current values of the operands that ``crosses`` will compare against next time."""
    return {op.key: operand_value(op, values) for op in operands}


def _compare(node: Comparison, values: Values, previous: Mapping[str, float | None]) -> bool | None:
    current = operand_value(node.operand, values)
    if current is None:
        return None
    v = node.value
    match node.op:
        case ">":
            return current > v
        case ">=":
            return current >= v
        case "<":
            return current < v
        case "<=":
            return current <= v
        case "crosses above":
            before = previous.get(node.operand.key)
            return before is not None and before <= v < current
        case "crosses below":
            before = previous.get(node.operand.key)
            return before is not None and before >= v > current
    raise AssertionError(f"unhandled operator {node.op!r}")  # the tree is validated; unreachable


def evaluate(node: Node, values: Values, previous: Mapping[str, float | None] | None = None) -> bool | None:
    previous = previous or {}
    if isinstance(node, Comparison):
        return _compare(node, values, previous)
    if isinstance(node, Not):
        inner = evaluate(node.term, values, previous)
        return None if inner is None else not inner
    if isinstance(node, And):
        unknown = False
        for term in node.terms:
            result = evaluate(term, values, previous)
            if result is False:
                return False
            unknown |= result is None
        return None if unknown else True
    if isinstance(node, Or):
        unknown = False
        for term in node.terms:
            result = evaluate(term, values, previous)
            if result is True:
                return True
            unknown |= result is None
        return None if unknown else False
    raise AssertionError(f"not a condition node: {node!r}")
