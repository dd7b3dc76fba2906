"""gitconf's JSON Schema validator: Draft 2020-12, with `unevaluatedProperties` errors that
carry the keys they are about.

jsonschema names those keys only inside its English message. Here the keyword is wrapped (with
jsonschema's public `validators.extend`): when it fails, the keys no subschema evaluated are
found by asking the same keyword again with some keys marked evaluated, half of them at a
time, and each is put in the error's `context` as a sub-error whose `path` is that key. Only
a failing object pays for it; validation itself is jsonschema's, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

__all__ = ["Validator", "unevaluated_keys"]

_KEYWORD = "unevaluatedProperties"
_CHECK = Draft202012Validator.VALIDATORS[_KEYWORD]


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    for error in _CHECK(validator, unevaluated, instance, schema):
        keys = _failing(validator, unevaluated, instance, schema, list(instance), known=True)
        yield ValidationError(
            error.message,
            context=[
                ValidationError(
                    f"{key!r} is not evaluated by any subschema",
                    validator=_KEYWORD,
                    validator_value=unevaluated,
                    path=[key],
                    instance=instance[key],
                    schema=schema,
                )
                for key in keys
            ],
        )


def _failing(
    validator: Any,
    unevaluated: Any,
    instance: Mapping[str, Any],
    schema: Mapping[str, Any],
    candidates: Sequence[str],
    known: bool = False,
) -> list[str]:
    """The candidates the keyword fails for, found by halves.

    Marking every other key evaluated (an always-true entry in `properties`) changes nothing
    else: the subschemas, and so which of them hold and what they evaluate, stay the same.
    `known`: the keyword is already known to fail for some candidate.
    """
    if not known:
        inside = set(candidates)
        properties = schema.get("properties", {})
        marked = {k: True for k in instance if k not in inside and k not in properties}
        probe = {**schema, "properties": {**properties, **marked}}
        if next(iter(_CHECK(validator, unevaluated, instance, probe)), None) is None:
            return []
    if len(candidates) == 1:
        return list(candidates)
    half = len(candidates) // 2
    return _failing(validator, unevaluated, instance, schema, candidates[:half]) + _failing(
        validator, unevaluated, instance, schema, candidates[half:]
    )


def unevaluated_keys(error: ValidationError) -> list[str] | None:
    """The keys an unevaluatedProperties error of Validator is about; None from another class."""
    if error.validator != _KEYWORD or not error.context:
        return None
    return [str(sub.relative_path[0]) for sub in error.context if sub.relative_path]


Validator = validators.extend(Draft202012Validator, {_KEYWORD: _unevaluated_properties})
