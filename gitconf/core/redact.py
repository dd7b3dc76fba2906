"""A config without its secrets: what a reader without the `secrets:` scope is served."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from gitconf.core.model import Node
from gitconf.errors import Source

__all__ = ["count_secrets", "redacted"]


def redacted(node: Node, secrets: Container[Source]) -> tuple[Any, int]:
    """The node as plain values with every leaf set at one of secrets left out, and how many
    were left out (a mapping or list that held only secrets stays, empty)."""
    if node.kind == "map":
        out: dict[str, Any] = {}
        hidden = 0
        for key, child in node.value.items():
            if (child.kind == "scalar" or not child.value) and child.source in secrets:
                hidden += 1
                continue
            value, count = redacted(child, secrets)
            out[key] = value
            hidden += count
        return out, hidden
    if node.kind == "seq":
        items = []
        hidden = 0
        for child in node.value:
            if (child.kind == "scalar" or not child.value) and child.source in secrets:
                hidden += 1
                continue
            value, count = redacted(child, secrets)
            items.append(value)
            hidden += count
        return items, hidden
    if node.source in secrets:
        return None, 1
    return node.value, 0


def count_secrets(node: Node, secrets: Container[Source]) -> int:
    """How many leaves of node were set at one of secrets."""
    if node.kind in ("map", "seq") and node.value:
        children = node.value.values() if node.kind == "map" else node.value
        return sum(count_secrets(child, secrets) for child in children)
    return 1 if node.source in secrets else 0
