"""Where an op lands in a document, and the same op on the model of the intended tree.

One walk serves both: on the document composed from the text (to place the edit, and to
refuse it with the place of what is in the way) and on the model (whose evaluation is the
tree the edited file must read back as).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from gitconf.changes.document import (
    DNode,
    Document,
    Entry,
)
from gitconf.changes.emit import (
    describe,
)
from gitconf.changes.errors import (
    EditRefused,
)
from gitconf.changes.ops import Op
from gitconf.core.model import KeyPath, format_path
from gitconf.errors import Source

# -- walking a key path -------------------------------------------------------------------


class Found(NamedTuple):
    """Where an op lands: an existing entry or item, or a new one in parent."""

    kind: str  # "entry", "item" or "new"
    parent: DNode | None  # the mapping or list (None: the document is empty)
    parent_path: KeyPath
    holder: tuple[DNode | None, Entry | None, int]  # what holds parent: its mapping and entry,
    # or its list and index; (None, None, -1) for the top level
    entry: Entry | None = None
    item: int = -1
    key: str | int = ""
    value: Any = None  # a new key or item: its value, with the missing mappings around it


def _nest(rest: KeyPath, value: Any, layer: str = "") -> Any:
    """value under the missing mappings and lists of rest; a new list starts at item [0]."""
    for index, part in reversed(list(enumerate(rest))):
        if isinstance(part, int) and part != 0:
            raise EditRefused(
                f"{describe(rest[:index])} would be a new list, so its first item is [0], "
                f"not [{part}]",
                layer=layer,
                key=format_path(rest),
                hint=f"set {format_path((*rest[:index], 0))}, or the list whole",
            )
        value = {part: value} if isinstance(part, str) else [value]
    return value


def entry_named(node: DNode, key: str) -> Entry | None:
    for entry in node.entries:
        if not entry.is_merge and entry.name == key:
            return entry
    return None


def _merge_entry(node: DNode, key: str) -> Entry | None:
    """The merge key `<<` of node that brings key, if any."""
    for entry in node.entries:
        if entry.is_merge:
            source = entry.value.target if entry.value.kind == "alias" else entry.value
            assert source is not None
            for each in source.items if source.kind == "seq" else [source]:
                each = each.target if each.kind == "alias" and each.target else each
                if each.kind == "map" and any(e.name == key for e in each.entries):
                    return entry
    return None


def _materialize(node: DNode) -> None:
    """A JSON value an earlier op set becomes nodes, so a later op can go into it."""
    if isinstance(node.value, dict):
        node.kind = "map"
        node.entries = [
            Entry(DNode("scalar", text=k, plain=False), DNode("value", value=v))
            for k, v in node.value.items()
        ]
    elif isinstance(node.value, list):
        node.kind = "seq"
        node.items = [DNode("value", value=v) for v in node.value]
    else:
        node.kind = "scalar"
        node.text, node.plain = json.dumps(node.value), True


class Walker:
    def __init__(self, layer: str, doc: Document) -> None:
        self.layer = layer
        self.doc = doc

    def source(self, node: DNode) -> Source:
        return Source(self.layer, self.doc.line_of(node.start) + 1, self.doc.col_of(node.start) + 1)

    def walk(self, op: Op) -> Found:
        path, doc = op.path, self.doc
        node = doc.root
        holder: tuple[DNode | None, Entry | None, int] = (None, None, -1)
        if node is None:
            if op.unset:
                raise self.absent(op.path)
            return Found(
                "new", None, (), holder, key=path[0], value=_nest(path[1:], op.value, self.layer)
            )
        for i, part in enumerate(path):
            here, last = path[:i], i == len(path) - 1
            if node.kind == "alias":
                raise self.through_alias(node, here, path)
            if node.kind == "value":
                _materialize(node)
            if node.kind == "map":
                if not isinstance(part, str):
                    raise EditRefused(
                        f"{describe(here)} is a mapping, so it has no item [{part}]",
                        layer=self.layer,
                        key=format_path(path),
                        source=self.source(node),
                        hint="name a key of the mapping",
                    )
                entry = entry_named(node, part)
                if entry is None:
                    merged = _merge_entry(node, part)
                    if merged is not None and (op.unset or not last):
                        raise self.through_merge(merged, path[: i + 1], path, op.unset)
                    if op.unset:
                        raise self.absent(op.path)
                    value = _nest(path[i + 1 :], op.value, self.layer)
                    return Found("new", node, here, holder, key=part, value=value)
                if last:
                    return Found("entry", node, here, holder, entry=entry)
                holder, node = (node, entry, -1), entry.value
            elif node.kind == "seq":
                if not isinstance(part, int):
                    raise EditRefused(
                        f"{describe(here)} is a list, so it has no key {part!r}",
                        layer=self.layer,
                        key=format_path(path),
                        source=self.source(node),
                        hint=f"name an item: {format_path((*here, 0))}",
                    )
                if part < len(node.items):
                    if last:
                        return Found("item", node, here, holder, item=part)
                    holder, node = (node, None, part), node.items[part]
                elif part == len(node.items) and not op.unset:
                    value = _nest(path[i + 1 :], op.value, self.layer)
                    return Found("new", node, here, holder, key=part, value=value)
                else:
                    if op.unset:
                        raise self.absent(op.path)
                    raise EditRefused(
                        f"{describe(here)} has {len(node.items)} item(s): [{part}] is past its end",
                        layer=self.layer,
                        key=format_path(path),
                        source=self.source(node),
                        hint=f"set an item up to [{len(node.items)}] (which appends one)",
                    )
            else:
                raise self.crossing(node, here, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def crossing(self, node: DNode, here: KeyPath, path: KeyPath) -> EditRefused:
        if node.kind == "scalar":
            shown = self.doc.text[node.start : node.end] or "null"
        else:
            shown = json.dumps(node.value)
        return EditRefused(
            f"{describe(here)} is the scalar {shown} at {self.source(node)}, "
            f"so {format_path(path)} cannot be set inside it",
            layer=self.layer,
            key=format_path(path),
            source=self.source(node),
            hint=f"set {describe(here)} itself to a mapping to replace the scalar",
        )

    def absent(self, path: KeyPath) -> EditRefused:
        return EditRefused(
            f"{self.layer} does not set {format_path(path)}, so there is nothing to unset",
            layer=self.layer,
            key=format_path(path),
            hint="unset removes a key from the layer file that sets it; "
            "`gitconf explain` shows which file that is",
        )

    def through_alias(self, node: DNode, here: KeyPath, path: KeyPath) -> EditRefused:
        target = node.target
        assert target is not None
        anchor = f"&{target.anchor} at {self.source(target)}"
        return EditRefused(
            f"{describe(here)} is an alias of the anchor {anchor}: editing "
            f"{format_path(path)} through it would change the anchor and every alias of it",
            layer=self.layer,
            key=format_path(path),
            source=self.source(node),
            hint=f"edit the anchor's own keys to change every alias, or set {describe(here)} whole",
        )

    def through_merge(self, merge: Entry, here: KeyPath, path: KeyPath, unset: bool) -> EditRefused:
        what = "unset" if unset else "edited here"
        return EditRefused(
            f"{format_path(here)} comes from the merge key `<<` at {self.source(merge.key)}, "
            f"so {format_path(path)} cannot be {what} without changing the mapping merged in",
            layer=self.layer,
            key=format_path(path),
            source=self.source(merge.key),
            hint=f"set {format_path(here)} whole to override it here, or edit the merged mapping",
        )


# -- the model: the intended tree ---------------------------------------------------------


def kept_tag(old: DNode, value: Any) -> str | None:
    """The merge tag a set keeps: `!replace` on a mapping or list, `!append` on a list."""
    if old.kind in ("map", "seq", "value") and old.tag == "!replace":
        return "!replace" if isinstance(value, dict | list) else None
    if old.tag == "!append" and isinstance(value, list):
        return "!append"
    return None


def _become(node: DNode, value: Any) -> None:
    """Replace a node's value in place, so every alias of it shows the new value."""
    tag = kept_tag(node, value)
    node.kind, node.value, node.tag = "value", value, tag
    node.entries, node.items, node.target = [], [], None


def apply_to_model(model: Document, op: Op, layer: str) -> None:
    found = Walker(layer, model).walk(op)
    if found.kind == "entry":
        assert found.entry is not None and found.parent is not None
        if op.unset:
            found.parent.entries.remove(found.entry)
        else:
            _become(found.entry.value, op.value)
    elif found.kind == "item":
        assert found.parent is not None
        if op.unset:
            del found.parent.items[found.item]
        else:
            _become(found.parent.items[found.item], op.value)
    elif found.parent is None:
        model.root = DNode(
            "map",
            entries=[
                Entry(
                    DNode("scalar", text=str(found.key), plain=False),
                    DNode("value", value=found.value),
                )
            ],
        )
    elif found.parent.kind == "map":
        key = DNode("scalar", text=str(found.key), plain=False)
        found.parent.entries.append(Entry(key, DNode("value", value=found.value)))
    else:
        found.parent.items.append(DNode("value", value=found.value))
