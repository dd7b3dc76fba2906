"""YAML bytes to a located tree: YAML 1.2 core scalars, duplicate keys refused, gitconf's tags.

Parsing uses libyaml's composer (`yaml.cyaml.CParser`) and a walk that keeps every node's
mark, so each value knows its file, line and column. PyYAML's own constructors are never
used: they follow YAML 1.1 (`yes` is a boolean there) and silently keep the last of
duplicate keys.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.cyaml import CParser  # type: ignore[attr-defined]
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from gitconf.core.model import TAG_APPEND, TAG_DELETE, TAG_REPLACE, KeyPath, Node, format_path
from gitconf.errors import Problem, Source

__all__ = ["ALIAS_BUDGET", "parse_yaml"]

# Nodes that may be reached through aliases in one file: generous for real anchors and
# merge keys, far below what a "billion laughs" document expands to.
ALIAS_BUDGET = 100_000

_PLAIN = "tag:gitconf:plain"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_GITCONF_TAGS = {"!delete": TAG_DELETE, "!replace": TAG_REPLACE, "!append": TAG_APPEND}

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1023-core-schema).
_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"([-+]?)\.(?:inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)\Z")


class _Resolver(BaseResolver):
    """Marks plain scalars for gitconf's own YAML 1.2 resolution; everything else is a str."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP


class _Composer(CParser, _Resolver):
    def __init__(self, stream: bytes) -> None:
        CParser.__init__(self, stream)
        _Resolver.__init__(self)


# Every non-string of the core schema starts with one of these (or is empty): most plain
# scalars of a config are names and URLs, which this one test leaves as strings.
_NON_STRING_START = frozenset("0123456789+-.~tTfFnN")


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text and text[0] not in _NON_STRING_START:
        return text
    if _NULL_RE.match(text):
        return None
    if _BOOL_RE.match(text):
        return text[0] in "tT"
    if _INT_RE.match(text):
        try:
            return int(text, 10)
        except ValueError:  # past Python's digit limit: a float (infinite), refused by the walk
            return float(text)
    if _OCT_RE.match(text):
        return int(text[2:], 8)
    if _HEX_RE.match(text):
        return int(text[2:], 16)
    if _FLOAT_RE.match(text):
        return float(text)
    if m := _INF_RE.match(text):
        return -math.inf if m.group(1) == "-" else math.inf
    if _NAN_RE.match(text):
        return math.nan
    return text


