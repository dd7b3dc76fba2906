"""Schema errors about a value that holds a secret never quote it (jsonschema's messages quote
the value they are about, whole objects included)."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from gitconf.core.merge import merge
from gitconf.core.model import leaves
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import located_errors

SCHEMA = Draft202012Validator(
    {"type": "object", "properties": {"db": {"type": "object", "maxProperties": 1}}}
)


def test_an_error_on_an_object_holding_a_secret_names_the_keyword_not_the_value() -> None:
    tree, _ = parse_yaml("base/payments.yaml", b"db:\n  password: hunter2-value\n  port: 5432\n")
    assert tree is not None
    secret = leaves(tree)["db.password"].source
    [plain] = list(located_errors(SCHEMA, tree))
    assert "hunter2-value" in plain.message  # what jsonschema says without secrets
    [hidden] = list(located_errors(SCHEMA, tree, hidden=frozenset({secret})))
    assert "hunter2-value" not in hidden.message
    assert "'maxProperties'" in hidden.message and hidden.key_path == "db"
    assert hidden.source == plain.source


def test_a_merge_conflict_names_kinds_and_places_never_values() -> None:
    base, _ = parse_yaml("base/a.yaml", b"db:\n  password: hunter2-value\n")
    over, _ = parse_yaml("environments/prod/a.yaml", b"db:\n  password: {x: 1}\n")
    assert base is not None and over is not None
    _, problems = merge(base, over)
    [problem] = problems
    assert "hunter2-value" not in str(problem)
    assert "a mapping here overlays a scalar set at base/a.yaml:2:13" in str(problem)
