"""The nesting bound of JSON bodies, counted before the parse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitconf.server.jsonbody import nesting_exceeds


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("text", "limit", "exceeds"),
    [
        (b"{}", 1, False),
        (b"{}", 0, True),
        (b'{"a": [1, {"b": []}]}', 4, False),
        (b'{"a": [1, {"b": []}]}', 3, True),
        (b"[[]][[]][[]]", 2, False),  # depth, not the count of brackets
        (b'["[[[[[[", "]]]{{{"]', 1, False),  # brackets in strings
        (b'["\\"[[[[", "\\\\"]', 1, False),  # escaped quote, then an escaped backslash
        (b'["\\\\", [[]]]', 2, True),  # the string ends after \\: the brackets count
        (nested(32), 32, False),
        (nested(33), 32, True),
        (b'["unterminated [[[[', 2, True),  # counted as it stands; the parse then refuses it
    ],
)
def test_nesting(text: bytes, limit: int, exceeds: bool) -> None:
    assert nesting_exceeds(text, limit) is exceeds


def depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def test_it_agrees_with_the_parsed_depth() -> None:
    doc = {"a": [{"b": ['x"]]]', {"c": [[["[{"]]]}]}], "d": "\\", "e": {}}
    text = json.dumps(doc).encode()
    assert depth(doc) == 8
    assert not nesting_exceeds(text, 8)
    assert nesting_exceeds(text, 7)
