"""The quick check never vouches for a config that jsonschema rejects (differential test)."""

from __future__ import annotations

import copy
import importlib.util
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gitconf.core.compile import compile_fileset
from gitconf.core.fastcheck import surely_valid
from gitconf.core.model import FileSet, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.core.schemas import load_schemas
from gitconf.core.validate import schema_errors
from gitconf.git.read import fileset_from_dir
from gitconf.package_data import own_schema

ROOT = Path(__file__).resolve().parents[2]
SEED_VALUES: list[Any] = [
    *(0, 1, -1, 2, 65535, 65536, 10**9, -(10**9), 0.5, 2.0, -0.0, math.nan, math.inf),
    *("", "x", "ab", "ABC", "Abc", "a b", "a.b-c", "http://x", "x" * 300, "DEBUG", "info"),
    *(True, False, None, [], {}, [1], ["a", "a"], ["a", "b"], [1, True], {"a": 1}),
]


def _synth_fileset() -> FileSet:
    spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
    assert spec is not None and spec.loader is not None
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    files = synth.build_files(25, 2, 3)
    return FileSet({p: t.encode() for p, t in files.items()})


def _constants(schema: Any) -> Iterator[Any]:
    """Values near the schema's own limits: enum members, bounds and their neighbours."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("enum", "const"):
                yield from value if key == "enum" else [value]
            elif key in ("minimum", "maximum") and isinstance(value, (int, float)):
                yield from (value - 1, value, value + 1, float(value))
            elif key in ("minLength", "maxLength") and isinstance(value, int):
                yield from ("a" * max(value - 1, 0), "a" * value, "a" * (value + 1))
            else:
                yield from _constants(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _constants(value)


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _places(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _places(child, (*path, index))


def _mutate(rng: random.Random, value: Any, pool: list[Any]) -> Any:
    out = copy.deepcopy(value)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        places = list(_places(out))
        path = rng.choice(places[1:] or places)
        if not path:
            return rng.choice(pool)
        parent = out
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        move = rng.random()
        if move < 0.15 and isinstance(parent, dict):
            del parent[last]
        elif move < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["extra", "Bad Key", "zz_9", last + "_x"])] = rng.choice(pool)
        elif move < 0.3 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif move < 0.45:
            # Another value of the same config: right shape, maybe the wrong place.
            other = out
            for part in rng.choice(places):
                other = other[part]
            parent[last] = copy.deepcopy(other)
        else:
            parent[last] = copy.deepcopy(rng.choice(pool))
    return out


def _cases(files: FileSet) -> list[tuple[Draft202012Validator, Any]]:
    result = compile_fileset(files)
    assert result.revision is not None, result.problems[:3]
    schemas, problems = load_schemas({p: b for p, b in files.files.items() if "schemas/" in p})
    assert not problems
    manifest, _ = parse_yaml("gitconf.yaml", files.files["gitconf.yaml"])
    assert manifest is not None
    return [(Draft202012Validator(own_schema("manifest")), to_plain(manifest))] + [
        (schemas.validators[service], to_plain(config.tree))
        for (_, service), config in sorted(result.revision.configs.items())
    ]


@pytest.mark.parametrize("source", ["sample-repo", "synthetic"])
def test_quick_check_never_passes_what_jsonschema_rejects(source: str) -> None:
    files = fileset_from_dir(ROOT / "sample-repo") if source == "sample-repo" else _synth_fileset()
    rng = random.Random(7)
    counts = {"vouched": 0, "rejected": 0, "valid": 0}
    for validator, config in _cases(files):
        # The manifest's schema uses keywords the check leaves to jsonschema: soundness only.
        service = validator.schema is not own_schema("manifest")
        assert surely_valid(validator, config) or not service, "a valid config not vouched for"
        pool = SEED_VALUES + list(_constants(validator.schema))
        for _ in range(25):
            mutant = _mutate(rng, config, pool)
            valid = not any(True for _ in validator.iter_errors(mutant))
            vouched = surely_valid(validator, mutant)
            assert valid or not vouched, (mutant, validator.schema)
            counts["vouched"] += vouched and service
            counts["rejected"] += not valid
            counts["valid"] += valid and service
    # The mutations reach both verdicts, and the quick check vouches for most valid configs.
    assert counts["rejected"] >= 40 and counts["valid"] >= 40, counts
    assert counts["vouched"] > counts["valid"] * 0.8, counts


SCHEMAS: list[tuple[dict[str, Any], list[Any]]] = [
    ({"type": "integer"}, [1, 2.0, True, "1", None, 1.5]),
    ({"type": "number", "minimum": 0}, [0, -1, 0.0, -0.5, True, math.nan, "x"]),
    ({"type": ["string", "null"], "maxLength": 2}, ["ab", "abc", None, 1, False]),
    ({"enum": [1, "a", None, [1], {"a": True}]}, [1, 1.0, True, "a", None, [1], [True], {"a": 1}]),
    ({"const": False}, [False, 0, 0.0, None, []]),
    ({"maximum": 3, "exclusiveMinimum": 1}, [1, 2, 3, 3.5, "7", [], True]),
    ({"pattern": "^a", "minLength": 2}, ["ab", "a", "ba", 5, ["ab"]]),
    ({"uniqueItems": True}, [[], ["a", "b"], ["a", "a"], [1, True], [1, 1.0], [[1], [1]]]),
    ({"items": {"type": "string"}, "minItems": 1, "maxItems": 2}, [[], ["a"], ["a", 1], "a"]),
    (
        {
            "properties": {"a": {"type": "integer"}},
            "patternProperties": {"^x-": {"type": "string"}},
            "additionalProperties": False,
            "required": ["a"],
            "propertyNames": {"maxLength": 4},
        },
        [{"a": 1}, {"a": 1, "x-b": "s"}, {"a": 1, "x-b": 2}, {"a": 1, "b": 1}, {}, {"abcde": 1}],
    ),
    (
        {"additionalProperties": {"type": "boolean"}, "minProperties": 1},
        [{}, {"a": 1}, {"a": True}],
    ),
    ({"anyOf": [{"type": "string"}, {"minimum": 5}]}, ["a", 6, 4, True, None]),
    ({"allOf": [{"type": "integer"}, {"maximum": 5}]}, [4, 6, 4.0]),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, ["a", 1, None]),
    ({"not": {"type": "string"}}, ["a", 1]),
    ({"prefixItems": [{"type": "string"}], "items": False}, [["a"], ["a", 1], [1]]),
    ({"properties": {"a": False, "b": True}}, [{"a": 1}, {"b": 1}, {}]),
    ({"type": "object", "format": "whatever", "title": "t"}, [{}, 1]),
    ({"multipleOf": 3}, [3, 4]),
]


@pytest.mark.parametrize(("schema", "instances"), SCHEMAS)
def test_quick_check_agrees_on_edge_cases(schema: dict[str, Any], instances: list[Any]) -> None:
    validator = Draft202012Validator(schema)
    for instance in instances:
        valid = validator.is_valid(instance)
        assert valid or not surely_valid(validator, instance), (schema, instance)


def test_errors_are_jsonschemas_whether_or_not_the_check_is_sure() -> None:
    tree, _ = parse_yaml("c.yaml", b"a: 1\nb: x\n")
    assert tree is not None
    sure = Draft202012Validator({"properties": {"a": {"type": "integer"}}})
    assert list(schema_errors(sure, tree)) == []
    wrong = Draft202012Validator({"properties": {"b": {"type": "integer"}}, "multipleOf": 2})
    assert [m for _, _, m in schema_errors(wrong, tree)] == ["'x' is not of type 'integer'"]


def deep_list(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"const": deep_list(5000)}, deep_list(5000)),  # equal values compared level by level
        ({"enum": [deep_list(5000, 2)]}, deep_list(5000)),
        ({"type": "array"}, deep_list(100_000)),  # the check itself does not descend here
    ],
    ids=["const", "enum", "shallow-schema"],
)
def test_the_quick_check_never_raises_on_a_deep_value(
    schema: dict[str, Any], instance: Any
) -> None:
    validator = Draft202012Validator(schema)

    sure = surely_valid(validator, instance)

    # Deeper than it can follow, the check is unsure and leaves the answer to jsonschema.
    assert sure is (schema == {"type": "array"})


def test_the_quick_check_of_a_schema_too_deep_to_compile_is_unsure() -> None:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(5000):
        schema = {"allOf": [schema]}

    assert surely_valid(Draft202012Validator(schema), 1) is False
