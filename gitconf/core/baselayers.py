"""The base layers of a service merged alone: Spring's answer for a profile with no files.

Spring Cloud Config serves `application.yml` and `<app>.yml` to an app whose profiles have no
files of their own (as for `default`, which Spring Boot asks for when no profile is active);
their gitconf equivalents are `base/_all` and `base/<service>`, the layers that belong to no
environment.
"""

from __future__ import annotations

from typing import NamedTuple

from gitconf.core.compile import NO_KEYS, CompileCache, SecretReading, parse_layer
from gitconf.core.layers import ALL, discover
from gitconf.core.merge import merge
from gitconf.core.model import FileSet, Node
from gitconf.errors import Source

__all__ = ["BaseMerge", "merge_base"]


class BaseMerge(NamedTuple):
    """The base layers of one service, lowest first, merged (None: it has none), and the
    places of the values decrypted from SOPS files among them."""

    layers: tuple[str, ...]
    tree: Node | None
    secrets: frozenset[Source]


def merge_base(
    files: FileSet,
    service: str,
    cache: CompileCache | None = None,
    reading: SecretReading = NO_KEYS,
) -> BaseMerge:
    """base/_all then base/<service> of a file set merged, as the compile merges them.

    Meant for a valid revision (one that compiled): a layer that does not parse, or merges
    with a problem, is a ValueError here, not a Problem.
    """
    layout, _ = discover([p for p in files.files if p.startswith("base/")])
    layers = (*layout.files.get(("base", ALL), []), *layout.files.get(("base", service), []))
    tree: Node | None = None
    secrets: set[Source] = set()
    for path in layers:
        parsed = parse_layer(path, files, cache, reading)
        if parsed.tree is None:
            raise ValueError(f"{path} does not parse: {parsed.problems[0].render()}")
        secrets |= parsed.secrets
        tree, problems = merge(tree, parsed.tree)
        if problems:
            raise ValueError(problems[0].render())
    return BaseMerge(layers, tree, frozenset(secrets))
