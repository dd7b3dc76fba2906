"""The text of one op: the edit of the lines of one key, in the file's own style."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gitconf.changes.document import (
    DNode,
    Document,
    Entry,
    Style,
)
from gitconf.changes.emit import (
    block_lines,
    block_scalar,
    entry_lines,
    flow_text,
    key_text,
    scalar_text,
)
from gitconf.changes.errors import (
    EditRefused,
    NotExact,
)
from gitconf.changes.ops import Op
from gitconf.changes.walk import Found, Walker, kept_tag
from gitconf.core.model import KeyPath, format_path
from gitconf.errors import Source

# -- the text edits -----------------------------------------------------------------------


def dash_of(doc: Document, item: DNode) -> int:
    """The index of the `-` of a block list item (or of item itself if there is none)."""
    pos = item.start - 1
    while pos >= 0 and doc.text[pos] in " \t\r\n":
        pos -= 1
    return pos if pos >= 0 and doc.text[pos] == "-" else item.start


def _content_line_end(doc: Document, end: int) -> int:
    """Where the line of a node's last character ends (before its line break)."""
    text = doc.text
    if end > 0 and text[end - 1] == "\n":  # a block scalar that keeps its final line breaks
        end -= 1
        return end - 1 if end > 0 and text[end - 1] == "\r" else end
    return doc.line_end(end)


def _next_line(doc: Document, pos: int) -> int:
    """The start of the line after the line break at pos (or the text's end)."""
    text = doc.text
    if text.startswith("\r\n", pos):
        return pos + 2
    if text.startswith("\n", pos):
        return pos + 1
    return len(text)


def _colon_end(doc: Document, key: DNode, layer: str) -> int:
    pos = key.end
    while pos < len(doc.text) and doc.text[pos] in " \t":
        pos += 1
    if not doc.text.startswith(":", pos):
        raise NotExact(f"unexpected text after the key {key.text!r}", layer=layer)
    return pos + 1


def _props(doc: Document, node: DNode) -> tuple[list[str], int]:
    """The anchor and tag tokens of node as written, and where the last one ends."""
    tokens: list[str] = []
    pos = node.start
    text = doc.text
    end = pos
    while node.start < node.content and pos < len(text) and text[pos] in "&!":
        stop = pos
        while stop < len(text) and text[stop] not in " \t\r\n,[]{}":
            stop += 1
        tokens.append(text[pos:stop])
        end = pos = stop
        while pos < len(text) and text[pos] in " \t":
            pos += 1
    return tokens, end


def _new_props(doc: Document, node: DNode, value: Any) -> list[str]:
    tokens, _ = _props(doc, node) if node.kind != "alias" else ([], node.start)
    kept = kept_tag(node, value)
    return [t for t in tokens if t.startswith("&") or (kept is not None and t == kept)]


def _block_collection(node: DNode) -> bool:
    return node.kind in ("map", "seq") and not node.flow


def _owner_col(doc: Document, holder: tuple[DNode | None, Entry | None, int]) -> int:
    parent, entry, index = holder
    if entry is not None:
        return doc.col_of(entry.key.start)
    if parent is not None and index >= 0:
        return doc.col_of(dash_of(doc, parent.items[index]))
    return -1


def _insertion_point(doc: Document, node: DNode, col: int, owner: int) -> int:
    """After node's last line and the comment lines right after it that belong to it."""
    pos = _content_line_end(doc, node.end)
    while pos < len(doc.text):
        start = _next_line(doc, pos)
        stop = doc.line_end(start)
        line = doc.text[start:stop]
        indent = len(line) - len(line.lstrip(" "))
        if not line.lstrip(" ").startswith("#") or indent < col or indent <= owner:
            break
        pos = stop
    return pos


def _quote_of(node: DNode, value: Any) -> str:
    return (
        node.style
        if node.kind == "scalar" and node.style in ("'", '"') and isinstance(value, str)
        else ""
    )


def _block_indent(doc: Document, node: DNode, default: int) -> int:
    """The indentation of a block scalar's lines."""
    for line in doc.text[node.content : node.end].split("\n")[1:]:
        if line.strip():
            return len(line) - len(line.lstrip(" "))
    return default


