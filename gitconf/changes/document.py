"""A layer file's YAML as a document: every node with its place in the text, for exact edits.

The document is built from libyaml's events, the very events gitconf's parser reads
(core/build.py), so a node's place in the text is where gitconf reads its value. It keeps what a
located tree drops: where each value's text starts and ends, its anchor, tag and style, aliases
as links to their anchor, and merge keys (`<<`) as entries. `evaluate` reads a document as
gitconf's parser does; the edit checks that reading against the parser's own before it trusts
the document (a differential check: any disagreement refuses the edit).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.cyaml import CParser  # type: ignore[attr-defined]
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from gitconf.core.model import Node
from gitconf.core.scalars import GITCONF_TAGS, resolve_plain, tagged_scalar

__all__ = ["DNode", "Document", "Entry", "Shape", "compose", "evaluate", "shape_of"]

MERGE_KEY = "<<"


@dataclass(eq=False)
class DNode:
    """One node of the document.

    kind is "map", "seq", "scalar", "alias", or "value" (a JSON value an edit put there; it
    has no text). `start` is where its text starts (anchor and tag included), `content` where
    its content starts (after them) and `end` just after its content's last character
    (a block collection ends with its last child; a block scalar with its last non-blank line,
    or its trailing blank lines when it keeps them, `|+`).
    """

    kind: str
    start: int = 0
    content: int = 0
    end: int = 0
    flow: bool = False
    style: str = ""  # a scalar: "" plain, "'", '"', "|" or ">"
    tag: str | None = None  # as libyaml gives it: `!!int` is tag:yaml.org,2002:int
    plain: bool = True  # libyaml's implicit[0]: a plain scalar with no tag
    anchor: str | None = None
    text: str = ""  # a scalar's text
    entries: list[Entry] = field(default_factory=list)  # a map
    items: list[DNode] = field(default_factory=list)  # a seq
    target: DNode | None = None  # an alias: the node its anchor names
    value: Any = None  # a "value": the JSON value


@dataclass(eq=False)
class Entry:
    """A key of a mapping and its value."""

    key: DNode
    value: DNode

    @property
    def name(self) -> str:
        """The key's text (gitconf reads every key as its text)."""
        return self.key.text

    @property
    def is_merge(self) -> bool:
        """Whether this is a merge key `<<`."""
        return self.key.text == MERGE_KEY and self.key.plain and self.key.tag is None


@dataclass
class Document:
    """A parsed layer file: its text, its root node (None for an empty document) and lines."""

    text: str
    root: DNode | None
    line_starts: list[int]
    anchors: dict[str, DNode]
    aliases: dict[str, list[int]]  # anchor name -> where each alias of it is (text index)

    def line_of(self, index: int) -> int:
        """The 0-based line of a text index."""
        return bisect.bisect_right(self.line_starts, index) - 1

    def col_of(self, index: int) -> int:
        """The 0-based column of a text index."""
        return index - self.line_starts[self.line_of(index)]

    def line_end(self, index: int) -> int:
        """The index of the line break ending the line of index (or the text's end)."""
        line = self.line_of(index)
        if line + 1 < len(self.line_starts):
            stop = self.line_starts[line + 1] - 1
            if stop > 0 and self.text[stop - 1] == "\r":
                stop -= 1
            return stop
        return len(self.text)


class ComposeError(Exception):
    """libyaml refused the text (the edit reports the file's own parse problems instead)."""


