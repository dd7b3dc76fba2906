"""A quick "surely valid" check of an instance against a bundled 2020-12 schema.

jsonschema creates a validator object for every subschema it descends into, about 1.4 ms
for a service config. Most configs are valid, so `surely_valid` first runs a checker compiled
once per validator from the keywords service schemas use (type, properties, required,
additionalProperties, patternProperties, propertyNames, items, enum, const, bounds, lengths,
pattern, uniqueItems of strings, allOf, anyOf). It answers True only when jsonschema would
find no error; anything it does not know (another keyword, a `$ref` left by bundling, a
float where an integer is asked for) answers False, and jsonschema then gives the errors and
their messages. tests/core/test_fastcheck.py compares the two on mutated configs.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from gitconf.core.evaluated import Validator

__all__ = ["surely_valid"]

Check = Callable[[Any], bool]

# Keywords that never make an instance invalid for a validator without a format checker.
_IGNORED = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "$anchor", "title", "description"}
    | {"default", "examples", "deprecated", "readOnly", "writeOnly", "format"}
)
_NON_NUMBERS = (str, dict, list, bool, type(None))
_TYPES: dict[str, Check] = {
    # Exact types where jsonschema's are wider (2.0 is an integer to it): unsure, not wrong.
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: type(x) is int,
    "number": lambda x: type(x) is int or type(x) is float,
    "boolean": lambda x: type(x) is bool,
    "null": lambda x: x is None,
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
}


def _yes(instance: Any) -> bool:
    return True


def _no(instance: Any) -> bool:
    return False


# Validators are unhashable attrs classes: checkers are kept by id, with a weak reference
# that says whether the id still names the same validator.
_CHECKS: dict[int, tuple[weakref.ref[Draft202012Validator], Check]] = {}


def surely_valid(validator: Draft202012Validator, instance: Any) -> bool:
    """Whether jsonschema would surely find no error (False: ask jsonschema)."""
    entry = _CHECKS.get(id(validator))
    if entry is None or entry[0]() is not validator:
        key = id(validator)
        ref = weakref.ref(validator, lambda _: _CHECKS.pop(key, None))
        entry = _CHECKS[key] = (ref, _checker(validator))
    try:
        return entry[1](instance)
    except RecursionError:  # deeper than the check can follow: unsure, jsonschema decides
        return False


def _checker(validator: Draft202012Validator) -> Check:
    # gitconf's Validator differs from Draft202012Validator only in the errors it reports.
    kind = type(validator)
    if kind not in (Draft202012Validator, Validator) or validator.format_checker is not None:
        return _no
    try:
        return _Compiler().compile(validator.schema)
    except RecursionError:
        return _no


def _same(a: Any, b: Any) -> bool:
    """Equal with equal types throughout: then jsonschema's `equal` holds too."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _yes
    if len(checks) == 1:
        return checks[0]

    def check(x: Any) -> bool:
        for each in checks:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not each(x):
                return False
        return True

    return check


class _Unsure(Exception):
    """A keyword or value the checker does not read: the subschema is never vouched for."""


# Bundled schemas share expansions, also between services: each subschema object is compiled
# once. An entry holds its subschema, so its id is not reused while it is here; the memo is
# emptied when it grows past _MEMO_LIMIT, so that a long-running server does not keep every
# schema it has seen.
_MEMO: dict[int, tuple[Any, Check]] = {}
_MEMO_LIMIT = 200_000


