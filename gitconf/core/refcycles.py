"""`$ref` cycles that never descend into the config: validating against them would never end.

A `$ref` applies its target to the same value, as `allOf`, `anyOf`, `oneOf`, `not`, `if`,
`then`, `else` and `dependentSchemas` do. A chain of these that comes back to where it began
never reaches a smaller part of the config, so a validator recurses until it runs out of
stack (JSON Schema 2020-12 §9.4.1 leaves such schemas undefined). A cycle through
`properties`, `items` and the other keywords that descend is fine: the config is finite.

Each file's `$ref`s are listed once per blob (`ref_sites`); a check of the whole set
(`find_cycles`) then resolves each distinct reference once and follows, from each target,
only the keywords that apply in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urljoin

from referencing import Registry
from referencing.exceptions import Unresolvable

from gitconf.core.bundle import resource_uri
from gitconf.core.model import KeyPath

__all__ = ["Cycle", "RefSite", "describe", "find_cycles", "ref_sites"]

_IN_PLACE_ONE = frozenset({"not", "if", "then", "else"})
_IN_PLACE_MANY = frozenset({"allOf", "anyOf", "oneOf"})
_IN_PLACE_NAMED = frozenset({"dependentSchemas"})
_ONE = _IN_PLACE_ONE | {"additionalProperties", "contains", "items", "propertyNames"}
_ONE |= {"unevaluatedItems", "unevaluatedProperties", "contentSchema"}
_MANY = _IN_PLACE_MANY | {"prefixItems"}
_NAMED = _IN_PLACE_NAMED | {"properties", "patternProperties", "$defs", "definitions"}


class RefSite(NamedTuple):
    """A subschema holding a `$ref`: where it is, and the base its reference resolves against."""

    node: dict[str, Any]
    key_path: KeyPath
    base: str
    ref: str


class Cycle(NamedTuple):
    """A `$ref` cycle: the file and key path of the `$ref` that closes it, and the chain."""

    path: str
    key_path: KeyPath  # of the `$ref` keyword
    chain: tuple[str, ...]  # each subschema of the cycle holding a `$ref`, `file#/pointer`


def _children(node: dict[str, Any], in_place: bool) -> Iterator[tuple[KeyPath, Any]]:
    """Each subschema of node (only those applied to the same value, if in_place)."""
    for key, value in node.items():
        if key in _ONE and (not in_place or key in _IN_PLACE_ONE):
            yield (key,), value
        elif key in _MANY and isinstance(value, list) and (not in_place or key in _IN_PLACE_MANY):
            for index, item in enumerate(value):
                yield (key, index), item
        elif key in _NAMED and isinstance(value, dict) and (not in_place or key in _IN_PLACE_NAMED):
            for name, item in value.items():
                yield (key, name), item


def ref_sites(contents: Any, base: str) -> tuple[RefSite, ...]:
    """Every subschema of a schema file that holds a `$ref` (base: the file's own URI)."""
    sites: list[RefSite] = []
    stack: list[tuple[Any, KeyPath, str]] = [(contents, (), base)]
    while stack:
        node, key_path, here = stack.pop()
        if not isinstance(node, dict):
            continue
        if key_path and isinstance(node.get("$id"), str):
            here = urljoin(here, node["$id"])  # as referencing enters a subresource
        if isinstance(node.get("$ref"), str):
            sites.append(RefSite(node, key_path, here, node["$ref"]))
        for relative, child in _children(node, in_place=False):
            stack.append((child, key_path + relative, here))
    sites.reverse()  # in the file's order
    return tuple(sites)


def find_cycles(
    sites: Mapping[str, Sequence[RefSite]], registry: Registry[Any]
) -> tuple[list[Cycle], dict[str, set[str]]]:
    """Every in-place `$ref` cycle among the files' sites, and the files each file reaches.

    The second result (the files whose `$ref`s a file follows, transitively) is computed
    only when there is a cycle, to tell which services' schemas lead into one.
    """
    by_node: dict[int, tuple[str, RefSite]] = {}
    for path, found in sites.items():
        for site in found:
            by_node[id(site.node)] = (path, site)
    targets: dict[int, Any] = {}  # site -> the subschema its $ref names
    looked_up: dict[tuple[str, str], Any] = {}
    for node_id, (_, site) in by_node.items():
        key = resource_uri(site.base, site.ref)
        if key not in looked_up:
            try:
                looked_up[key] = registry.resolver(base_uri=site.base).lookup(site.ref).contents
            except (Unresolvable, AttributeError, TypeError):  # reported as not resolving
                looked_up[key] = None
        if isinstance(looked_up[key], dict):
            targets[node_id] = looked_up[key]
    # site -> the sites its target applies in place (the target itself among them).
    reached: dict[int, list[int]] = {}
    following: dict[int, list[int]] = {}
    for node_id, target in targets.items():
        if id(target) not in reached:
            reached[id(target)] = _in_place_sites(target, by_node)
        following[node_id] = reached[id(target)]
    cycles = _cycles(following, by_node)
    if not cycles:
        return [], {}
    files: dict[str, set[str]] = {path: set() for path in sites}
    for node_id, next_sites in following.items():
        files[by_node[node_id][0]].update(by_node[n][0] for n in next_sites)
    reach: dict[str, set[str]] = {}
    for path in sites:
        seen = {path}
        todo = [path]
        while todo:
            for other in files.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        reach[path] = seen
    return cycles, reach


def _in_place_sites(target: dict[str, Any], by_node: Mapping[int, Any]) -> list[int]:
    out: list[int] = []
    stack: list[Any] = [target]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if id(node) in by_node:
            out.append(id(node))
        stack.extend(child for _, child in _children(node, in_place=True))
    return out


def _cycles(
    following: dict[int, list[int]], by_node: Mapping[int, tuple[str, RefSite]]
) -> list[Cycle]:
    """One cycle per `$ref` that closes one, found by a depth-first walk over the sites."""
    done: set[int] = set()
    found: dict[int, Cycle] = {}
    for start in following:
        if start in done:
            continue
        trail = [start]
        depth = {start: 0}
        stack = [iter(following.get(start, ()))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                node = trail.pop()
                del depth[node]
                done.add(node)
            elif step in depth:
                loop = trail[depth[step] :]
                closing = loop[-1]
                if closing not in found:
                    found[closing] = _cycle(loop, by_node)
            elif step not in done:
                depth[step] = len(trail)
                trail.append(step)
                stack.append(iter(following.get(step, ())))
    return sorted(found.values(), key=lambda c: (c.path, [str(p) for p in c.key_path]))


def _cycle(loop: list[int], by_node: Mapping[int, tuple[str, RefSite]]) -> Cycle:
    names = []
    for node_id in loop:
        path, site = by_node[node_id]
        pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in site.key_path)
        names.append(f"{path}#{pointer}")
    path, closing = by_node[loop[-1]]
    # "this $ref -> the $refs it leads to -> this $ref"
    return Cycle(path, (*closing.key_path, "$ref"), (names[-1], *names))


def describe(cycle: Cycle) -> str:
    """The cycle as a message: that validation would never end, and its chain."""
    return (
        "a $ref cycle that never descends into the config, so validation would never end: "
        + " -> ".join(cycle.chain)
    )
