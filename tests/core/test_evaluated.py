"""gitconf's Validator: unevaluatedProperties errors carry their keys, as jsonschema finds them."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gitconf.core.evaluated import Validator, unevaluated_keys
from gitconf.core.fastcheck import surely_valid
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import schema_errors

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "patternProperties": {"^x-": {}},
    "allOf": [{"properties": {"port": {"type": "integer"}}}],
    "anyOf": [{"properties": {"a": {}}, "required": ["a"]}, {"properties": {"b": {}}}],
    "if": {"required": ["kind"]},
    "then": {"properties": {"kind": {}, "size": {}}},
    "dependentSchemas": {"tls": {"properties": {"cert": {}}}},
    "$ref": "#/$defs/base",
    "$defs": {"base": {"properties": {"region": {}}}},
    "unevaluatedProperties": False,
}
# Keys whose reprs read like jsonschema's message: "'a' was unexpected", commas, quotes.
ODD_KEYS = ["it's", "a', 'b", "c' was unexpected", 'd"e', "f\\g", "é", "", " ", "1"]


def expected_message(keys: list[str]) -> str:
    """jsonschema's message for these unexpected keys (sorted, by repr)."""
    verb = "was" if len(keys) == 1 else "were"
    joined = ", ".join(repr(k) for k in sorted(keys))
    return f"Unevaluated properties are not allowed ({joined} {verb} unexpected)"


def uneval_errors(instance: dict[str, Any], schema: dict[str, Any] = SCHEMA) -> list[Any]:
    return [
        e for e in Validator(schema).iter_errors(instance) if e.validator == "unevaluatedProperties"
    ]


@pytest.mark.parametrize(
    ("instance", "keys"),
    [
        ({"name": "n", "x-y": 1, "port": 1, "b": 1, "region": "r"}, []),
        ({"name": "n", "stray": 1}, ["stray"]),
        ({"a": 1, "b": 1}, []),  # anyOf: both branches hold, both evaluate
        ({"kind": "k", "size": 1}, []),  # then holds
        ({"size": 1}, ["size"]),  # if fails: then evaluates nothing
        ({"tls": 1, "cert": 1}, ["tls"]),  # dependentSchemas evaluates cert, not tls itself
        ({"cert": 1}, ["cert"]),
        ({k: 1 for k in ODD_KEYS}, ODD_KEYS),
    ],
)
def test_the_error_names_exactly_the_unevaluated_keys(
    instance: dict[str, Any], keys: list[str]
) -> None:
    errors = uneval_errors(instance)
    if not keys:
        assert errors == []
        return
    [error] = errors
    assert sorted(unevaluated_keys(error) or []) == sorted(keys)
    assert error.message == expected_message(keys)
    assert [list(sub.absolute_path) for sub in error.context] == [
        [k] for k in unevaluated_keys(error) or []
    ]


def test_a_schema_valued_keyword_names_the_keys_that_fail_it() -> None:
    schema = {"properties": {"a": {}}, "unevaluatedProperties": {"type": "integer"}}
    [error] = Validator(schema).iter_errors({"a": "x", "b": 1, "c": "no", "d": "nor"})
    assert sorted(unevaluated_keys(error) or []) == ["c", "d"]


def test_keys_agree_with_jsonschemas_message_on_random_objects() -> None:
    """A differential test: for random objects, the keys found by halves are exactly those
    jsonschema lists, and the errors are jsonschema's own otherwise."""
    draw = random.Random(12)
    names = ["name", "x-a", "port", "a", "b", "kind", "size", "tls", "cert", "region", *ODD_KEYS]
    names += [f"k{i}" for i in range(20)]
    for _ in range(300):
        instance = {k: draw.choice([1, "s"]) for k in draw.sample(names, draw.randint(0, 25))}
        ours = list(Validator(SCHEMA).iter_errors(instance))
        theirs = list(Draft202012Validator(SCHEMA).iter_errors(instance))
        assert [(e.message, list(e.absolute_path), e.validator) for e in ours] == [
            (e.message, list(e.absolute_path), e.validator) for e in theirs
        ]
        for error in ours:
            if error.validator == "unevaluatedProperties":
                assert error.message == expected_message(unevaluated_keys(error) or [])


def test_a_plain_validators_error_has_no_keys() -> None:
    [error] = Draft202012Validator(SCHEMA).iter_errors({"stray": 1})
    assert unevaluated_keys(error) is None


def test_odd_keys_are_located_at_their_own_lines() -> None:
    # jsonschema's message was parsed for the keys: "it's" (shown with double quotes) and
    # "a', 'b" were never found, and "c' was unexpected" read as two keys.
    instance = {"name": "n", **{k: 1 for k in ODD_KEYS}}
    text = json.dumps(instance, indent=1)
    tree, _ = parse_yaml("base/x.yaml", text.encode())
    assert tree is not None
    errors = list(schema_errors(Validator(SCHEMA), tree))
    lines = {
        k: n + 1
        for n, line in enumerate(text.splitlines())
        for k in ODD_KEYS
        if line.startswith(f" {json.dumps(k)}:")
    }
    assert sorted((e[0].line, e[2]) for e in errors) == sorted(
        (lines[k], f"{k!r} is not allowed here (unevaluatedProperties is false)") for k in ODD_KEYS
    )


def test_the_fast_check_still_serves_gitconfs_validator() -> None:
    validator = Validator({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert surely_valid(validator, {"a": 1})
