"""The deep merge of one layer onto the layers below it, keeping each value's provenance.

Rules (DESIGN section 1), for an overlay value V over an inherited value B:
- no B: V is taken as is (its tags are settled: `!delete` drops the key, the rest are plain);
- `!delete`: the key is removed;
- `!replace`: V replaces B whatever either is;
- V and B both mappings: merged key by key, recursively;
- `!append` with B a list: B's items then V's;
- V a scalar or list and B not a mapping: V replaces B (`null` is a value like any other);
- one a mapping and the other not, without `!replace`: a Problem naming both places.
Every merged node records the sources it overrode, lowest layer first.
"""

from __future__ import annotations

from gitconf.core.model import TAG_APPEND, TAG_DELETE, TAG_REPLACE, KeyPath, Node, format_path
from gitconf.errors import Problem

__all__ = ["merge", "settle"]


def merge(base: Node | None, overlay: Node) -> tuple[Node, list[Problem]]:
    """Merge overlay onto base (both top-level mappings) and return the result and problems."""
    problems: list[Problem] = []
    result = _merge(base, overlay, (), problems)
    if result is None:  # a `!delete` at the top level cannot happen: parse requires a mapping
        result = Node("map", {}, overlay.source)
    return result, problems


def settle(node: Node) -> Node | None:
    """The node with its merge tags resolved against nothing inherited; None if deleted."""
    if node.tag == TAG_DELETE:
        return None
    if node.kind == "map":
        items = {}
        for key, child in node.value.items():
            settled = settle(child)
            if settled is not None:
                items[key] = settled
        return Node("map", items, node.source, None, node.overrides)
    if node.tag is None:
        return node
    return Node(node.kind, node.value, node.source, None, node.overrides)


def _describe(node: Node) -> str:
    # Never the value itself: it may be a secret decrypted from a SOPS file, and problems are
    # shown to callers who may not read it (the file:line says where to look).
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    return "a scalar"


def _merge(base: Node | None, over: Node, path: KeyPath, problems: list[Problem]) -> Node | None:
    if over.tag == TAG_DELETE:
        return None
    if base is None:
        return settle(over)
    overridden = (*base.overrides, base.source)
    if over.tag == TAG_REPLACE:
        settled = settle(over)
        assert settled is not None
        return Node(settled.kind, settled.value, settled.source, None, overridden)
    if (over.kind == "map") != (base.kind == "map"):
        problems.append(
            Problem(
                over.source,
                f"{_describe(over)} here overlays {_describe(base)} set at {base.source}",
                format_path(path),
                "a mapping only merges with a mapping; mark the value `!replace` to replace it",
            )
        )
        settled = settle(over)
        assert settled is not None
        return settled
    if over.kind == "map":
        items = dict(base.value)
        for key, child in over.value.items():
            merged = _merge(items.get(key), child, (*path, key), problems)
            if merged is None:
                items.pop(key, None)
            else:
                items[key] = merged
        return Node("map", items, over.source, None, overridden)
    if over.tag == TAG_APPEND:
        if base.kind != "seq":
            problems.append(
                Problem(
                    over.source,
                    f"!append needs an inherited list, but {base.source} sets {_describe(base)}",
                    format_path(path),
                )
            )
            return Node("seq", over.value, over.source, None, overridden)
        return Node("seq", base.value + over.value, over.source, None, overridden)
    return Node(over.kind, over.value, over.source, None, overridden)
