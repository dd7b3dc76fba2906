"""libyaml's events to a located tree, with gitconf's limits on nesting and aliases.

The open mappings and lists are an explicit stack, so nesting is a limit with a message
(MAX_DEPTH), never a RecursionError, and an alias shares the located tree of its anchor
while paying for its expanded size out of ALIAS_BUDGET.
"""

from __future__ import annotations

import math
from sys import intern
from typing import Any, NamedTuple

from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from gitconf.core.model import TAG_APPEND, TAG_DELETE, KeyPath, Node, format_path
from gitconf.core.scalars import (
    GITCONF_TAGS,
    MAP,
    SEQ,
    Refusal,
    resolve_plain,
    tagged_scalar,
    unserved_number,
)
from gitconf.errors import Problem, Source

__all__ = ["ALIAS_BUDGET", "MAX_DEPTH", "Builder", "Refused"]

# What the aliases of one file may expand to, in scalar characters plus values (a value
# reached through an alias costs its anchor's whole expanded size, every time): generous for
# real anchors and merge keys, far below a "billion laughs" document or a small file that
# aliases a big anchor thousands of times.
ALIAS_BUDGET = 4 * 1024 * 1024

# Mappings and lists nested one in another, the top-level mapping being the first: deeper than
# any real config, and shallow enough that the merge, the schema check (jsonschema recurses
# about six frames per level) and the JSON encoding stay well inside Python's recursion limit.
MAX_DEPTH = 128


