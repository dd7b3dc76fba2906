"""The ops of an edit: key paths in gitconf's syntax, checked strictly, and their values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from gitconf.changes.emit import (
    json_problem,
)
from gitconf.changes.errors import (
    BadKey,
)
from gitconf.core.model import KeyPath, format_path, parse_path

__all__ = ["Op", "ops_of", "parse_key"]

_PLAIN = re.compile(r"[^.\[\]]+")
MAX_KEY_PARTS = 64  # as deep as a key path may go (a config's nesting is bounded too)
_BRACKET = re.compile(r'\["(?:[^"\\]|\\.)*"\]|\[\d+\]')


def parse_key(text: str) -> KeyPath:
    """A key path in gitconf's syntax (`db.pool.max`, `servers[0]`, `labels["a.b"]`), strictly:
    every character must belong to a part, so `db..max` or `a[x]` is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadKey(f"{text!r} holds a lone surrogate: a key path is UTF-8 text") from None
    pos = 0
    while pos < len(text) or not text:
        if pos == 0:
            match = _PLAIN.match(text) or _BRACKET.match(text)
        elif text[pos] == ".":
            match = _PLAIN.match(text, pos + 1)
        else:
            match = _BRACKET.match(text, pos)
        if match is None:
            raise BadKey(
                f"{text!r} is not a key path",
                hint="write keys as db.pool.max, list items as servers[0], "
                'and keys with dots as labels["app.kubernetes.io"]',
            )
        pos = match.end()
    path = parse_path(text)
    if len(path) > MAX_KEY_PARTS:
        raise BadKey(f"the key path has {len(path)} parts; gitconf writes at most {MAX_KEY_PARTS}")
    return path


class Op(NamedTuple):
    """One set (value) or unset (unset=True) of a key path."""

    path: KeyPath
    value: Any = None
    unset: bool = False


def ops_of(sets: Mapping[str, Any] | Sequence[tuple[str, Any]], unsets: Sequence[str]) -> list[Op]:
    """The ops of an edit: sets first, in order, then unsets; keys and values checked."""
    items = list(sets.items()) if isinstance(sets, Mapping) else list(sets)
    ops = [Op(_as_path(k), v) for k, v in items] + [Op(_as_path(k), unset=True) for k in unsets]
    for op in ops:
        if not op.unset:
            found = json_problem(op.value)
            if found is not None:
                where = format_path((*op.path, *found[0]))
                raise BadKey(
                    f"the value is not a JSON value gitconf can write: {found[1]}", key=where
                )
    for i, a in enumerate(ops):
        for b in ops[i + 1 :]:
            short, long = sorted((a.path, b.path), key=len)
            if long[: len(short)] == short:
                raise BadKey(
                    f"{format_path(a.path)} and {format_path(b.path)} overlap",
                    hint="one edit sets or unsets each key once; set the outer key whole instead",
                )
    for op in ops:
        if op.unset and isinstance(op.path[-1], int):
            listed = op.path[:-1]
            for other in ops:
                if other is not op and other.path[: len(listed)] == listed:
                    raise BadKey(
                        f"{format_path(op.path)} removes a list item and "
                        f"{format_path(other.path)} edits the same list",
                        hint=f"set {format_path(listed)} whole instead",
                    )
    return ops


def _as_path(key: str | KeyPath) -> KeyPath:
    return parse_key(key) if isinstance(key, str) else tuple(key)
