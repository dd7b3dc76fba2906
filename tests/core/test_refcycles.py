"""Schemas that validation could never finish: `$ref` cycles, deep nesting, long numbers.

Each was an exception out of the compile ("internal error", no file:line); each is now a
problem at the schema file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitconf.core.compile import CompileResult, compile_fileset
from gitconf.core.model import FileSet
from gitconf.errors import Problem, Source
from gitconf.testing import MINIMAL_MANIFEST


def compile_schemas(schemas: dict[str, str | bytes], config: str = "a: 1\n") -> CompileResult:
    files: dict[str, bytes] = {
        "gitconf.yaml": MINIMAL_MANIFEST.encode(),
        "base/p.yaml": config.encode(),
    }
    for path, text in schemas.items():
        files[path] = text.encode() if isinstance(text, str) else text
    return compile_fileset(FileSet(files))


def only(result: CompileResult) -> Problem:
    assert result.revision is None
    assert len(result.problems) == 1, [p.render() for p in result.problems]
    return result.problems[0]


HINT = (
    "a $ref may come back to where it began only through properties, items or another "
    "keyword that descends into the value"
)


# -- $ref cycles --------------------------------------------------------------------------------
def test_a_schema_that_refers_to_itself_in_place() -> None:
    problem = only(compile_schemas({"schemas/p.schema.json": '{"$ref": "#"}'}))

    assert problem.source == Source("schemas/p.schema.json", 1, 10)
    assert problem.key_path == '["$ref"]'
    assert problem.render() == (
        'schemas/p.schema.json:1:10: ["$ref"]: a $ref cycle that never descends into the '
        "config, so validation would never end: schemas/p.schema.json# -> "
        f"schemas/p.schema.json# ({HINT})"
    )


CYCLE = """\
{
  "type": "object",
  "$ref": "#/$defs/a",
  "$defs": {
    "a": {"$ref": "#/$defs/b"},
    "b": {"anyOf": [{"type": "string"}, {"allOf": [{"$ref": "#/$defs/a"}]}]}
  }
}
"""


def test_a_cycle_through_in_place_keywords_names_its_chain() -> None:
    problem = only(compile_schemas({"schemas/p.schema.json": CYCLE}))

    assert problem.source == Source("schemas/p.schema.json", 6, 61)
    assert problem.key_path == '["$defs"].b.anyOf[1].allOf[0]["$ref"]'
    assert problem.message == (
        "a $ref cycle that never descends into the config, so validation would never end: "
        "schemas/p.schema.json#/$defs/b/anyOf/1/allOf/0 -> schemas/p.schema.json#/$defs/a "
        "-> schemas/p.schema.json#/$defs/b/anyOf/1/allOf/0"
    )
    assert problem.hint == HINT


def test_a_cycle_across_files() -> None:
    result = compile_schemas(
        {
            "schemas/p.schema.json": '{"$ref": "_common/x.json"}',
            "schemas/_common/x.json": '{"not": {"$ref": "../p.schema.json"}}',
        }
    )

    problem = only(result)
    assert problem.source is not None and problem.source.path in (
        "schemas/p.schema.json",
        "schemas/_common/x.json",
    )
    assert "schemas/p.schema.json#" in problem.message
    assert "schemas/_common/x.json#/not" in problem.message


LIST = {"type": "array", "items": {"$ref": "#/$defs/list"}}
TREE = {"anyOf": [{"type": "integer"}, {"additionalProperties": {"$ref": "#/$defs/tree"}}]}


@pytest.mark.parametrize(
    ("schema", "config"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#"}}}, "a: {a: {a: {}}}\n"),
        ({"properties": {"a": {"$ref": "#/$defs/list"}}, "$defs": {"list": LIST}}, "a: [[[]]]\n"),
        ({"$ref": "#/$defs/tree", "$defs": {"tree": TREE}}, "a: {b: {c: 1}}\n"),
    ],
    ids=["properties", "items", "additionalProperties"],
)
def test_a_recursive_schema_that_descends_is_fine(schema: dict[str, Any], config: str) -> None:
    result = compile_schemas({"schemas/p.schema.json": json.dumps(schema)}, config)

    assert result.problems == [], [p.render() for p in result.problems]


def test_a_service_that_leads_into_a_cycle_is_not_validated_as_well() -> None:
    result = compile_schemas(
        {
            "schemas/p.schema.json": '{"properties": {"a": {"$ref": "_common/loop.json"}}}',
            "schemas/_common/loop.json": '{"$ref": "#"}',
        }
    )

    problem = only(result)  # no "cannot validate", no "has no schema"
    assert problem.source == Source("schemas/_common/loop.json", 1, 10)


@pytest.mark.parametrize("at", ["root", "property"], ids=["at-the-root", "bundled"])
def test_a_chain_of_refs_too_long_to_follow_is_a_problem_at_the_schema(at: str) -> None:
    defs: dict[str, Any] = {f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(3000)}
    defs["a3000"] = {"type": "integer"}
    if at == "root":
        schema = json.dumps({"$ref": "#/$defs/a0", "$defs": defs})
    else:  # bundling inlines $refs beside nothing else: it recursed past the stack too
        schema = json.dumps({"properties": {"a": {"$ref": "#/$defs/a0"}}, "$defs": defs})

    result = compile_schemas({"schemas/p.schema.json": schema})

    assert result.revision is None
    assert {p.source for p in result.problems} == {Source("schemas/p.schema.json")}
    assert sorted(p.message.split(":")[0] for p in result.problems) == sorted(
        f"cannot validate {env}/p" for env in ("production", "production-eu", "staging")
    )
    assert "deeper than gitconf can follow" in result.problems[0].message


# -- nesting and numbers in schema files ----------------------------------------------------------
@pytest.mark.parametrize("depth", [129, 10_000])
def test_a_json_schema_nested_too_deeply_is_refused_where_it_passes_the_limit(depth: int) -> None:
    schema = '{"allOf": [' * (depth // 2) + "{}" + "]}" * (depth // 2)
    if depth % 2:
        schema = '{"not": ' + schema + "}"

    problem = only(compile_schemas({"schemas/p.schema.json": schema}))

    assert problem.source is not None and problem.source.path == "schemas/p.schema.json"
    assert problem.source.line == 1
    assert problem.message == "the document nests more than 128 levels of mappings and lists"
    assert problem.key_path.split(".")[-1] in ("allOf", "allOf[0]")


def test_a_json_schema_with_an_integer_too_long() -> None:
    schema = '{\n  "type": "integer",\n  "maximum": ' + "9" * 5000 + "\n}\n"

    problem = only(compile_schemas({"schemas/p.schema.json": schema}))

    assert problem.source == Source("schemas/p.schema.json", 3, 14)
    assert problem.key_path == "maximum"
    assert "is an integer of more than 4,300 decimal digits" in problem.message


def test_a_yaml_schema_nested_too_deeply() -> None:
    schema = "allOf: " + "[" * 200 + "]" * 200 + "\n"

    problem = only(compile_schemas({"schemas/p.schema.yaml": schema}))

    assert problem.source == Source("schemas/p.schema.yaml", 1, 8 + 127)
    assert "more than 128 levels" in problem.message