class Refused(Exception):
    """A document gitconf stops reading at once (too deep, too many aliases, two documents)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class _Anchor(NamedTuple):
    node: Node | None  # None: refused (its problems are reported), or a key not yet resolved
    size: int  # the expanded size an alias to it costs
    scalar: ScalarEvent | None  # a scalar's event: it may be aliased as a key, or as a value
    line: int


class _Open:
    """A mapping or list whose events are being read."""

    __slots__ = (
        "anchor",
        "count",
        "first_line",
        "is_key",
        "items",
        "key",
        "kind",
        "merge_list",
        "merged",
        "merging",
        "muted",
        "size",
        "skip",
        "source",
        "tag",
        "valid",
    )

    def __init__(self, kind: str, source: Source, tag: str | None, anchor: str | None) -> None:
        self.kind = kind
        self.source = source
        self.tag = tag
        self.anchor = anchor
        self.items: Any = {} if kind == "map" else []
        self.size = 1
        self.count = 0  # a list: the index of the item being read
        self.key: str | None = None  # a mapping: the key whose value is being read
        self.first_line: dict[str, int] = {}
        self.merged: dict[str, Node] = {}
        self.merging = False  # the value being read is that of a merge key `<<`
        self.merge_list = False  # this list is the value of a merge key `<<`
        self.skip = False  # the value being read is dropped (after a duplicate or bad key)
        self.is_key = False  # this mapping or list is itself a key (a problem)
        self.valid = True
        self.muted = False


class Builder:
    """The located tree of one document, built from libyaml's events."""

    def __init__(self, path: str) -> None:
        self.path = path  # one string shared by every Source of the file
        self.problems: list[Problem] = []
        self.budget = ALIAS_BUDGET
        self.stack: list[_Open] = []
        self.anchors: dict[str, _Anchor] = {}
        self.opened: dict[str, int] = {}  # anchors of open mappings and lists, and their line
        self.muted = 0  # > 0 while reading what is dropped: its problems are not reported
        self.root: Node | None = None
        self.root_kind = ""
        self.root_source = Source(path)

    def source(self, mark: Any) -> Source:
        return Source(self.path, mark.line + 1, mark.column + 1)

    def key_path(self) -> KeyPath:
        """The key path of the value being read."""
        path: list[str | int] = []
        for frame in self.stack:
            if frame.kind == "seq":
                path.append(frame.count)
            elif frame.key is not None and not frame.merging:
                path.append(frame.key)
        return tuple(path)

    def problem(
        self, source: Source, message: str, path: KeyPath | None = None, hint: str = ""
    ) -> None:
        if not self.muted:
            where = self.key_path() if path is None else path
            self.problems.append(Problem(source, message, format_path(where), hint))

    def build(self, parser: Any) -> None:
        get = parser.get_event
        get()  # the stream's start
        event = get()
        if type(event) is StreamEndEvent:
            return
        stack, path, isfinite = self.stack, self.path, math.isfinite
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                # The common case inline: an untagged scalar without an anchor, in a mapping or
                # list being read, that needs no problem; anything else goes to scalar().
                if stack and event.tag is None and event.anchor is None:
                    top = stack[-1]
                    text = event.value
                    if top.kind == "map":
                        key = top.key
                        if top.skip or top.merging:
                            pass
                        elif key is None:
                            if text not in top.first_line and text != "<<":
                                # Keys repeat across files (host, port, ...): one string each
                                # saves a sixth of a repository's located trees.
                                text = intern(text)
                                top.first_line[text] = event.start_mark.line + 1
                                top.key = text
                                top.size += len(text) + 1
                                continue
                        else:
                            value = resolve_plain(text) if event.implicit[0] else text
                            if type(value) is not float or isfinite(value):
                                mark = event.start_mark
                                source = Source(path, mark.line + 1, mark.column + 1)
                                top.items[key] = Node("scalar", value, source)
                                top.key = None
                                top.size += len(text) + 1
                                continue
                    else:
                        value = resolve_plain(text) if event.implicit[0] else text
                        if type(value) is not float or isfinite(value):
                            mark = event.start_mark
                            source = Source(path, mark.line + 1, mark.column + 1)
                            top.items.append(Node("scalar", value, source))
                            top.count += 1
                            top.size += len(text) + 1
                            continue
                self.scalar(event)
            elif kind is MappingStartEvent:
                self.open(event, "map")
            elif kind is SequenceStartEvent:
                self.open(event, "seq")
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self.close()
            elif kind is AliasEvent:
                self.alias(event)
            elif kind is DocumentEndEvent:
                break
        event = get()
        if type(event) is DocumentStartEvent:
            raise Refused(
                Problem(
                    self.source(event.start_mark),
                    "YAML syntax error: a file holds one YAML document; found a second one (`---`)",
                )
            )

    # -- what arrives ---------------------------------------------------------------------
    def scalar(self, event: Any) -> None:
        stack = self.stack
        top = stack[-1] if stack else None
        size = len(event.value) + 1
        if top is not None and top.kind == "map" and top.key is None and not top.skip:
            mark = event.start_mark
            line = mark.line + 1
            if event.anchor is not None:
                self.define(event.anchor, _Anchor(None, size, event, line), mark)
            plain = event.tag is None and event.implicit[0]
            self.key(top, event.value, plain, Source(self.path, line, mark.column + 1), line)
            return
        node = self.scalar_node(event)
        if event.anchor is not None:
            anchor = _Anchor(node, size, event, event.start_mark.line + 1)
            self.define(event.anchor, anchor, event.start_mark)
        self.deliver(node, size, self.source(event.start_mark) if node is None else node.source)

    def open(self, event: Any, kind: str) -> None:
        source = self.source(event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            raise Refused(
                Problem(
                    source,
                    f"the document nests more than {MAX_DEPTH} levels of mappings and lists",
                    format_path(self.key_path()),
                    f"gitconf reads at most {MAX_DEPTH} levels; flatten the deepest part",
                )
            )
        top = self.stack[-1] if self.stack else None
        is_key = top is not None and top.kind == "map" and top.key is None and not top.skip
        tag = event.tag
        ours: str | None = None
        expected = MAP if kind == "map" else SEQ
        if tag is None or tag == "!":
            yaml_tag = expected
        elif tag in GITCONF_TAGS:
            ours, yaml_tag = GITCONF_TAGS[tag], expected
        else:
            yaml_tag = tag
        frame = _Open(kind, source, ours, event.anchor)
        frame.is_key = is_key
        if not is_key:
            if ours == TAG_APPEND and kind == "map":
                self.problem(source, "!append applies to a list", hint="write !append [item, ...]")
                frame.valid = False
            elif ours == TAG_DELETE:
                self.problem(source, "!delete takes no value", hint="write `key: !delete`")
                frame.valid = False
            elif yaml_tag != expected:
                what = "a mapping" if kind == "map" else "a list"
                self.problem(source, f"unsupported tag {tag!r} on {what}")
                frame.valid = False
            if kind == "seq" and top is not None and top.merging:
                frame.merge_list = True
        if is_key or not frame.valid:
            # What is inside a refused value or a key is not read as config.
            frame.muted = True
            self.muted += 1
        if event.anchor is not None:
            self.define(event.anchor, None, event.start_mark)
        if top is None:
            self.root_kind, self.root_source = kind, source
        self.stack.append(frame)

    def close(self) -> None:
        frame = self.stack.pop()
        if frame.muted:
            self.muted -= 1
        node: Node | None = None
        if frame.valid:
            if frame.kind == "map":
                items = frame.items
                if frame.merged:
                    items = {**{k: v for k, v in frame.merged.items() if k not in items}, **items}
                node = Node("map", items, frame.source, frame.tag)
            else:
                node = Node("seq", tuple(frame.items), frame.source, frame.tag)
        if frame.anchor is not None:
            self.opened.pop(frame.anchor, None)
            self.anchors[frame.anchor] = _Anchor(node, frame.size, None, frame.source.line)
        if frame.is_key:
            self.key(self.stack[-1], None, False, frame.source, frame.source.line)
        else:
            self.deliver(node, frame.size, frame.source)

    def alias(self, event: Any) -> None:
        name = event.anchor
        source = self.source(event.start_mark)
        top = self.stack[-1] if self.stack else None
        as_key = top is not None and top.kind == "map" and top.key is None and not top.skip
        anchor = self.anchors.get(name)
        if name in self.opened:
            self.problem(source, "recursive alias", hint="an anchor cannot contain itself")
            anchor = None
        elif anchor is None:
            self.problem(
                source,
                f"alias *{name} names no anchor before it",
                hint=f"define &{name} above its first use",
            )
        if anchor is None:
            if as_key:
                assert top is not None
                top.skip = True
                self.muted += 1
            else:
                self.deliver(None, 1, source)
            return
        self.budget -= anchor.size
        if self.budget < 0:
            raise Refused(
                Problem(
                    source,
                    f"the aliases of this file expand to more than {ALIAS_BUDGET:,} characters "
                    "and values (gitconf's alias budget)",
                    format_path(self.key_path()),
                    "refused as a possible 'billion laughs' document; "
                    "write the values out, or use fewer or smaller anchors",
                )
            )
        if as_key:
            assert top is not None
            event = anchor.scalar
            if event is None:
                self.key(top, None, False, source, anchor.line)
            else:
                plain = event.tag is None and event.implicit[0]
                self.key(top, event.value, plain, self.source(event.start_mark), anchor.line)
            return
        node = anchor.node
        if node is None and anchor.scalar is not None:
            # A scalar first read as a key, now a value: resolved once, at its own place.
            node = self.scalar_node(anchor.scalar)
            self.anchors[name] = anchor._replace(node=node)
        self.deliver(node, anchor.size, source if node is None else node.source)

    def define(self, name: str, anchor: _Anchor | None, mark: Any) -> None:
        first = self.anchors.get(name)
        line = first.line if first is not None else self.opened.get(name)
        if line is not None:
            self.problem(
                self.source(mark),
                f"anchor &{name} is defined twice (first at line {line})",
                hint="give each anchor its own name",
            )
        if anchor is None:
            self.opened[name] = mark.line + 1
        else:
            self.anchors[name] = anchor

    def key(self, frame: _Open, text: str | None, plain: bool, source: Source, line: int) -> None:
        """A key of the mapping being read has arrived (text None: a mapping or list)."""
        if text is None:
            frame.size += 1
            self.problem(source, "a key must be a plain string, not a mapping or list")
        elif text in frame.first_line:
            frame.size += len(text) + 1
            self.problem(
                source,
                f"duplicate key {text!r} (first defined at line {frame.first_line[text]})",
                (*self.key_path(), text),
                "a mapping may set each key once",
            )
        elif text == "<<" and plain:
            frame.size += 3
            frame.key, frame.merging = text, True
            return
        else:
            frame.size += len(text) + 1
            frame.first_line[text] = line
            frame.key = text
            return
        frame.skip = True
        self.muted += 1

    def deliver(self, node: Node | None, size: int, source: Source) -> None:
        """A value has been read: it goes into the mapping or list being read, or is the root."""
        if not self.stack:
            self.root = node
            if not self.root_kind:
                self.root_kind, self.root_source = "scalar", source
            return
        top = self.stack[-1]
        top.size += size
        if top.kind == "seq":
            if node is not None:
                if node.tag is not None and not top.merge_list:
                    self.problem(node.source, f"!{node.tag} applies to a mapping value")
                top.items.append(node)
            top.count += 1
            return
        if top.skip:
            top.skip = False
            self.muted -= 1
        elif top.merging:
            self.merge_key(top, node, source)
            top.merging = False
        elif node is not None:
            assert top.key is not None
            top.items[top.key] = node
        top.key = None

    def merge_key(self, frame: _Open, value: Node | None, source: Source) -> None:
        sources = value.value if value is not None and value.kind == "seq" else (value,)
        for each in sources:
            if each is None or each.kind != "map":
                where = source if each is None else each.source
                self.problem(where, "a merge key `<<` takes a mapping or a list of mappings")
                continue
            for key, child in each.value.items():
                frame.merged.setdefault(key, child)

    # -- scalars ---------------------------------------------------------------------------
    def scalar_node(self, event: Any) -> Node | None:
        text: str = event.value
        tag = event.tag
        mark = event.start_mark
        source = Source(self.path, mark.line + 1, mark.column + 1)
        if tag is None:
            if not event.implicit[0]:
                return Node("scalar", text, source)
            value = resolve_plain(text)
            if type(value) is not float or math.isfinite(value):
                return Node("scalar", value, source)
            found: tuple[Any, str | None] | Refusal = unserved_number(text)
        else:
            # libyaml reports a tagged plain scalar's style as "" (PyYAML's parser: None).
            plain = event.implicit[0] if tag == "!" else not event.style
            found = tagged_scalar(text, tag, plain)
        if isinstance(found, Refusal):
            self.problem(source, found.message, hint=found.hint)
            return None
        return Node("scalar", found[0], source, found[1])
