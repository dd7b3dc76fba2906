"""Bundled service schemas validate exactly as the schemas resolved through the registry do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gitconf.core.compile import compile_fileset
from gitconf.core.evaluated import Validator
from gitconf.core.model import FileSet
from gitconf.core.parse import parse_yaml
from gitconf.core.schemas import SchemaCache, load_schemas
from gitconf.core.validate import schema_errors

DEFS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "host": {"type": "string", "pattern": "^[a-z.]+$"},
        "region": {"enum": ["us", "eu"]},
        "regions": {"type": "array", "items": {"$ref": "#/$defs/region"}, "uniqueItems": True},
        "alias": {"$ref": "#/$defs/port", "description": "a chained $ref"},
        "never": False,
        "tree": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"$ref": "#/$defs/host"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/tree"}},
            },
        },
        "named": {"$anchor": "named", "type": "string", "minLength": 2},
        "strict": {"type": "object", "properties": {"a": {"$ref": "#/$defs/port"}}},
    },
}
OBJ = {"$id": "https://example.com/obj.json", "type": "object", "required": ["k"]}
PROPERTIES = {
    "port": {"$ref": "_common/defs.json#/$defs/port"},
    "host": {"$ref": "_common/defs.json#/$defs/host", "description": "where", "default": "x"},
    "regions": {"$ref": "_common/defs.json#/$defs/regions"},
    "alias": {"$ref": "_common/defs.json#/$defs/alias"},
    "never": {"$ref": "_common/defs.json#/$defs/never"},
    "tree": {"$ref": "_common/defs.json#/$defs/tree"},
    "named": {"$ref": "_common/defs.json#named"},
    "whole": {"$ref": "_common/obj.json"},
    "by_id": {"$ref": "https://example.com/obj.json"},
    "keys": {"type": "object", "propertyNames": {"$ref": "_common/defs.json#/$defs/host"}},
    "mixed": {
        "allOf": [{"$ref": "_common/defs.json#/$defs/strict"}],
        "properties": {"b": {}},
        "unevaluatedProperties": False,
    },
    "local": {"$ref": "#/$defs/own"},
}
BUNDLED = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": PROPERTIES,
    "$defs": {"own": {"items": {"$ref": "_common/defs.json#/$defs/port"}}},
}
SIBLING = {**BUNDLED, "properties": {**PROPERTIES, "low": {"$ref": "#/$defs/own", "minItems": 2}}}
ROOT_REF = {"$ref": "_common/defs.json#/$defs/strict", "properties": {"b": {"type": "string"}}}
FILES = {
    "schemas/_common/defs.json": DEFS,
    "schemas/_common/obj.json": OBJ,
    "schemas/bundled.schema.json": BUNDLED,
    "schemas/sibling.schema.json": SIBLING,
    "schemas/rootref.schema.json": ROOT_REF,
}
INSTANCES: list[Any] = [
    {"port": 80, "host": "a.b", "regions": ["us"], "tree": {"name": "x", "children": []}},
    {"port": 0, "host": "A", "regions": ["us", "us", "mars"], "alias": "80", "never": 1},
    {"tree": {"name": "x", "children": [{"name": "Y", "children": [{"bad": 1}]}, 3]}},
    {"named": "x", "whole": {}, "by_id": {"k": 1}, "keys": {"ok": 1, "NOT OK": 2}},
    {"mixed": {"a": 0, "b": 1, "c": 2}, "local": [1, 0, "x"], "low": [1], "extra": True},
    {"a": "x", "b": 3, "c": 4},
    [],
]


def encoded(files: dict[str, Any]) -> dict[str, bytes]:
    return {path: json.dumps(value, indent=2).encode() for path, value in files.items()}


def registry_validator(path: str, files: dict[str, Any]) -> Draft202012Validator:
    """A validator built the way gitconf built them before bundling (its Validator class,
    whose unevaluatedProperties errors name their keys)."""
    resources = [
        (f"file:///{p}", Resource.from_contents(v, default_specification=DRAFT202012))
        for p, v in files.items()
    ]
    resources.append(("https://example.com/obj.json", Resource.from_contents(OBJ, DRAFT202012)))
    schema = {**files[path], "$id": f"file:///{path}"}
    validator: Draft202012Validator = Validator(
        schema, registry=Registry().with_resources(resources)
    )
    return validator


def details(errors: Any) -> list[tuple[Any, ...]]:
    return [
        (list(e.absolute_path), list(e.absolute_schema_path), e.message, e.validator)
        for e in errors
    ]


@pytest.mark.parametrize("service", ["bundled", "sibling", "rootref"])
def test_errors_equal_those_of_the_registry(service: str) -> None:
    schemas, problems = load_schemas(encoded(FILES))
    assert problems == []
    path = f"schemas/{service}.schema.json"
    ours, theirs = schemas.validators[service], registry_validator(path, FILES)
    for instance in INSTANCES:
        expected = details(theirs.iter_errors(instance))
        assert details(ours.iter_errors(instance)) == expected
        if not isinstance(instance, dict):
            continue
        tree, _ = parse_yaml("base/x.yaml", json.dumps(instance, indent=1).encode())
        assert tree is not None
        expected_located = list(schema_errors(theirs, tree))
        assert list(schema_errors(ours, tree)) == expected_located
    assert any(details(theirs.iter_errors(i)) for i in INSTANCES)


def refs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for k, v in value.items() if k != "$defs" for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


def test_bundled_schema_keeps_only_refs_to_cycles_and_booleans() -> None:
    schemas, _ = load_schemas(encoded(FILES))
    assert refs_in(schemas.validators["bundled"].schema) == [
        "file:///schemas/_common/defs.json#/$defs/never",
        "file:///schemas/_common/defs.json#/$defs/tree",
    ]
    # A $ref beside other keywords, or at the root, is left to the registry.
    assert "#/$defs/own" in refs_in(schemas.validators["sibling"].schema)
    assert refs_in(schemas.validators["rootref"].schema) == ["_common/defs.json#/$defs/strict"]


def test_keys_follow_the_files_a_schema_read() -> None:
    cache = SchemaCache()
    files = dict(FILES, **{"schemas/plain.schema.json": {"type": "object"}})
    before, _ = load_schemas(encoded(files), cache=cache)
    changed = {**DEFS, "$defs": {**DEFS["$defs"], "port": {"type": "integer"}}}
    after, _ = load_schemas(encoded({**files, "schemas/_common/defs.json": changed}), cache=cache)
    assert before.keys["plain"] == after.keys["plain"]
    assert before.validators["plain"] is after.validators["plain"]
    assert before.keys["bundled"] != after.keys["bundled"]
    assert before.keys["sibling"] != after.keys["sibling"]
    again, _ = load_schemas(encoded(files), cache=cache)
    assert again.keys == before.keys


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"name": {"type": "string", "pattern": "("}}},
        {"type": "object", "patternProperties": {"[": {"type": "string"}}},
    ],
)
def test_a_pattern_that_is_no_regular_expression_is_a_problem_at_the_schema(
    schema: dict[str, Any],
) -> None:
    files = {
        "gitconf.yaml": b"version: 1\nenvironments:\n  production: {}\n",
        "schemas/api.schema.json": json.dumps(schema).encode(),
        "base/api.yaml": b"name: x\n",
    }
    result = compile_fileset(FileSet(files))
    assert result.revision is None
    [problem] = result.problems
    assert problem.render().startswith(
        "schemas/api.schema.json:1:1: cannot validate production/api: the schema (or one it "
        "refers to) has a pattern that is not a regular expression"
    )
