"""Provenance of a merged config: where each leaf was set and what it overrode."""

from __future__ import annotations

from typing import Any

from gitconf.core.model import Config, find, format_path, iter_leaves, parse_path, to_plain

__all__ = ["explain_config"]


def explain_config(config: Config, key: str | None = None) -> list[dict[str, Any]]:
    """One entry per leaf (under key, if given): key, value, source and the sources overridden."""
    root = config.tree
    prefix: tuple[str | int, ...] = ()
    if key:
        prefix = parse_path(key)
        node, covered = find(root, prefix)
        if covered != prefix:
            return []
        root = node
    return [
        {
            "key": format_path((*prefix, *path)),
            "value": to_plain(leaf),
            "source": str(leaf.source),
            "overrides": [str(s) for s in leaf.overrides],
        }
        for path, leaf in iter_leaves(root)
    ]