class _Walker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.budget = ALIAS_BUDGET
        self.active: set[int] = set()
        self.seen: set[int] = set()

    def source(self, node: yaml.Node) -> Source:
        mark = node.start_mark
        return Source(self.path, mark.line + 1, mark.column + 1)

    def problem(self, node: yaml.Node, message: str, path: KeyPath, hint: str = "") -> None:
        self.problems.append(Problem(self.source(node), message, format_path(path), hint))

    def walk(self, node: yaml.Node, path: KeyPath) -> Node | None:
        ident = id(node)
        if ident in self.active:
            self.problem(node, "recursive alias", path, "an anchor cannot contain itself")
            return None
        if ident in self.seen:  # reached again through an alias: costs budget
            self.budget -= 1
            if self.budget < 0:
                raise _TooManyAliases(self.source(node))
        self.seen.add(ident)
        self.active.add(ident)
        try:
            return self._walk(node, path)
        finally:
            self.active.discard(ident)

    def _walk(self, node: yaml.Node, path: KeyPath) -> Node | None:
        tag: str | None = None
        yaml_tag = node.tag
        if yaml_tag in _GITCONF_TAGS:
            tag = _GITCONF_TAGS[yaml_tag]
            if isinstance(node, ScalarNode):
                # libyaml reports a tagged plain scalar's style as "" (PyYAML's parser: None).
                yaml_tag = _PLAIN if not node.style else _STR
            else:
                yaml_tag = _SEQ if isinstance(node, SequenceNode) else _MAP
        if tag == TAG_APPEND and not isinstance(node, SequenceNode):
            self.problem(node, "!append applies to a list", path, "write !append [item, ...]")
            return None
        if tag == TAG_DELETE:
            if not (isinstance(node, ScalarNode) and node.value in ("", "~", "null")):
                self.problem(node, "!delete takes no value", path, "write `key: !delete`")
                return None
            return Node("scalar", None, self.source(node), tag)
        if isinstance(node, MappingNode):
            if yaml_tag != _MAP:
                self.problem(node, f"unsupported tag {node.tag!r} on a mapping", path)
                return None
            return self._mapping(node, path, tag)
        if isinstance(node, SequenceNode):
            if yaml_tag != _SEQ:
                self.problem(node, f"unsupported tag {node.tag!r} on a list", path)
                return None
            items = []
            for index, child in enumerate(node.value):
                item = self.walk(child, (*path, index))
                if item is not None:
                    if item.tag is not None:
                        self.problem(
                            child, f"!{item.tag} applies to a mapping value", (*path, index)
                        )
                    items.append(item)
            return Node("seq", tuple(items), self.source(node), tag)
        assert isinstance(node, ScalarNode)
        value = self._scalar(node, yaml_tag, path)
        if value is _INVALID:
            return None
        return Node("scalar", value, self.source(node), tag)

    def _scalar(self, node: ScalarNode, yaml_tag: str, path: KeyPath) -> Any:
        value = self._resolve(node, yaml_tag, path)
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(
                node,
                f"{node.value!r} is a number JSON cannot carry (NaN, infinity or too large)",
                path,
                "quote it to keep it as a string",
            )
            return _INVALID
        return value

    def _resolve(self, node: ScalarNode, yaml_tag: str, path: KeyPath) -> Any:
        text = node.value
        if yaml_tag == _PLAIN:
            return resolve_plain(text)
        if yaml_tag == _STR:
            return text
        expected = {_INT: int, _FLOAT: float, _BOOL: bool, _NULL: type(None)}.get(yaml_tag)
        if expected is None:
            self.problem(
                node,
                f"unsupported tag {node.tag!r}",
                path,
                "gitconf reads YAML 1.2 core values: strings, numbers, true/false, null",
            )
            return _INVALID
        value = resolve_plain(text)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            self.problem(node, f"{text!r} is not a valid {node.tag}", path)
            return _INVALID
        return value

    def _mapping(self, node: MappingNode, path: KeyPath, tag: str | None) -> Node:
        items: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, "a key must be a plain string, not a mapping or list", path)
                continue
            key = key_node.value
            if key == "<<" and key_node.tag == _PLAIN:
                self._merge_key(value_node, path, merged)
                continue
            if key in first_line:
                self.problem(
                    key_node,
                    f"duplicate key {key!r} (first defined at line {first_line[key]})",
                    (*path, key),
                    "a mapping may set each key once",
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            child = self.walk(value_node, (*path, key))
            if child is not None:
                items[key] = child
        if merged:
            items = {**{k: v for k, v in merged.items() if k not in items}, **items}
        return Node("map", items, self.source(node), tag)

    def _merge_key(self, value: yaml.Node, path: KeyPath, into: dict[str, Node]) -> None:
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            walked = self.walk(source, path) if isinstance(source, MappingNode) else None
            if walked is None:
                self.problem(source, "a merge key `<<` takes a mapping or a list of mappings", path)
                continue
            for key, child in walked.value.items():
                into.setdefault(key, child)


class _TooManyAliases(Exception):
    def __init__(self, source: Source) -> None:
        self.source = source


_INVALID = object()


def parse_yaml(path: str, data: bytes) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML file into a located tree whose top level is a mapping, or its problems."""
    try:
        composer = _Composer(data)
        try:
            root = composer.get_single_node()
        finally:
            composer.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Source(path, mark.line + 1, mark.column + 1) if mark else Source(path)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        if "expected a single document" in what:
            what = "a file holds one YAML document; found a second one (`---`)"
        return None, [Problem(where, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(Source(path), f"cannot read YAML: {exc}")]
    if root is None:
        return Node("map", {}, Source(path)), []
    walker = _Walker(path)
    try:
        tree = walker.walk(root, ())
    except _TooManyAliases as exc:
        return None, [
            Problem(
                exc.source,
                f"aliases expand to more than {ALIAS_BUDGET} nodes",
                hint="refused as a possible 'billion laughs' document",
            )
        ]
    except RecursionError:
        return None, [Problem(walker.source(root), "the document nests too deeply")]
    if walker.problems:
        return None, walker.problems
    if tree is None or tree.kind != "map":
        found = "a list" if isinstance(root, SequenceNode) else "a single value"
        return None, [
            Problem(walker.source(root), f"the top level must be a mapping of keys, found {found}")
        ]
    return tree, []
