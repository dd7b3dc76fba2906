"""YAML bytes to a located tree: YAML 1.2 core scalars, duplicate keys refused, gitconf's tags.

Parsing reads libyaml's events (`yaml.cyaml.CParser`) and builds the located tree from them
directly (core/build.py), keeping every value's mark, so each value knows its file, line and
column. PyYAML's own constructors are never used: they follow YAML 1.1 (`yes` is a boolean
there) and silently keep the last of duplicate keys. Nor is its composer: a composed node
tree holds two mark objects per value, three times the memory of the located tree, and is
walked by recursion.
"""

from __future__ import annotations

import re

import yaml
from yaml.cyaml import CParser  # type: ignore[attr-defined]

from gitconf.core.build import ALIAS_BUDGET, MAX_DEPTH, Builder, Refused
from gitconf.core.model import Node
from gitconf.core.scalars import MAX_INT_DIGITS, resolve_plain
from gitconf.errors import Problem, Source

__all__ = ["ALIAS_BUDGET", "MAX_DEPTH", "MAX_INT_DIGITS", "parse_yaml", "resolve_plain"]

# A run of opening brackets longer than MAX_DEPTH: libyaml scans it ahead of the events it
# gives (each `[` may start a key), so it refuses 1,000 levels of its own before the builder
# has counted past MAX_DEPTH.
_DENSE = re.compile(r"(?:[\[{][ \t\r\n]*){" + str(MAX_DEPTH + 1) + "}")


def _dense_nesting(path: str, data: bytes) -> Problem | None:
    """The nesting problem of a document that libyaml refused inside a dense run of brackets.

    The document is read again up to the bracket that passes MAX_DEPTH, so the problem is the
    one the builder gives, at the same place, whatever libyaml's own limit and message.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    run = _DENSE.search(text)
    if run is None:
        return None
    builder = Builder(path)
    try:
        parser = CParser(text[: run.end()])
        try:
            builder.build(parser)
        finally:
            parser.dispose()
    except Refused as exc:
        return exc.problem
    except yaml.YAMLError:
        return None
    return None


def parse_yaml(path: str, data: bytes) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML file into a located tree whose top level is a mapping, or its problems."""
    builder = Builder(path)
    try:
        parser = CParser(data)
        try:
            builder.build(parser)
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as exc:
        deeper = _dense_nesting(path, data)
        if deeper is not None:
            return None, [deeper]
        mark = exc.problem_mark or exc.context_mark
        where = Source(path, mark.line + 1, mark.column + 1) if mark else Source(path)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        return None, [Problem(where, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(Source(path), f"cannot read YAML: {exc}")]
    except Refused as exc:
        return None, [*builder.problems, exc.problem]
    if builder.problems:
        return None, builder.problems
    tree = builder.root
    if not builder.root_kind:
        return Node("map", {}, Source(path)), []
    if tree is None or tree.kind != "map":
        found = "a list" if builder.root_kind == "seq" else "a single value"
        return None, [
            Problem(builder.root_source, f"the top level must be a mapping of keys, found {found}")
        ]
    return tree, []
