"""A schema checked against the JSON Schema 2020-12 meta-schema, fast when it is valid.

jsonschema checks a schema against the meta-schema by walking seven vocabulary meta-schemas
joined with `allOf` and resolving a `$dynamicRef` at every subschema: about 11 ms for a
service schema. Most schemas are valid, so `meta_errors` first runs `_valid`, a direct
reading of the same meta-schema (formats are not asserted, as jsonschema does not without a
format checker), and only when that finds anything it cannot vouch for does it ask jsonschema,
which then gives the errors and their messages. `_valid` may turn a valid schema away (the
full check then finds nothing), but must never pass one the meta-schema rejects:
tests/core/test_metaschema.py compares the two on invalid and mutated schemas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

__all__ = ["meta_errors"]

_ANCHOR = re.compile(r"^[A-Za-z_][-A-Za-z0-9._]*$")
_ID = re.compile(r"^[^#]*#?$")
_TOO_DEEP = "the schema nests too deeply to be checked against the meta-schema"
_SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})


def meta_errors(schema: Any) -> Iterator[ValidationError]:
    """Each error of the schema against the 2020-12 meta-schema, as jsonschema reports it."""
    try:
        if _valid(schema):
            return
    except RecursionError:  # deeper than the quick check follows: jsonschema decides
        pass
    try:
        errors = list(_full().iter_errors(schema))
    except RecursionError:
        # jsonschema recurses about five frames per level of the schema: past Python's
        # stack, the schema is refused rather than passed unchecked.
        errors = [ValidationError(_TOO_DEEP, validator="gitconf", instance=schema)]
    yield from errors


@cache
def _full() -> Draft202012Validator:
    """The real meta-schema validator, built once: only invalid-looking schemas need it."""
    return Draft202012Validator(Draft202012Validator.META_SCHEMA)


def _valid(schema: Any) -> bool:
    """Whether the schema surely passes the meta-schema (False: ask jsonschema)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        check = _KEYWORDS.get(key) if isinstance(key, str) else None
        if check is not None and not check(value):
            return False
    return True


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _anchor(value: Any) -> bool:
    return isinstance(value, str) and _ANCHOR.search(value) is not None


def _id(value: Any) -> bool:
    return isinstance(value, str) and _ID.search(value) is not None


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _number(value: Any) -> bool:
    # Exact types: a bool is not a number to JSON Schema, and nothing else comes from a parser.
    return type(value) in (int, float)


def _count(value: Any) -> bool:
    # A float such as 2.0 is an integer to jsonschema too; leave that rare case to it.
    return type(value) is int and value >= 0


def _array(value: Any) -> bool:
    return isinstance(value, list)


def _schema_map(value: Any) -> bool:
    return isinstance(value, dict) and all(_valid(v) for v in value.values())


def _schema_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 1 and all(_valid(v) for v in value)


def _string_array(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and len(set(value)) == len(value)
    )


def _type(value: Any) -> bool:
    if isinstance(value, str):
        return value in _SIMPLE_TYPES
    return (
        isinstance(value, list)
        and len(value) >= 1
        and all(isinstance(v, str) and v in _SIMPLE_TYPES for v in value)
        and len(set(value)) == len(value)
    )


def _vocabulary(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, bool) for k, v in value.items()
    )


def _dependent_required(value: Any) -> bool:
    return isinstance(value, dict) and all(_string_array(v) for v in value.values())


def _dependencies(value: Any) -> bool:
    return isinstance(value, dict) and all(_valid(v) or _string_array(v) for v in value.values())


def _multiple_of(value: Any) -> bool:
    return _number(value) and value > 0


def _any(value: Any) -> bool:
    return True


# Every keyword the 2020-12 meta-schema and its vocabularies constrain; others are free.
_KEYWORDS: dict[str, Callable[[Any], bool]] = {
    # core
    "$id": _id,
    "$schema": _string,
    "$ref": _string,
    "$anchor": _anchor,
    "$dynamicRef": _string,
    "$dynamicAnchor": _anchor,
    "$vocabulary": _vocabulary,
    "$comment": _string,
    "$defs": _schema_map,
    # applicator
    "prefixItems": _schema_list,
    "items": _valid,
    "contains": _valid,
    "additionalProperties": _valid,
    "properties": _schema_map,
    "patternProperties": _schema_map,
    "dependentSchemas": _schema_map,
    "propertyNames": _valid,
    "if": _valid,
    "then": _valid,
    "else": _valid,
    "allOf": _schema_list,
    "anyOf": _schema_list,
    "oneOf": _schema_list,
    "not": _valid,
    # unevaluated
    "unevaluatedItems": _valid,
    "unevaluatedProperties": _valid,
    # validation
    "type": _type,
    "const": _any,
    "enum": _array,
    "multipleOf": _multiple_of,
    "maximum": _number,
    "exclusiveMaximum": _number,
    "minimum": _number,
    "exclusiveMinimum": _number,
    "maxLength": _count,
    "minLength": _count,
    "pattern": _string,
    "maxItems": _count,
    "minItems": _count,
    "uniqueItems": _boolean,
    "maxContains": _count,
    "minContains": _count,
    "maxProperties": _count,
    "minProperties": _count,
    "required": _string_array,
    "dependentRequired": _dependent_required,
    # meta-data
    "title": _string,
    "description": _string,
    "default": _any,
    "deprecated": _boolean,
    "readOnly": _boolean,
    "writeOnly": _boolean,
    "examples": _array,
    # format-annotation and content
    "format": _string,
    "contentEncoding": _string,
    "contentMediaType": _string,
    "contentSchema": _valid,
    # the root meta-schema's keywords of earlier drafts
    "definitions": _schema_map,
    "dependencies": _dependencies,
    "$recursiveAnchor": _anchor,
    "$recursiveRef": _string,
}
