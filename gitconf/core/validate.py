"""Validate a merged config against its schema, each error mapped to the place that set the
offending value (file:line:col, key path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import jsonschema
from jsonschema import Draft202012Validator

from gitconf.core.evaluated import unevaluated_keys
from gitconf.core.fastcheck import surely_valid
from gitconf.core.model import KeyPath, Node, find, format_path, iter_leaves, to_plain
from gitconf.errors import Source

__all__ = ["LocatedError", "located_errors", "schema_errors"]


class LocatedError(NamedTuple):
    """One schema error at the place that set the value, with the keyword that failed."""

    source: Source
    key_path: str
    message: str
    keyword: str  # jsonschema's error.validator: "type", "required", "oneOf", ...


def schema_errors(
    validator: Draft202012Validator, tree: Node, value: Any | None = None
) -> Iterator[tuple[Source, str, str]]:
    """Each error of the tree's value against the schema: (where it was set, key path, message)."""
    for error in located_errors(validator, tree, value):
        yield error.source, error.key_path, error.message


def located_errors(
    validator: Draft202012Validator,
    tree: Node,
    value: Any | None = None,
    hidden: frozenset[Source] = frozenset(),
) -> Iterator[LocatedError]:
    """Each error of the tree's value against the schema, located, with its keyword.

    hidden: the sources of secrets (values decrypted from SOPS files). jsonschema's messages
    quote the value they are about, whole objects included; an error whose value holds a
    secret says only which keyword failed.
    """
    instance = to_plain(tree) if value is None else value
    if surely_valid(validator, instance):
        return
    for error in validator.iter_errors(instance):
        for found in _locate(error, tree):
            if hidden and _holds_secret(tree, tuple(error.absolute_path), hidden):
                found = found._replace(
                    message=f"the value fails the schema's {found.keyword!r} (not shown: it "
                    "holds a secret decrypted from an encrypted file)"
                )
            yield found


def _holds_secret(tree: Node, key_path: KeyPath, hidden: frozenset[Source]) -> bool:
    node, _ = find(tree, key_path)
    return any(leaf.source in hidden for _, leaf in iter_leaves(node))


def _locate(error: jsonschema.ValidationError, tree: Node) -> Iterator[LocatedError]:
    key_path: KeyPath = tuple(error.absolute_path)
    keyword = str(error.validator)
    node, covered = find(tree, key_path)
    if keyword in ("additionalProperties", "unevaluatedProperties") and node.kind == "map":
        extras = [k for k in _unexpected_keys(error) if k in node.value]
        if extras:
            for key in extras:
                yield LocatedError(
                    node.value[key].source,
                    format_path((*covered, key)),
                    f"{key!r} is not allowed here ({keyword} is false)",
                    keyword,
                )
            return
    name = error.instance
    if "propertyNames" in error.schema_path and node.kind == "map" and name in node.value:
        where = format_path((*covered, name))
        yield LocatedError(node.value[name].source, where, f"key {error.message}", keyword)
        return
    yield LocatedError(node.source, format_path(key_path), error.message, keyword)


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
    if error.validator == "unevaluatedProperties":
        # Which keys no subschema evaluated: gitconf's Validator says; any other validator's
        # error is located at the object, with jsonschema's message naming them.
        extras = unevaluated_keys(error) or []
    return extras
