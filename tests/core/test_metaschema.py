"""The fast meta-schema check reports exactly what jsonschema's 2020-12 meta-schema reports."""

from __future__ import annotations

import copy
import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gitconf.core.metaschema import _valid, meta_errors

ROOT = Path(__file__).resolve().parents[2]
REAL = Draft202012Validator(Draft202012Validator.META_SCHEMA)

INVALID: list[Any] = [
    {"type": 12},
    {"type": "text"},
    {"type": []},
    {"type": ["string", "string"]},
    {"properties": {"a": 12}},
    {"properties": []},
    {"items": "string"},
    {"items": [{"type": "string"}]},
    {"required": "a"},
    {"required": ["a", "a"]},
    {"required": [1]},
    {"minimum": "1"},
    {"maxLength": -1},
    {"minItems": 1.5},
    {"minLength": True},
    {"multipleOf": 0},
    {"allOf": []},
    {"anyOf": {"type": "string"}},
    {"enum": "a"},
    {"$id": "x#frag"},
    {"$anchor": "1bad"},
    {"$ref": 5},
    {"$defs": {"a": {"type": "nope"}}},
    {"additionalProperties": {"properties": {"b": {"minimum": "x"}}}},
    {"dependentRequired": {"a": ["b", "b"]}},
    {"dependencies": {"a": 3}},
    {"$vocabulary": {"https://example.com": "yes"}},
    {"uniqueItems": "true"},
    {"pattern": 5},
    {"examples": {}},
    {"deprecated": 1},
    {"not": None},
    {"prefixItems": []},
    {"$recursiveAnchor": True},
]


def synthetic_schemas() -> list[Any]:
    spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
    assert spec is not None and spec.loader is not None
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    files = synth.build_files(20, 2, 1)
    return [json.loads(text) for path, text in sorted(files.items()) if path.startswith("schemas/")]


def valid_schemas() -> list[Any]:
    found = [json.loads(p.read_text()) for p in sorted((ROOT / "sample-repo").rglob("*.json"))]
    found += [json.loads(p.read_text()) for p in sorted((ROOT / "schemas").rglob("*.json"))]
    return found + synthetic_schemas()


def messages(errors: Any) -> list[tuple[list[Any], str]]:
    return [(list(e.absolute_path), e.message) for e in errors]


@pytest.mark.parametrize("schema", INVALID, ids=[json.dumps(s) for s in INVALID])
def test_invalid_schema_gets_the_meta_schemas_errors(schema: Any) -> None:
    expected = messages(REAL.iter_errors(schema))
    assert expected, "the corpus holds only invalid schemas"
    assert messages(meta_errors(schema)) == expected


def test_valid_schemas_pass_fast() -> None:
    schemas = valid_schemas()
    assert len(schemas) > 20
    for schema in schemas:
        assert _valid(schema), schema
    for schema in schemas[::8]:
        assert not list(REAL.iter_errors(schema))


POOL: list[Any] = [12, -1, 0, 1.5, 2.0, "x", "string", "", "#a", True, False, None, [], {}]
POOL += [["a", "a"], ["a"], [1], [{}], {"a": 1}, {"type": "integer"}, {"type": 3}]


def nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += nodes(child, (*path, index))
    return found


def mutated(schema: Any, rng: random.Random) -> Any:
    copied = copy.deepcopy(schema)
    path = rng.choice(nodes(copied)[1:])
    parent = copied
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = copy.deepcopy(rng.choice(POOL))
    return copied


def test_mutated_schemas_agree_with_the_meta_schema() -> None:
    """The fast check never passes a schema the meta-schema rejects, and rarely defers."""
    rng = random.Random(7)
    schemas = [s for s in valid_schemas() if isinstance(s, dict) and len(s) > 1]
    deferred = 0
    for _ in range(150):
        schema = mutated(rng.choice(schemas), rng)
        real = messages(REAL.iter_errors(schema))
        if _valid(schema):
            assert real == [], schema
        else:
            deferred += not real
            assert messages(meta_errors(schema)) == real
    assert deferred < 15


@pytest.mark.parametrize("keyword", ["not", "items", "additionalProperties"])
def test_a_schema_too_deep_for_either_check_is_an_error_not_a_recursion_error(keyword: str) -> None:
    schema: Any = {"type": "string"}
    for _ in range(5000):
        schema = {keyword: schema}

    errors = list(meta_errors(schema))

    assert [(e.message, list(e.absolute_path)) for e in errors] == [
        ("the schema nests too deeply to be checked against the meta-schema", [])
    ]


def test_the_deepest_schema_gitconf_reads_is_checked_in_full() -> None:
    # 128 levels of JSON, the most a schema file may nest: the real meta-schema still follows.
    schema: Any = {"type": "strin"}
    for _ in range(63):
        schema = {"properties": {"a": schema}}

    errors = list(meta_errors(schema))

    assert [e.message for e in errors] == [m for _, m in messages(REAL.iter_errors(schema))]
    assert len(errors) == 1 and "is not valid under any of the given schemas" in errors[0].message
