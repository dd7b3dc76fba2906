"""Provenance of a merged config: where each leaf was set and what it overrode."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from gitconf.core.model import Config, find, format_path, iter_leaves, parse_path, to_plain
from gitconf.errors import Source

__all__ = ["explain_config"]


def explain_config(
    config: Config, key: str | None = None, *, secrets: Container[Source] = frozenset()
) -> list[dict[str, Any]]:
    """One entry per leaf (under key, if given): key, value, source and the sources overridden.

    A leaf set at one of secrets (decrypted from a SOPS file) shows where, never its value:
    `"value": null, "secret": true`.
    """
    root = config.tree
    prefix: tuple[str | int, ...] = ()
    if key:
        prefix = parse_path(key)
        node, covered = find(root, prefix)
        if covered != prefix:
            return []
        root = node
    entries = []
    for path, leaf in iter_leaves(root):
        entry: dict[str, Any] = {
            "key": format_path((*prefix, *path)),
            "value": to_plain(leaf),
            "source": str(leaf.source),
            "overrides": [str(s) for s in leaf.overrides],
        }
        if leaf.source in secrets:
            entry["value"] = None
            entry["secret"] = True
        entries.append(entry)
    return entries