# The text after an op, and the entries (key path, "whole" or "key" line) it changed in the
# text before and in the text after.
_Touched = list[tuple[KeyPath, str]]
_Result = tuple[str, _Touched, _Touched]


class Editor:
    def __init__(self, layer: str, style: Style) -> None:
        self.layer = layer
        self.style = style
        self.nl = style.newline

    def apply(self, doc: Document, op: Op) -> _Result:
        """The text after op, and the entries it changed in the old and in the new text."""
        found = Walker(self.layer, doc).walk(op)
        if op.unset:
            return self.unset(doc, op, found)
        if found.kind == "new" and found.parent is not None and self._empty_flow_value(doc, found):
            # `key: {}` getting a key becomes a block mapping: set key whole.
            parent, entry, index = found.holder
            assert parent is not None
            value = {found.key: found.value} if found.parent.kind == "map" else [found.value]
            outer = Op(found.parent_path, value)
            inner = Found(
                "entry" if entry else "item",
                parent,
                found.parent_path[:-1],
                (None, None, -1),
                entry,
                index,
            )
            return self.set(doc, outer, inner)
        return self.set(doc, op, found) if found.kind != "new" else self.add(doc, op, found)

    def _empty_flow_value(self, doc: Document, found: Found) -> bool:
        parent = found.parent
        assert parent is not None
        container = found.holder[0]
        return (
            parent.flow
            and not parent.entries
            and not parent.items
            and container is not None
            and not container.flow
        )

    # -- set an existing key or item ------------------------------------------------------
    def set(self, doc: Document, op: Op, found: Found) -> _Result:
        parent = found.parent
        assert parent is not None
        node = found.entry.value if found.entry is not None else parent.items[found.item]
        self._check_anchors(doc, node, op.path, keep_own=True)
        touched = [(op.path, "whole")]
        if parent.flow:
            text = self._set_flow(doc, node, op.value)
        elif found.entry is not None:
            text = self._set_block(doc, found.entry.key, node, op.value)
        else:
            text = self._set_item(doc, node, op.value)
        return text, touched, touched

    def _set_flow(self, doc: Document, node: DNode, value: Any) -> str:
        props = _new_props(doc, node, value)
        if isinstance(value, str):
            written = scalar_text(value, self.style, flow=True, quote=_quote_of(node, value))
        else:
            written = flow_text(value, self.style)
        new = " ".join([*props, written])
        return doc.text[: node.start] + new + doc.text[node.end :]

    def _render(
        self, doc: Document, node: DNode, value: Any, col: int
    ) -> tuple[list[str], list[str]]:
        """The inline part (after `key:` or `-`) and the lines that follow, for a block parent."""
        props = _new_props(doc, node, value)
        style = self.style
        nonempty = isinstance(value, dict | list) and bool(value)
        old_flow = node.kind in ("map", "seq") and node.flow and node.end - node.content > 2
        if nonempty and old_flow:
            return [*props, flow_text(value, style)], []
        if nonempty:
            same = _block_collection(node) and (node.kind == "map") == isinstance(value, dict)
            if same:
                inner = doc.col_of(node.content)
            else:
                inner = col + (style.indent if isinstance(value, dict) else style.seq_indent)
            return props, block_lines(value, inner, style)
        if isinstance(value, str) and not _quote_of(node, value):
            folded = node.kind == "scalar" and node.style == ">"
            indent = col + style.indent
            if node.kind == "scalar" and node.style in ("|", ">"):
                indent = _block_indent(doc, node, indent)
            if "\n" in value.rstrip("\n") or (node.kind == "scalar" and node.style in ("|", ">")):
                block = block_scalar(value, indent, folded, single=True) or block_scalar(
                    value, indent, single=True
                )
                if block is not None:
                    return [*props, block[0]], block[1]
        if isinstance(value, str):
            return [*props, scalar_text(value, style, quote=_quote_of(node, value))], []
        return [*props, flow_text(value, style)], []

    def _inline_end(self, doc: Document, key_line: int, node: DNode) -> int:
        """Where the text that the inline part replaces ends."""
        if _block_collection(node):
            tokens, end = _props(doc, node)
            return end if tokens and doc.line_of(node.start) == key_line else -1
        end = node.end
        if end > node.start and doc.text[end - 1] == "\n":
            end = _content_line_end(doc, end)
        return end

    def _set_block(self, doc: Document, key: DNode, node: DNode, value: Any) -> str:
        text, nl = doc.text, self.nl
        colon = _colon_end(doc, key, self.layer)
        key_col = doc.col_of(key.start)
        inline, following = self._render(doc, node, value, key_col)
        stop = self._inline_end(doc, doc.line_of(key.start), node)
        if stop < 0:
            stop = colon
        gap = text[colon : node.start]
        lead = gap if gap.strip(" ") == "" and gap and not _block_collection(node) else " "
        written = (lead + " ".join(inline)) if inline else ""
        rest_end = doc.line_end(stop)
        tail = _content_line_end(doc, node.end) if _block_collection(node) else rest_end
        more = "".join(nl + line for line in following)
        return text[:colon] + written + text[stop:rest_end] + more + text[max(tail, rest_end) :]

    def _set_item(self, doc: Document, node: DNode, value: Any) -> str:
        text, nl = doc.text, self.nl
        dash = dash_of(doc, node)
        if dash == node.start:
            raise NotExact("a list item without its dash", layer=self.layer)
        dash_col = doc.col_of(dash)
        style = self.style
        props = _new_props(doc, node, value)
        nonempty = isinstance(value, dict | list) and bool(value)
        old_flow = node.kind in ("map", "seq") and node.flow and node.end - node.content > 2
        if nonempty and not old_flow:
            same = _block_collection(node) and (node.kind == "map") == isinstance(value, dict)
            on_line = doc.line_of(node.content) == doc.line_of(dash)
            col = doc.col_of(node.content) if same and on_line else dash_col + style.dash_gap
            lines = block_lines(value, col, style)
            if props:
                written = " " + " ".join(props)
                following = lines
            else:
                written = " " * (col - dash_col - 1) + lines[0][col:]
                following = lines[1:]
        else:
            inline, following = self._render(doc, node, value, dash_col)
            gap = text[dash + 1 : node.start]
            lead = gap if gap and gap.strip(" ") == "" else " "
            written = lead + " ".join(inline)
        if _block_collection(node):
            stop = _content_line_end(doc, node.end)
            return (
                text[: dash + 1] + written + "".join(nl + line for line in following) + text[stop:]
            )
        stop = self._inline_end(doc, doc.line_of(dash), node)
        rest_end = doc.line_end(stop)
        more = "".join(nl + line for line in following)
        return text[: dash + 1] + written + text[stop:rest_end] + more + text[rest_end:]

    # -- add a key or item ----------------------------------------------------------------
    def add(self, doc: Document, op: Op, found: Found) -> _Result:
        parent, style, nl, text = found.parent, self.style, self.nl, doc.text
        new_path = (*found.parent_path, found.key)
        if parent is None:
            lines = entry_lines(key_text(str(found.key), style) + ":", found.value, 0, style)
            body = nl.join(lines)
            if not text:
                return body + nl, [], [(new_path, "whole")]
            if text.endswith("\n"):
                return text + body + nl, [], [(new_path, "whole")]
            return text + nl + body, [], [(new_path, "whole")]
        if parent.flow:
            touched = [(found.parent_path, "whole")]
            if parent.kind == "map":
                item = (
                    f"{key_text(str(found.key), style, flow=True)}: {flow_text(found.value, style)}"
                )
                children = [e.value for e in parent.entries]
            else:
                item = flow_text(found.value, style)
                children = parent.items
            if children:
                at = children[-1].end
                return text[:at] + ", " + item + text[at:], touched, touched
            at = parent.content + 1
            return text[:at] + item + text[at:], touched, touched
        owner = _owner_col(doc, found.holder)
        if parent.kind == "map":
            col = doc.col_of(parent.entries[0].key.start)
            lines = entry_lines(
                " " * col + key_text(str(found.key), style) + ":", found.value, col, style
            )
        else:
            first = parent.items[0]
            col = doc.col_of(dash_of(doc, first))
            gap = first.start - dash_of(doc, first)
            if doc.line_of(first.start) == doc.line_of(dash_of(doc, first)) and gap > 0:
                style = replace(style, dash_gap=gap)
            lines = block_lines([found.value], col, style)
        at = _insertion_point(doc, parent, col, owner)
        return (
            text[:at] + "".join(nl + line for line in lines) + text[at:],
            [],
            [(new_path, "whole")],
        )

    # -- unset a key or item --------------------------------------------------------------
    def unset(self, doc: Document, op: Op, found: Found) -> _Result:
        parent = found.parent
        assert parent is not None
        text = doc.text
        node = found.entry.value if found.entry is not None else parent.items[found.item]
        self._check_anchors(doc, node, op.path, keep_own=False)
        if parent.flow:
            return (
                self._unset_flow(doc, found),
                [(found.parent_path, "whole")],
                [(found.parent_path, "whole")],
            )
        old = [(op.path, "whole")]
        start = found.entry.key.start if found.entry is not None else dash_of(doc, node)
        line_start = doc.line_starts[doc.line_of(start)]
        end = _content_line_end(doc, node.end)
        siblings = parent.entries if parent.kind == "map" else parent.items
        alone = len(siblings) == 1
        if text[line_start:start].strip(" ") != "":
            # The first key of a list item written on its dash line (`- name: x`): the
            # item's lines change.
            keyline = [(found.parent_path, "whole")]
            if alone:
                empty = "{}" if parent.kind == "map" else "[]"
                return text[:start] + empty + text[end:], old + keyline, keyline
            following = siblings[1]
            nxt = following.key.start if isinstance(following, Entry) else dash_of(doc, following)
            return text[:start] + text[nxt:], old + keyline, keyline
        after = _next_line(doc, end)
        if after == len(text) and not text.endswith("\n") and line_start > 0:
            # The last line of a file without a final newline: take the break before it.
            before = line_start - (2 if text[line_start - 2 : line_start] == "\r\n" else 1)
            new = text[:before] + text[end:]
        else:
            new = text[:line_start] + text[after:]
        if not alone or not found.parent_path:
            return new, old, []
        # The mapping or list is empty now: its key stays, with `{}` or `[]`.
        empty = " {}" if parent.kind == "map" else " []"
        at = self._empty_at(doc, found, parent)
        keyline = [(found.parent_path, "key")]
        if at <= line_start:
            return new[:at] + empty + new[at:], old + keyline, keyline
        raise NotExact("cannot empty this collection exactly", layer=self.layer)

    def _empty_at(self, doc: Document, found: Found, parent: DNode) -> int:
        holder, entry, index = found.holder
        tokens, end = _props(doc, parent)
        if tokens:
            return end
        if entry is not None:
            return _colon_end(doc, entry.key, self.layer)
        assert holder is not None
        return dash_of(doc, holder.items[index]) + 1

    def _unset_flow(self, doc: Document, found: Found) -> str:
        parent, text = found.parent, doc.text
        assert parent is not None
        if parent.kind == "map":
            starts = [e.key.start for e in parent.entries]
            ends = [e.value.end for e in parent.entries]
            assert found.entry is not None
            i = parent.entries.index(found.entry)
        else:
            starts = [n.start for n in parent.items]
            ends = [n.end for n in parent.items]
            i = found.item
        if i + 1 < len(starts):
            return text[: starts[i]] + text[starts[i + 1] :]
        if i > 0:
            return text[: ends[i - 1]] + text[ends[i] :]
        return text[: starts[i]] + text[ends[i] :]

    def _check_anchors(self, doc: Document, node: DNode, path: KeyPath, keep_own: bool) -> None:
        """Refuse to remove an anchor that an alias outside the removed text uses."""
        seen: set[int] = set()
        stack = [node]
        while stack:
            each = stack.pop()
            if id(each) in seen or each.kind == "alias":
                continue
            seen.add(id(each))
            if each.anchor and not (keep_own and each is node):
                outside = [
                    at for at in doc.aliases.get(each.anchor, []) if not node.start <= at < node.end
                ]
                if outside:
                    line = doc.line_of(outside[0]) + 1
                    raise EditRefused(
                        f"{format_path(path)} holds the anchor &{each.anchor}, which "
                        f"{len(outside)} alias(es) use (the first at line {line})",
                        layer=self.layer,
                        key=format_path(path),
                        source=Source(
                            self.layer, doc.line_of(each.start) + 1, doc.col_of(each.start) + 1
                        ),
                        hint="rewrite those aliases first, or edit the keys inside the anchor",
                    )
            stack += [e.value for e in each.entries] + each.items
