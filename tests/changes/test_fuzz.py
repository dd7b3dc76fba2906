"""Random edits of the sample repository's layer files, checked by oracles of their own.

Each round draws a few valid ops (set a scalar leaf, add a key to a block mapping or an item
to a block list, unset a leaf) and checks the edited bytes against two checks that share no
code with the edit's guards: the file read back equals the old plain tree with the ops
applied (and every merge tag outside the edited keys is unchanged), and difflib finds changed
old lines only at the edited leaves, and no more new lines than the ops write.
"""

from __future__ import annotations

import copy
import difflib
import random
from pathlib import Path
from typing import Any

import pytest

from gitconf.changes.edit import edit_layer
from gitconf.core.model import KeyPath, Node, format_path, iter_leaves, to_plain
from gitconf.core.parse import parse_yaml

ROOT = Path(__file__).resolve().parents[2] / "sample-repo"
FILES = sorted(p for p in ROOT.rglob("*.yaml") if "schemas" not in p.parts)

VALUES: list[Any] = [
    0,
    60,
    -3,
    2.5,
    1e-05,
    True,
    False,
    None,
    "yes",
    "no",
    "true",
    "1",
    "",
    "a: b",
    "x # y",
    "é",
    "caf\u00e9",
    "-x",
    "[x]",
    "{y}",
    "null",
    "~",
    " lead",
    "trail ",
    "0x1F",
    "1e3",
    "2024-06-20",
    "it's",
    'say "hi"',
    "https://example.com/a?b=c#d",
    "*star",
    "&amp",
    "!bang",
    "%pct",
    "@at",
    "`tick",
    "<<",
    "tab\tin",
    "x" * 200,
    [],
    {},
    ["a", 1],
    {"k": "v"},
]


def walk(node: Node, path: KeyPath = ()) -> list[tuple[KeyPath, Node]]:
    out = [(path, node)]
    if node.kind == "map":
        for key, child in node.value.items():
            out += walk(child, (*path, key))
    elif node.kind == "seq":
        for i, child in enumerate(node.value):
            out += walk(child, (*path, i))
    return out


def single_line(text: list[str], node: Node) -> bool:
    return node.kind == "scalar" and not (isinstance(node.value, str) and "\n" in node.value)


def block_map(lines: list[str], node: Node) -> bool:
    return node.kind == "map" and bool(node.value) and "{" not in lines[node.source.line - 1]


def draw(
    rng: random.Random, tree: Node, lines: list[str]
) -> tuple[dict[KeyPath, Any], list[KeyPath]]:
    nodes = walk(tree)
    leaves = [
        (p, n)
        for p, n in iter_leaves(tree)
        if p and single_line(lines, n) and "[" not in lines[n.source.line - 1]
    ]
    maps = [(p, n) for p, n in nodes if block_map(lines, n)]
    lists = [
        (p, n)
        for p, n in nodes
        if n.kind == "seq" and n.value and "[" not in lines[n.source.line - 1]
    ]
    sets: dict[KeyPath, Any] = {}
    unsets: list[KeyPath] = []
    used: list[KeyPath] = []

    def free(path: KeyPath) -> bool:
        return all(path[: len(u)] != u and u[: len(path)] != path for u in used)

    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["set", "set", "add", "append", "unset"])
        value = copy.deepcopy(rng.choice(VALUES))
        if kind == "set" and leaves:
            path, _node = rng.choice(leaves)
            if free(path):
                sets[path] = value if not isinstance(value, dict | list) or value == {} else 1
                used.append(path)
        elif kind == "add" and maps:
            path, node = rng.choice(maps)
            new = (*path, f"fuzz_{rng.randint(0, 999)}")
            if free(new) and new[-1] not in node.value:
                sets[new] = value if not isinstance(value, dict | list) else "v"
                used.append(new)
        elif kind == "append" and lists:
            path, node = rng.choice(lists)
            new = (*path, len(node.value))
            if free(path) and not any(u[: len(path)] == path for u in used):
                sets[new] = value if not isinstance(value, dict | list) else "v"
                used.append(path)
        elif kind == "unset" and leaves:
            path, _node = rng.choice(leaves)
            parent = path[:-1]
            siblings = [p for p, _ in leaves if p[:-1] == parent]
            emptied = any(u[:-1] == parent for u in unsets)  # `{}` would change its key line
            if free(path) and isinstance(path[-1], str) and len(siblings) > 1 and not emptied:
                unsets.append(path)
                used.append(path)
    return sets, unsets


def apply_plain(tree: Any, sets: dict[KeyPath, Any], unsets: list[KeyPath]) -> Any:
    tree = copy.deepcopy(tree)
    for path, value in sets.items():
        node = tree
        for part in path[:-1]:
            node = node[part]
        if isinstance(path[-1], int) and path[-1] == len(node):
            node.append(value)
        else:
            node[path[-1]] = value
    for path in unsets:
        node = tree
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return tree


def tags(tree: Node) -> dict[KeyPath, str | None]:
    return {p: n.tag for p, n in walk(tree)}


@pytest.mark.parametrize("seed", range(12))
def test_random_edits_of_the_sample_repository(seed: int) -> None:
    rng = random.Random(seed)
    accepted = 0
    for path in FILES:
        data = path.read_bytes()
        old_tree, problems = parse_yaml(path.name, data)
        assert old_tree is not None, problems
        lines = data.decode().splitlines()
        for _ in range(3):
            sets, unsets = draw(rng, old_tree, lines)
            if not sets and not unsets:
                continue
            new = edit_layer(
                path.name,
                data,
                {format_path(p): v for p, v in sets.items()},
                [format_path(p) for p in unsets],
            )
            accepted += 1
            new_tree, problems = parse_yaml(path.name, new)
            assert new_tree is not None, problems
            expected = apply_plain(to_plain(old_tree), sets, unsets)
            assert to_plain(new_tree) == expected
            edited = [*sets, *unsets]
            untouched_tags = {
                p: t for p, t in tags(old_tree).items() if not any(p[: len(e)] == e for e in edited)
            }
            assert {p: t for p, t in tags(new_tree).items() if p in untouched_tags} == (
                untouched_tags
            )
            old_leaves = dict(iter_leaves(old_tree))
            leaf_lines = {old_leaves[p].source.line - 1 for p in edited if p in old_leaves}
            new_lines = new.decode().splitlines()
            written = 0
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
                None, lines, new_lines, autojunk=False
            ).get_opcodes():
                if op == "equal":
                    continue
                assert set(range(i1, i2)) <= leaf_lines, (path, sets, unsets, op, i1, i2)
                written += j2 - j1
            assert written <= len(sets), (path, sets, unsets)
    assert accepted >= len(FILES)