class _Compiler:
    def __init__(self) -> None:
        if len(_MEMO) > _MEMO_LIMIT:
            _MEMO.clear()
        self.memo = _MEMO

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _yes
        if not isinstance(schema, dict):
            return _no
        hit = self.memo.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        try:
            check = _all(self._keywords(schema))
        except (_Unsure, re.error, TypeError, ValueError):
            check = _no
        self.memo[id(schema)] = (schema, check)
        return check

    def _keywords(self, schema: dict[str, Any]) -> list[Check]:
        for key in schema:
            if key not in _KNOWN:
                raise _Unsure
        checks: list[Check] = []
        if "type" in schema:
            checks.append(_type(schema["type"]))
        if "enum" in schema:
            options = schema["enum"]
            if not isinstance(options, list):
                raise _Unsure
            checks.append(lambda x: any(_same(x, o) for o in options))
        if "const" in schema:
            const = schema["const"]
            checks.append(lambda x: _same(x, const))
        number = _number(schema)
        if number is not None:
            checks.append(number)
        string = _string(schema)
        if string is not None:
            checks.append(string)
        if _OBJECT.intersection(schema):
            checks.append(self._object(schema))
        if _ARRAY.intersection(schema):
            checks.append(self._array(schema))
        for each in _list(schema, "allOf"):
            checks.append(self.compile(each))
        if "anyOf" in schema:
            branches = [self.compile(each) for each in _list(schema, "anyOf")]
            checks.append(lambda x: any(b(x) for b in branches))
        return checks

    def _object(self, schema: dict[str, Any]) -> Check:
        properties = {k: self.compile(v) for k, v in _map(schema, "properties").items()}
        patterns = [
            (re.compile(p), self.compile(v)) for p, v in _map(schema, "patternProperties").items()
        ]
        required = _list(schema, "required")
        if not all(isinstance(name, str) for name in required):
            raise _Unsure
        extra = (
            self.compile(schema["additionalProperties"])
            if "additionalProperties" in schema
            else None
        )
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None
        least = _least(schema, "minProperties")
        most = _most(schema, "maxProperties")

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            if not least <= len(x) or (most is not None and len(x) > most):
                return False
            for name in required:
                if name not in x:
                    return False
            for key, value in x.items():
                if names is not None and not names(key):
                    return False
                own = properties.get(key)
                if own is not None and not own(value):
                    return False
                matched = False
                for pattern, sub in patterns:
                    if pattern.search(key):
                        matched = True
                        if not sub(value):
                            return False
                if extra is not None and own is None and not matched and not extra(value):
                    return False
            return True

        return check

    def _array(self, schema: dict[str, Any]) -> Check:
        items = self.compile(schema["items"]) if "items" in schema else None
        least = _least(schema, "minItems")
        most = _most(schema, "maxItems")
        unique = schema.get("uniqueItems", False)
        if type(unique) is not bool:
            raise _Unsure

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            if not least <= len(x) or (most is not None and len(x) > most):
                return False
            if items is not None:
                for value in x:
                    if not items(value):
                        return False
            # Distinct strings are distinct to jsonschema too; other items: unsure.
            return not unique or (all(type(v) is str for v in x) and len(set(x)) == len(x))

        return check


def _list(schema: dict[str, Any], key: str) -> list[Any]:
    value = schema.get(key, [])
    if not isinstance(value, list):
        raise _Unsure
    return value


def _map(schema: dict[str, Any], key: str) -> dict[str, Any]:
    value = schema.get(key, {})
    if not isinstance(value, dict):
        raise _Unsure
    return value


def _least(schema: dict[str, Any], key: str) -> int:
    value = schema.get(key, 0)
    if type(value) is not int:
        raise _Unsure
    return value


def _most(schema: dict[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is not None and type(value) is not int:
        raise _Unsure
    return value


def _type(expected: Any) -> Check:
    if isinstance(expected, str):
        if expected not in _TYPES:
            raise _Unsure
        return _TYPES[expected]
    if isinstance(expected, list) and all(isinstance(t, str) and t in _TYPES for t in expected):
        checks = [_TYPES[t] for t in expected]
        return lambda x: any(c(x) for c in checks)
    raise _Unsure


def _number(schema: dict[str, Any]) -> Check | None:
    bounds = [(k, schema[k]) for k in _BOUNDS if k in schema]
    if not bounds:
        return None
    if not all(type(v) is int or type(v) is float for _, v in bounds):
        raise _Unsure
    low = schema.get("minimum")
    high = schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    below = schema.get("exclusiveMaximum")

    def check(x: Any) -> bool:
        kind = type(x)
        if kind is not int and kind is not float:
            # jsonschema skips these keywords for anything but a number.
            return kind in _NON_NUMBERS
        return (
            (low is None or x >= low)
            and (high is None or x <= high)
            and (above is None or x > above)
            and (below is None or x < below)
        )

    return check


def _string(schema: dict[str, Any]) -> Check | None:
    if not _STRING.intersection(schema):
        return None
    shortest = _least(schema, "minLength")
    longest = _most(schema, "maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None

    def check(x: Any) -> bool:
        if not isinstance(x, str):
            return True
        if not shortest <= len(x) or (longest is not None and len(x) > longest):
            return False
        return pattern is None or pattern.search(x) is not None

    return check


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_STRING = frozenset({"minLength", "maxLength", "pattern"})
_OBJECT = frozenset(
    {"properties", "patternProperties", "additionalProperties", "propertyNames", "required"}
    | {"minProperties", "maxProperties"}
)
_ARRAY = frozenset({"items", "minItems", "maxItems", "uniqueItems"})
_KNOWN = (
    _IGNORED
    | _STRING
    | _OBJECT
    | _ARRAY
    | frozenset(_BOUNDS)
    | frozenset({"type", "enum", "const", "allOf", "anyOf"})
)
