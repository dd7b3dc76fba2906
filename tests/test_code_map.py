"""The README's code map lists every package and module of gitconf/, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = re.compile(r"^- `(gitconf(?:/[a-z_]+)*)/`: (.+)$")
MODULE = re.compile(r"^  - `([a-z_]+\.py)`: (.+)$")


def code_map() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Code map\n", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, str] = {}
    package = None
    for line in section.splitlines():
        if found := PACKAGE.match(line):
            package = found.group(1)
            listed[package + "/"] = found.group(2)
        elif (found := MODULE.match(line)) and package is not None:
            listed[f"{package}/{found.group(1)}"] = found.group(2)
    return listed


def test_the_code_map_matches_the_tree() -> None:
    tree = set()
    for path in (ROOT / "gitconf").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        tree.add(relative.rsplit("/", 1)[0] + "/")
        if path.name != "__init__.py":
            tree.add(relative)
    listed = code_map()
    assert sorted(tree - listed.keys()) == [], "in the tree, missing from the README's code map"
    assert sorted(listed.keys() - tree) == [], "in the README's code map, not in the tree"
    assert all(len(line) > 10 for line in listed.values())
