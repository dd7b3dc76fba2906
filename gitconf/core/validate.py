"""JSON Schema 2020-12: load a repository's schemas once, check configs, map errors to sources."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from gitconf.core.model import KeyPath, Node, find, format_path, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.errors import Problem, Source

__all__ = ["SCHEMA_SUFFIXES", "SchemaSet", "load_schemas", "schema_errors"]

SCHEMA_SUFFIXES = (".schema.json", ".schema.yaml", ".schema.yml")
_BASE = "file:///"


@dataclass
class SchemaSet:
    """The validators of a repository's service schemas, built once per revision."""

    validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    trees: dict[str, Node] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # services whose schema has problems


def _load_document(path: str, data: bytes) -> tuple[Any, Node | None, list[Problem]]:
    """A schema file's contents and, where it parses as YAML, its located tree."""
    tree, problems = parse_yaml(path, data)
    if path.endswith(".json"):
        try:
            contents = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            message = getattr(exc, "msg", str(exc))
            return None, None, [Problem(Source(path, line, col), f"invalid JSON: {message}")]
        return contents, tree, []
    if tree is None:
        return None, None, problems
    return to_plain(tree), tree, []


def _service_of(path: str) -> str | None:
    name = path[len("schemas/") :]
    if "/" in name:
        return None
    for suffix in SCHEMA_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _where(tree: Node | None, path: str, key_path: KeyPath) -> Source:
    if tree is None:
        return Source(path)
    return find(tree, key_path)[0].source


def _refs(node: Node, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Node]]:
    if node.kind == "map":
        for key, child in node.value.items():
            if key == "$ref" and child.kind == "scalar" and isinstance(child.value, str):
                yield (*path, key), child
            else:
                yield from _refs(child, (*path, key))
    elif node.kind == "seq":
        for index, child in enumerate(node.value):
            yield from _refs(child, (*path, index))


def load_schemas(files: Mapping[str, bytes]) -> tuple[SchemaSet, list[Problem]]:
    """Check every file under schemas/ and build one validator per service schema."""
    problems: list[Problem] = []
    loaded: dict[str, tuple[Any, Node | None]] = {}
    broken: set[str] = set()
    for path in sorted(files):
        if not path.startswith("schemas/") or not path.endswith((".json", ".yaml", ".yml")):
            continue
        contents, tree, found = _load_document(path, files[path])
        problems += found
        if found or not isinstance(contents, (dict, bool)):
            if (service := _service_of(path)) is not None:
                broken.add(service)
            if not found:
                problems.append(Problem(Source(path), "a JSON Schema is an object or a boolean"))
            continue
        loaded[path] = (contents, tree)

    resources = []
    for path, (contents, _) in loaded.items():
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((_BASE + path, resource))
        if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
            resources.append((contents["$id"], resource))
    registry: Registry[Any] = Registry().with_resources(resources)

    schemas = SchemaSet(broken=broken)
    for path, (contents, tree) in loaded.items():
        bad = False
        for error in Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(contents):
            bad = True
            key_path = tuple(error.absolute_path)
            problems.append(
                Problem(
                    _where(tree, path, key_path),
                    f"invalid JSON Schema: {error.message}",
                    format_path(key_path),
                )
            )
        if tree is not None:
            resolver = registry.resolver(base_uri=_BASE + path)
            if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
                resolver = registry.resolver(base_uri=contents["$id"])
            for ref_path, ref in _refs(tree):
                try:
                    resolver.lookup(ref.value)
                except Unresolvable:
                    bad = True
                    problems.append(
                        Problem(
                            ref.source,
                            f"$ref {ref.value!r} does not resolve",
                            format_path(ref_path),
                            "refer to a file under schemas/ by relative path, "
                            "e.g. _common/db.json#/$defs/db",
                        )
                    )
        service = _service_of(path)
        if service is None:
            continue
        if bad:
            schemas.broken.add(service)
            continue
        if service in schemas.paths:
            problems.append(
                Problem(
                    Source(path), f"{schemas.paths[service]} is already the schema of {service!r}"
                )
            )
            continue
        schema = contents
        if isinstance(schema, dict) and "$id" not in schema:
            schema = {**schema, "$id": _BASE + path}
        schemas.validators[service] = Draft202012Validator(schema, registry=registry)
        schemas.paths[service] = path
        if tree is not None:
            schemas.trees[service] = tree
    return schemas, problems


_UNEXPECTED = re.compile(
    r"'((?:[^'\\]|\\.)*)' (?:was|were) unexpected|'((?:[^'\\]|\\.)*)'(?:, |\))"
)


def schema_errors(
    validator: Draft202012Validator, tree: Node, value: Any | None = None
) -> Iterator[tuple[Source, str, str]]:
    """Each error of the tree's value against the schema: (where it was set, key path, message)."""
    instance = to_plain(tree) if value is None else value
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
