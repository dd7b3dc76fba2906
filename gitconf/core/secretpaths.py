"""`"x-gitconf-secret": true` in a schema: the value there must come from an encrypted file.

The places a schema marks are found by walking its `properties`, `items`,
`additionalProperties`/`patternProperties` (any key), `allOf`/`anyOf`/`oneOf`, and `$ref`s to
the same document (`#/...`; a bundled schema holds every file it refers to). A config value at
such a place whose leaves were not decrypted from a SOPS file is a problem at its own line:
a secret committed in plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gitconf.core.model import KeyPath, Node, format_path, iter_leaves
from gitconf.errors import Problem, Source

__all__ = ["ANY", "secret_paths", "secrets_in_plaintext"]

MARK = "x-gitconf-secret"
ANY = None  # a path part that matches any key or list index
MAX_DEPTH = 64
Pattern = tuple[str | None, ...]


def secret_paths(schema: Any) -> tuple[Pattern, ...]:
    """The instance paths a schema marks x-gitconf-secret (None parts match anything)."""
    found: set[Pattern] = set()
    _walk(schema, schema, (), found, set(), 0)
    return tuple(sorted(found, key=lambda p: tuple("" if x is None else x for x in p)))


def _resolve(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _walk(
    root: Any,
    node: Any,
    path: Pattern,
    found: set[Pattern],
    refs: set[tuple[str, Pattern]],
    depth: int,
) -> None:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return
    if node.get(MARK) is True:
        found.add(path)
    ref = node.get("$ref")
    if isinstance(ref, str) and (ref, path) not in refs:
        refs.add((ref, path))
        _walk(root, _resolve(root, ref), path, found, refs, depth + 1)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in node.get(keyword, ()) if isinstance(node.get(keyword), list) else ():
            _walk(root, branch, path, found, refs, depth + 1)
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            _walk(root, sub, (*path, name), found, refs, depth + 1)
    for keyword in ("additionalProperties", "items"):
        if isinstance(node.get(keyword), dict):
            _walk(root, node[keyword], (*path, ANY), found, refs, depth + 1)
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict):
        for sub in patterns.values():
            _walk(root, sub, (*path, ANY), found, refs, depth + 1)


def _nodes(tree: Node, pattern: Pattern, at: KeyPath = ()) -> Iterator[tuple[KeyPath, Node]]:
    if not pattern:
        yield at, tree
        return
    head, rest = pattern[0], pattern[1:]
    if tree.kind == "map":
        items = tree.value.items() if head is ANY else [(head, tree.value.get(head))]
        for key, child in items:
            if child is not None:
                yield from _nodes(child, rest, (*at, key))
    elif tree.kind == "seq" and head is ANY:
        for index, child in enumerate(tree.value):
            yield from _nodes(child, rest, (*at, index))


def secrets_in_plaintext(
    env: str, service: str, tree: Node, patterns: tuple[Pattern, ...], hidden: frozenset[Source]
) -> list[Problem]:
    """A problem at each leaf a schema marks secret whose value was not decrypted."""
    problems = []
    for pattern in patterns:
        for at, node in _nodes(tree, pattern):
            for sub, leaf in iter_leaves(node, at):
                if leaf.source in hidden or (leaf.kind == "scalar" and leaf.value in (None, "")):
                    continue
                problems.append(
                    Problem(
                        leaf.source,
                        f"a secret in a plaintext file: the schema of {service!r} marks this "
                        "value x-gitconf-secret, so it must come from a SOPS-encrypted file",
                        format_path(sub),
                        hint="move it to an encrypted file (sops --encrypt --in-place <file>); "
                        "see docs/secrets.md",
                    )
                )
    return problems
