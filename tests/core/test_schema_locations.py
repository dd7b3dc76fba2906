"""JSON schemas are read with json.loads; a file is located (parsed as YAML) only for a problem."""

from __future__ import annotations

import pytest

from gitconf.core import schemas
from gitconf.core.schemas import load_schemas
from gitconf.errors import Source

GOOD = b'{"type": "object", "properties": {"a": {"$ref": "_common/d.json#/$defs/a"}}}'
COMMON = b'{"$defs": {"a": {"type": "string"}}}'
BAD = b"""{
  "type": "object",
  "properties": {
    "a": {"$ref": "_common/d.json#/$defs/missing"},
    "b": {"type": 5}
  }
}
"""


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = schemas.parse_yaml

    def counting(path: str, data: bytes):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(schemas, "parse_yaml", counting)
    return calls


def test_valid_json_schemas_are_not_parsed_as_yaml(parsed: list[str]) -> None:
    schemas, problems = load_schemas(
        {"schemas/api.schema.json": GOOD, "schemas/_common/d.json": COMMON}
    )
    assert problems == [] and "api" in schemas.validators
    assert parsed == []


def test_a_json_schema_with_problems_is_located_once(parsed: list[str]) -> None:
    _, problems = load_schemas({"schemas/api.schema.json": BAD, "schemas/_common/d.json": COMMON})
    assert [(p.source, p.key_path, p.message) for p in problems] == [
        (
            Source("schemas/api.schema.json", 5, 19),
            "properties.b.type",
            "invalid JSON Schema: 5 is not valid under any of the given schemas",
        ),
        (
            Source("schemas/api.schema.json", 4, 19),
            'properties.a["$ref"]',
            "$ref '_common/d.json#/$defs/missing' does not resolve",
        ),
    ]
    assert parsed == ["schemas/api.schema.json"]


def test_a_schema_referring_into_an_invalid_one_is_a_problem_not_a_crash() -> None:
    from gitconf.core.compile import compile_fileset
    from gitconf.core.model import FileSet

    files = {
        "gitconf.yaml": b"version: 1\nenvironments: {prod: {}}\n",
        "schemas/x.schema.json": b'{"type": "object", "properties": {"a": {"items": [1]}}}\n',
        "schemas/y.schema.json": b'{"type": "object", "properties": {"a": {"$ref": "x.schema.json#/properties/a"}}}\n',
        "base/x.yaml": b"a: [1]\n",
        "base/y.yaml": b"a: [1]\n",
    }
    result = compile_fileset(FileSet(files))
    assert result.revision is None
    rendered = [p.render() for p in result.problems]
    assert rendered[0].startswith(
        "schemas/x.schema.json:1:50: properties.a.items: invalid JSON Schema"
    )
    assert rendered[1].startswith(
        "schemas/y.schema.json:1:1: cannot validate prod/y: the schema refers to an invalid one"
    )
