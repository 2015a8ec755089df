"""Rule grammar: valid texts parse to the expected tree; invalid ones name the problem and its column."""

from __future__ import annotations

import pytest

from shared.alerts.parser import parse_condition
from shared.alerts.spec import build_channels, build_spec
from shared.alerts.tree import And, Comparison, Not, Operand, Or, RuleError, from_json, to_json, to_text

Z = Operand("zscore")
ABS_Z = Operand("zscore", absolute=True)

VALID = [
    ("z > 2", Comparison(Z, ">", 2.0)),
    ("|z| >= 2.5", Comparison(ABS_Z, ">=", 2.5)),
    ("abs(zscore) < 1", Comparison(ABS_Z, "<", 1.0)),
    ("ABS( Z ) <= 1e-1", Comparison(ABS_Z, "<=", 0.1)),
    ("z crosses above 2", Comparison(Z, "crosses above", 2.0)),
    ("z CROSSES BELOW -2", Comparison(Z, "crosses below", -2.0)),
    ("corr > .7", Comparison(Operand("correlation"), ">", 0.7)),
    ("p < 0.05", Comparison(Operand("adf_p"), "<", 0.05)),
    ("hl<=+30", Comparison(Operand("half_life"), "<=", 30.0)),
    (
        "|z| > 2 and correlation > 0.7 and adf_p < 0.05",
        And((Comparison(ABS_Z, ">", 2.0), Comparison(Operand("correlation"), ">", 0.7), Comparison(Operand("adf_p"), "<", 0.05))),
    ),
    # and binds tighter than or
    ("z > 2 or z < -2 and corr > 0.5", Or((Comparison(Z, ">", 2.0), And((Comparison(Z, "<", -2.0), Comparison(Operand("correlation"), ">", 0.5)))))),
    ("(z > 2 or z < -2) and corr > 0.5", And((Or((Comparison(Z, ">", 2.0), Comparison(Z, "<", -2.0))), Comparison(Operand("correlation"), ">", 0.5)))),
    ("not z > 1", Not(Comparison(Z, ">", 1.0))),
    ("not not (beta < 0)", Not(Not(Comparison(Operand("beta"), "<", 0.0)))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_rules_parse_to_the_expected_tree(text, expected):
    tree = parse_condition(text)
    assert tree == expected
    # the canonical text and the JSON form both round-trip to the same tree
    assert parse_condition(to_text(tree)) == tree
    assert from_json(to_json(tree)) == tree


INVALID = [
    # (text, column, words the message must contain)
    ("", 1, "empty"),
    ("z >", 4, "expected a number"),
    ("zz > 1", 1, "unknown field 'zz'"),
    ("z > 1 and", 10, "expected a metric field"),
    ("(z > 1", 7, "expected ')'"),
    ("z > 1)", 6, "unmatched ')'"),
    ("z crosses 2", 11, "'above' or 'below'"),
    ("z > 1 corr > 2", 7, "missing 'and'/'or'"),
    ("z == 1", 3, "not an operator"),
    ("z 1", 3, "expected a comparison"),
    ("|z > 1", 4, "closing '|'"),
    ("z > 1 # note", 7, "unexpected character '#'"),
    ("abs z > 1", 5, "'(' after abs"),
    ("z > abc", 5, "expected a number"),
    ("> 2", 1, "expected a metric field"),
    ("z > 1e999", 5, "finite"),
]


@pytest.mark.parametrize(("text", "column", "words"), INVALID, ids=[t or "<empty>" for t, _, _ in INVALID])
def test_invalid_rules_name_the_problem_and_column(text, column, words):
    with pytest.raises(RuleError) as info:
        parse_condition(text)
    assert info.value.position == column
    assert words in info.value.problem
    assert f"column {column}" in str(info.value)


JSON_INVALID = [
    ({"all": []}, "$.all", "non-empty list"),
    ({"all": [{"field": "z", "op": ">", "value": 1}, {"field": "q", "op": ">", "value": 1}]}, "$.all[1].field", "unknown field"),
    ({"any": [{"not": {"field": "z", "op": "=", "value": 1}}]}, "$.any[0].not.op", "op must be one of"),
    ({"field": "z", "op": ">", "value": "2"}, "$.value", "expected a number"),
    ({"field": "z", "op": ">", "value": 2, "abs": "yes"}, "$.abs", "true or false"),
    ({"field": "z", "all": []}, "$", "exactly one of"),
    ([1], "$", "expected an object"),
]


@pytest.mark.parametrize(("doc", "path", "words"), JSON_INVALID)
def test_invalid_json_conditions_name_the_json_path(doc, path, words):
    with pytest.raises(RuleError) as info:
        from_json(doc)
    assert info.value.path == path
    assert words in info.value.problem


def test_json_operators_accept_underscore_spelling():
    tree = from_json({"field": "corr", "op": "crosses_below", "value": 0.5})
    assert tree == Comparison(Operand("correlation"), "crosses below", 0.5)


SPEC_INVALID = [
    ("condition", {"trigger": "|z| > "}, "$.trigger", 7),
    ("condition", {"trigger": "z > 1", "clear": "z <"}, "$.clear", 4),
    ("condition", {}, "$.trigger", None),
    ("signal", {"entry": 2, "exit": 2.5}, "$.exit", None),
    ("signal", {"entry": 2, "exit": 0.5, "stop": 1.5}, "$.stop", None),
    ("signal", {"entry": -1, "exit": 0}, "$.entry", None),
    ("signal", {"entry": 2, "exit": 0.5, "gate": "corr >> 1"}, "$.gate", 7),
    ("signal", {"entry": 2, "exit": 0.5, "extra": 1}, "$", None),
    ("alarm", {}, "$.kind", None),
]


@pytest.mark.parametrize(("kind", "doc", "path", "column"), SPEC_INVALID)
def test_invalid_specs_name_path_and_column(kind, doc, path, column):
    with pytest.raises(RuleError) as info:
        build_spec(kind, doc)
    assert info.value.path == path
    assert info.value.position == column


@pytest.mark.parametrize(
    ("channels", "path"),
    [
        ([{"format": "json"}], "$.channels[0].url"),
        ([{"format": "log"}, {"format": "slack", "url": "ftp://x"}], "$.channels[1].url"),
        ([{"format": "telegram", "url": "https://api.telegram.org/botX/sendMessage"}], "$.channels[0].chat_id"),
        ([{"format": "xml", "url": "http://h/"}], "$.channels[0].format"),
        ([{"format": "json", "url": "http://h/", "secret_ref": "not a name"}], "$.channels[0].secret_ref"),
    ],
)
def test_invalid_channels_name_the_path(channels, path):
    with pytest.raises(RuleError) as info:
        build_channels(channels)
    assert info.value.path == path