def compose(text: str) -> Document:
    """The document of one YAML text (one document; gitconf refuses more)."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    anchors: dict[str, DNode] = {}
    aliases: dict[str, list[int]] = {}
    stack: list[tuple[DNode, list[DNode]]] = []  # open collections and their children so far
    root: DNode | None = None
    try:
        parser = CParser(text)
        try:
            while True:
                event: Any = parser.get_event()
                kind = type(event)
                if kind is StreamEndEvent:
                    break
                node: DNode | None = None
                if kind is ScalarEvent:
                    node = _scalar(text, event)
                elif kind is AliasEvent:
                    target = anchors.get(event.anchor)
                    if target is None:
                        raise ComposeError(f"alias *{event.anchor} names no anchor")
                    node = DNode(
                        "alias",
                        event.start_mark.index,
                        event.start_mark.index,
                        event.end_mark.index,
                        target=target,
                    )
                    aliases.setdefault(event.anchor, []).append(event.start_mark.index)
                elif kind is MappingStartEvent or kind is SequenceStartEvent:
                    opened = DNode(
                        "map" if kind is MappingStartEvent else "seq",
                        event.start_mark.index,
                        flow=bool(event.flow_style),
                        tag=event.tag if event.tag not in (None, "!") else None,
                        anchor=event.anchor,
                    )
                    opened.content = _after_properties(text, opened.start, opened)
                    if event.anchor is not None:
                        anchors[event.anchor] = opened
                    stack.append((opened, []))
                    continue
                elif kind is MappingEndEvent or kind is SequenceEndEvent:
                    node, children = stack.pop()
                    _close(node, children, event.end_mark.index)
                else:
                    continue
                if node.kind == "scalar" and node.anchor is not None:
                    anchors[node.anchor] = node
                if stack:
                    stack[-1][1].append(node)
                else:
                    root = node
        finally:
            parser.dispose()
    except yaml.YAMLError as exc:
        raise ComposeError(str(exc)) from None
    return Document(text, root, starts, anchors, aliases)


def _scalar(text: str, event: Any) -> DNode:
    node = DNode(
        "scalar",
        event.start_mark.index,
        end=event.end_mark.index,
        style=event.style or "",
        tag=event.tag,
        plain=bool(event.implicit[0]) and event.tag is None,
        anchor=event.anchor,
        text=event.value,
    )
    if event.tag == "!":
        node.plain = bool(event.implicit[0])
    node.content = _after_properties(text, node.start, node)
    if node.style in ("|", ">"):
        header_end = text.find("\n", node.content)
        keep = "+" in text[node.content : header_end if header_end >= 0 else len(text)]
        if not keep:
            body = text[node.content : node.end].rstrip(" \t\r\n")
            node.end = node.content + len(body)
    if node.content > node.end:  # an empty scalar after its properties (`key: !delete`)
        node.content = node.end
    return node


def _after_properties(text: str, index: int, node: DNode) -> int:
    """Where the content starts: after the node's anchor and tag, and the blanks that follow."""
    if node.anchor is None and node.tag is None:
        return index
    pos = index
    while pos < len(text) and text[pos] in "&!":
        if text.startswith("!<", pos):
            pos = text.index(">", pos) + 1
        else:
            while pos < len(text) and text[pos] not in " \t\r\n,[]{}":
                pos += 1
        pos = _skip_blanks(text, pos)
    return pos


def _skip_blanks(text: str, pos: int) -> int:
    """Past spaces, line breaks and comments."""
    while pos < len(text):
        ch = text[pos]
        if ch in " \t\r\n":
            pos += 1
        elif ch == "#":
            stop = text.find("\n", pos)
            pos = len(text) if stop < 0 else stop
        else:
            break
    return pos


def _close(node: DNode, children: list[DNode], end_index: int) -> None:
    if node.kind == "map":
        node.entries = [Entry(children[i], children[i + 1]) for i in range(0, len(children), 2)]
    else:
        node.items = children
    if node.flow:
        node.end = end_index
    elif children:
        node.end = children[-1].end
    else:
        node.end = node.content


# -- reading a document as gitconf's parser reads it --------------------------------------

# A value's shape: what gitconf's parser makes of it, as plain data that compares exactly
# (1, 1.0 and True differ; key order counts; so do merge tags).
Shape = tuple[Any, ...]


def shape_of(node: Node) -> Shape:
    """The shape of a located tree from gitconf's parser."""
    if node.kind == "map":
        return ("map", node.tag, tuple((k, shape_of(v)) for k, v in node.value.items()))
    if node.kind == "seq":
        return ("seq", node.tag, tuple(shape_of(v) for v in node.value))
    return ("scalar", node.tag, type(node.value).__name__, node.value)


