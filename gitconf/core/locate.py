"""Schema errors mapped to the places that set the offending values (file:line:col, key path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from gitconf.core.fastcheck import surely_valid
from gitconf.core.model import KeyPath, Node, find, format_path, to_plain
from gitconf.errors import Source

__all__ = ["schema_errors"]


_UNEXPECTED = re.compile(
    r"'((?:[^'\\]|\\.)*)' (?:was|were) unexpected|'((?:[^'\\]|\\.)*)'(?:, |\))"
)


def schema_errors(
    validator: Draft202012Validator, tree: Node, value: Any | None = None
) -> Iterator[tuple[Source, str, str]]:
    """Each error of the tree's value against the schema: (where it was set, key path, message)."""
    instance = to_plain(tree) if value is None else value
    if surely_valid(validator, instance):
        return
    for error in validator.iter_errors(instance):
        yield from _locate(error, tree)


def _locate(error: jsonschema.ValidationError, tree: Node) -> Iterator[tuple[Source, str, str]]:
    key_path: KeyPath = tuple(error.absolute_path)
    node, covered = find(tree, key_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and node.kind == "map":
        extras = [k for k in _unexpected_keys(error) if k in node.value]
        if extras:
            for key in extras:
                yield (
                    node.value[key].source,
                    format_path((*covered, key)),
                    f"{key!r} is not allowed here ({error.validator} is false)",
                )
            return
    name = error.instance
    if "propertyNames" in error.schema_path and node.kind == "map" and name in node.value:
        yield node.value[name].source, format_path((*covered, name)), f"key {error.message}"
        return
    yield node.source, format_path(key_path), error.message


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
    if error.validator == "unevaluatedProperties":
        named = {a or b for a, b in _UNEXPECTED.findall(error.message)}
        extras = [k for k in instance if k in named]
    return extras
