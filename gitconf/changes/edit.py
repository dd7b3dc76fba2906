"""Set and unset keys of one layer file in place, changing only the lines of those keys.

The edit never writes the file out again from a parsed tree: it replaces, inserts or removes
the text of the edited keys at the places libyaml gives (changes/document.py) and leaves every
other byte alone, so comments, key order, quoting, anchors, flow collections, block scalars,
escapes such as "\\u00e9", indentation, line breaks (CRLF too), a missing final newline and a
document start `---` stay as they were. New text follows the file's style (changes/emit.py).

Two guards check every edit before it is returned, and refuse it (NotExact: a bug of
gitconf's, nothing written) otherwise:
1. the new bytes, read by gitconf's own parser, give exactly the intended tree: the old
   document with the edits applied (plain values, merge tags and key order compared); and
   each set key reads back as its value;
2. every line outside the edited keys (the lines of the keys set or unset, before and after)
   is byte for byte the same, in the same order.

Decisions, each tested in tests/changes/:
- A new key goes at the end of its mapping: after the last key and the comment lines that
  directly follow it indented as its keys, before a blank line or a comment indented less
  (which belongs to what comes next). A list item is appended the same way.
- Missing parent mappings are created (`a.b.c` where only `a` exists adds `b:` with `c:`);
  an empty `{}` or `[]` value that gets a key or item becomes a block mapping or list.
- A key path that goes into a scalar (`db.port.x` when db.port is 5432), or into null, is an
  error naming the scalar's place: set the scalar itself to a mapping instead.
- Anchors: editing a key inside an anchored mapping (at its definition) edits the anchor, so
  every alias of it shows the change (that is what the alias says). A key path that goes
  through an alias, or into a mapping merged by `<<`, is refused (the edit would change the
  anchor for every alias). A key that a mapping has only from `<<` is written into that
  mapping (it overrides the merged value there only). Replacing an anchored value keeps its
  anchor; removing or replacing a value whose anchors other places use is refused.
- A set replaces the value, and keeps the key's merge tag when the new value still fits it
  (`!replace` on a mapping or list, `!append` on a list); `!delete` gives way to the value.
- Unsetting the last key of a mapping leaves `key: {}` (the key stays: only the unset key is
  removed), and the last item of a list `key: []`. The comments above a removed key stay.
- A string keeps the quotes of the value it replaces; a multi-line string is written as a
  block scalar (`|`), also where one was before.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from typing import Any

from gitconf.changes.document import (
    ComposeError,
    DNode,
    Document,
    NotModelled,
    compose,
    detect_style,
    evaluate,
    shape_of,
    value_shape,
)
from gitconf.changes.errors import (
    EditRefused,
    EncryptedLayer,
    InvalidLayer,
    NotExact,
)
from gitconf.changes.ops import Op, ops_of, parse_key
from gitconf.changes.splice import Editor, dash_of
from gitconf.changes.walk import apply_to_model, entry_named
from gitconf.core.model import KeyPath, Node, find, format_path, to_plain
from gitconf.core.parse import parse_yaml

__all__ = ["Op", "edit_layer", "is_encrypted", "ops_of", "parse_key"]


def is_encrypted(tree: Node | None) -> bool:
    """Whether a parsed layer is a SOPS file (a top-level `sops:` mapping)."""
    if tree is None or tree.kind != "map":
        return False
    meta = tree.value.get("sops")
    return meta is not None and meta.kind == "map"


# -- the edit -------------------------------------------------------------------------------


def edit_layer(
    layer: str,
    data: bytes | None,
    sets: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
    unsets: Sequence[str] = (),
) -> bytes:
    """The layer file's new bytes with sets (key path -> JSON value) and unsets applied.

    data None: the file does not exist yet and is created. Raises BadKey or EditRefused for
    an edit that does not fit, InvalidLayer if the file is broken already, EncryptedLayer for
    a SOPS file, and NotExact if gitconf could not make the edit exactly.
    """
    ops = ops_of(sets, unsets)
    bom, text = _decode(layer, data)
    old_tree: Node | None = None
    if data is not None:
        old_tree, problems = parse_yaml(layer, data)
        if old_tree is None:
            raise InvalidLayer(
                f"{layer} cannot be edited: it has {len(problems)} problem(s) already",
                layer=layer,
                hint="fix the file first (gitconf validate shows where)",
                problems=tuple(problems),
            )
        if is_encrypted(old_tree):
            raise EncryptedLayer(
                "the file is encrypted with SOPS; gitconf never edits an encrypted file",
                layer=layer,
                hint="edit it with `sops`, or choose another layer",
            )
    doc = _compose(layer, text)
    model = _compose(layer, text)
    try:
        modelled = evaluate(model.root)
    except NotModelled as exc:
        raise NotExact(
            f"gitconf cannot read this file as its parser does: {exc}", layer=layer
        ) from None
    if old_tree is not None and modelled != shape_of(old_tree):
        raise NotExact("gitconf cannot read this file as its parser does", layer=layer)
    style = detect_style(doc)
    editor = Editor(layer, style)
    touched_old: list[tuple[KeyPath, str]] = []
    touched_new: list[tuple[KeyPath, str]] = []
    for op in ops:
        text, old_t, new_t = editor.apply(doc, op)
        touched_old += old_t
        touched_new += new_t
        apply_to_model(model, op, layer)
        doc = _compose(layer, text, after_edit=True)
    new_bytes = bom + text.encode()
    _check_tree(layer, new_bytes, model, ops)
    _check_lines(layer, _compose(layer, _decode(layer, data)[1]), doc, touched_old, touched_new)
    return new_bytes


def _decode(layer: str, data: bytes | None) -> tuple[bytes, str]:
    if data is None:
        return b"", ""
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        return bom, data[len(bom) :].decode()
    except UnicodeDecodeError:
        raise EditRefused(
            "the file is not UTF-8 text; gitconf edits UTF-8 files only", layer=layer
        ) from None


def _compose(layer: str, text: str, after_edit: bool = False) -> Document:
    try:
        return compose(text)
    except ComposeError as exc:
        if after_edit:
            raise NotExact(f"the edited file would not parse: {exc}", layer=layer) from None
        raise InvalidLayer(f"{layer} cannot be read: {exc}", layer=layer) from None


# -- the guards ---------------------------------------------------------------------------


def _check_tree(layer: str, data: bytes, model: Document, ops: list[Op]) -> None:
    tree, problems = parse_yaml(layer, data)
    if tree is None:
        first = problems[0].render() if problems else "no tree"
        raise NotExact(f"the edited file would not parse: {first}", layer=layer)
    if shape_of(tree) != evaluate(model.root):
        raise NotExact("the edited file does not read back as the intended tree", layer=layer)
    for op in ops:
        node, covered = find(tree, op.path)
        if op.unset:
            continue
        if covered != op.path or value_shape(to_plain(node)) != value_shape(op.value):
            raise NotExact(
                f"{format_path(op.path)} does not read back as the value set", layer=layer
            )


def _entry_lines(doc: Document, path: KeyPath, mode: str) -> set[int] | None:
    """The lines of the entry at path (mode "key": its first line only); None if absent."""
    if not path:
        return set(range(len(doc.line_starts)))
    node = doc.root
    first = last = 0
    for part in path:
        if node is None:
            return None
        if node.kind == "map" and isinstance(part, str):
            entry = entry_named(node, part)
            if entry is None:
                return None
            first, node = doc.line_of(entry.key.start), entry.value
        elif node.kind == "seq" and isinstance(part, int) and part < len(node.items):
            node = node.items[part]
            first = doc.line_of(dash_of(doc, node) if not _in_flow(doc, node) else node.start)
        else:
            return None
    assert node is not None
    last = doc.line_of(max(node.end - 1, node.start))
    if mode == "key":
        return {first}
    return set(range(first, max(first, last) + 1))


def _in_flow(doc: Document, node: DNode) -> bool:
    dash = dash_of(doc, node)
    return doc.text[dash : dash + 1] != "-"


def _check_lines(
    layer: str,
    old: Document,
    new: Document,
    touched_old: list[tuple[KeyPath, str]],
    touched_new: list[tuple[KeyPath, str]],
) -> None:
    def kept(doc: Document, touched: list[tuple[KeyPath, str]]) -> list[str]:
        allowed: set[int] = set()
        for path, mode in touched:
            allowed |= _entry_lines(doc, path, mode) or set()
        lines = doc.text.splitlines(keepends=True)
        return [line for i, line in enumerate(lines) if i not in allowed]

    before, after = kept(old, touched_old), kept(new, touched_new)
    # The last kept line's break is not the file's to keep: a key added after the last line of
    # a file without a final newline gives that line one (and removing the last key takes
    # it away). Whether the file ends with a line break is checked on its own.
    for lines in (before, after):
        if lines:
            lines[-1] = lines[-1].rstrip("\r\n")
    if before != after:
        raise NotExact("the edit would change lines outside the edited keys", layer=layer)
    if old.text and new.text and old.text.endswith("\n") != new.text.endswith("\n"):
        raise NotExact("the edit would change whether the file ends with a line break", layer=layer)