def value_shape(value: Any, tag: str | None = None) -> Shape:
    """The shape of a JSON value (with a merge tag on top, if given)."""
    if isinstance(value, dict):
        return ("map", tag, tuple((k, value_shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("seq", tag, tuple(value_shape(v) for v in value))
    return ("scalar", tag, type(value).__name__, value)


class NotModelled(Exception):
    """A document the edit cannot read as gitconf does (the edit refuses it)."""


def evaluate(node: DNode | None) -> Shape:
    """The shape gitconf's parser gives the document whose root is node."""
    if node is None:
        return ("map", None, ())
    return _evaluate(node)


def _evaluate(node: DNode) -> Shape:
    if node.kind == "alias":
        assert node.target is not None
        return _evaluate(node.target)
    if node.kind == "value":
        return value_shape(node.value, GITCONF_TAGS.get(node.tag) if node.tag else None)
    ours = GITCONF_TAGS.get(node.tag) if node.tag is not None else None
    if node.kind == "seq":
        return ("seq", ours, tuple(_evaluate(item) for item in node.items))
    if node.kind == "map":
        explicit: dict[str, Shape] = {}
        merged: dict[str, Shape] = {}
        for entry in node.entries:
            if entry.is_merge:
                sources = entry.value.target if entry.value.kind == "alias" else entry.value
                assert sources is not None
                for source in sources.items if sources.kind == "seq" else [sources]:
                    found = _evaluate(source)
                    if found[0] != "map":
                        raise NotModelled("a merge key `<<` takes mappings")
                    for key, child in found[2]:
                        merged.setdefault(key, child)
            else:
                explicit[entry.name] = _evaluate(entry.value)
        items = {**{k: v for k, v in merged.items() if k not in explicit}, **explicit}
        return ("map", ours, tuple(items.items()))
    return _scalar_shape(node)


def _scalar_shape(node: DNode) -> Shape:
    if node.tag is None:
        value = resolve_plain(node.text) if node.plain else node.text
        if isinstance(value, float) and not math.isfinite(value):
            raise NotModelled(f"{node.text!r} is not a number gitconf serves")
        return ("scalar", None, type(value).__name__, value)
    found = tagged_scalar(node.text, node.tag, node.plain if node.tag == "!" else not node.style)
    if not isinstance(found, tuple):
        raise NotModelled(found.message)
    value, ours = found
    return ("scalar", ours, type(value).__name__, value)


# -- the file's style ---------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How the file writes what an edit adds: indentation, quotes and line breaks."""

    indent: int = 2  # a nested mapping's keys, from their parent key
    seq_indent: int = 2  # a block list's dashes, from the key that holds it (0: not indented)
    dash_gap: int = 2  # from a dash to its item's content
    quote: str = '"'  # the quote a string that needs one gets
    newline: str = "\n"
    final_newline: bool = True


def detect_style(doc: Document) -> Style:
    """The file's most common indentation, list style and quote, and its line breaks."""
    indents: Counter[int] = Counter()
    seq_indents: Counter[int] = Counter()
    gaps: Counter[int] = Counter()
    quotes: Counter[str] = Counter()
    seen: set[int] = set()

    def walk(node: DNode) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.kind == "map":
            for entry in node.entries:
                value = entry.value
                if not value.flow and value.kind in ("map", "seq") and value.end > value.content:
                    delta = doc.col_of(value.content) - doc.col_of(entry.key.start)
                    if doc.line_of(value.content) != doc.line_of(entry.key.start):
                        (indents if value.kind == "map" else seq_indents)[delta] += 1
                if entry.key.style in ("'", '"'):
                    quotes[entry.key.style] += 1
                walk(value)
        elif node.kind == "seq":
            for item in node.items:
                if not node.flow and item.kind != "alias":
                    dash = doc.text.rfind("-", 0, item.start)
                    if dash >= 0 and doc.line_of(dash) == doc.line_of(item.start):
                        gaps[item.start - dash] += 1
                walk(item)
        elif node.kind == "scalar" and node.style in ("'", '"'):
            quotes[node.style] += 1

    if doc.root is not None:
        walk(doc.root)
    crlf = doc.text.count("\r\n")
    newline = "\r\n" if crlf and crlf == doc.text.count("\n") else "\n"
    indent = _most_common(indents, 2)
    return Style(
        indent=indent,
        seq_indent=_most_common(seq_indents, indent),
        dash_gap=_most_common(gaps, 2),
        quote=_most_common(quotes, '"'),
        newline=newline,
        final_newline=doc.text.endswith("\n") or not doc.text,
    )


def _most_common(counts: Counter[Any], default: Any) -> Any:
    if not counts:
        return default
    best = max(counts.values())
    # Ties go to the default when it is among them, else to the smallest: stable, not random.
    tied = sorted(k for k, n in counts.items() if n == best)
    return default if default in tied else tied[0]
