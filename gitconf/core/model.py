"""Values the compile core passes around: located trees, file sets, compiled revisions."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from gitconf.errors import Source

__all__ = [
    "CompiledRevision",
    "Config",
    "FileSet",
    "Limits",
    "Manifest",
    "Node",
    "Source",
    "format_path",
    "leaves",
    "to_plain",
]

Kind = Literal["map", "seq", "scalar"]
KeyPath = tuple[str | int, ...]

TAG_DELETE = "delete"
TAG_REPLACE = "replace"
TAG_APPEND = "append"


class Node(NamedTuple):
    """A YAML value with the place that set it and the places it overrode (lowest layer first).

    `value` is a dict of str to Node for a map, a tuple of Node for a seq, and a plain
    JSON-compatible scalar otherwise. `tag` is one of gitconf's merge tags or None.
    A NamedTuple, not a frozen dataclass: a compile makes hundreds of thousands of them,
    and a frozen dataclass's __init__ costs several times a tuple's.
    """

    kind: Kind
    value: Any
    source: Source
    tag: str | None = None
    overrides: tuple[Source, ...] = ()


def to_plain(node: Node) -> Any:
    """The node as plain Python values (dict, list, str, int, float, bool, None)."""
    if node.kind == "map":
        return {k: to_plain(v) for k, v in node.value.items()}
    if node.kind == "seq":
        return [to_plain(v) for v in node.value]
    return node.value


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def format_path(path: KeyPath) -> str:
    """A key path as users write it: `db.pool.max`, `servers[0]`, `labels["app.kubernetes.io"]`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


def parse_path(text: str) -> KeyPath:
    """The inverse of format_path for user input such as `db.pool.max` or `servers[0]`."""
    parts: list[str | int] = []
    for match in re.finditer(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)', text):
        quoted, index, plain = match.groups()
        if quoted is not None:
            parts.append(quoted.replace('\\"', '"').replace("\\\\", "\\"))
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(plain)
    return tuple(parts)


def iter_leaves(node: Node, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Node]]:
    """Every leaf of the tree with its key path; empty maps and lists count as leaves."""
    if node.kind == "map" and node.value:
        for key, child in node.value.items():
            yield from iter_leaves(child, (*path, key))
    elif node.kind == "seq" and node.value:
        for index, child in enumerate(node.value):
            yield from iter_leaves(child, (*path, index))
    else:
        yield path, node


def leaves(node: Node) -> dict[str, Node]:
    """Every leaf of the tree by its dotted key path."""
    return {format_path(path): leaf for path, leaf in iter_leaves(node)}


def find(node: Node, path: KeyPath) -> tuple[Node, KeyPath]:
    """The deepest node on path and the part of path it covers."""
    covered: list[str | int] = []
    for part in path:
        if (node.kind == "map" and isinstance(part, str) and part in node.value) or (
            node.kind == "seq" and isinstance(part, int) and 0 <= part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        covered.append(part)
    return node, tuple(covered)


@dataclass(frozen=True)
class FileSet:
    """The files of one commit or folder that gitconf reads, by repository-relative path.

    `oids` maps a path to its Git blob id when known (parse results are cached by it);
    `irregular` maps symlinks and submodules among the config paths to their kind.
    """

    files: Mapping[str, bytes]
    oids: Mapping[str, str] = field(default_factory=dict)
    irregular: Mapping[str, str] = field(default_factory=dict)
    label: str = ""


class EnvironmentSpec(NamedTuple):
    """An environment of the manifest: its name, parent and where it was declared."""

    name: str
    extends: str | None
    source: Source


class SubscriptionSpec(NamedTuple):
    """A webhook subscriber declared in the manifest."""

    name: str
    url: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    secret_env: str | None
    events: tuple[str, ...]
    include_config: bool
    source: Source


MiB = 1024 * 1024


class Limits(NamedTuple):
    """What one commit may hold and expand to (gitconf.yaml `validation:`), in bytes.

    The defaults are far above any real repository: they exist so that a hostile or broken
    commit is rejected with a problem instead of exhausting the compile.
    """

    max_file_size: int = MiB  # one file under base/ or environments/
    max_schema_size: int | None = None  # one file under schemas/; None: max_file_size
    max_total_size: int = 256 * MiB  # every file gitconf reads, together
    max_config_size: int = 16 * MiB  # one merged config, as compact JSON
    max_total_config_size: int = 256 * MiB  # every merged config, together

    @property
    def schema_size(self) -> int:
        """The largest file under schemas/ accepted."""
        return self.max_file_size if self.max_schema_size is None else self.max_schema_size


@dataclass(frozen=True)
class Manifest:
    """The parsed gitconf.yaml."""

    environments: dict[str, EnvironmentSpec]
    require_schema: bool = True
    limits: Limits = field(default_factory=Limits)
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    # Gradual rollouts by environment: {"steps": [percent, ...], "bake": seconds}.
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Chains are asked for once per (environment, service): thousands of times per compile.
    _chains: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def chain(self, env: str) -> tuple[str, ...]:
        """The environment's extends chain, root first; stops at a cycle or an unknown parent."""
        found = self._chains.get(env)
        if found is None:
            found = self._chains[env] = tuple(self._walk_chain(env))
        return found

    def _walk_chain(self, env: str) -> list[str]:
        chain: list[str] = []
        current: str | None = env
        while current is not None and current not in chain:
            chain.append(current)
            spec = self.environments.get(current)
            current = spec.extends if spec else None
        return list(reversed(chain))


class Config(NamedTuple):
    """The merged config of one (environment, service), with its provenance tree."""

    environment: str
    service: str
    tree: Node
    layers: tuple[str, ...]

    @property
    def value(self) -> Any:
        """The merged config as plain values."""
        return to_plain(self.tree)


@dataclass(frozen=True)
class CompiledRevision:
    """Every (environment, service) config of one commit, merged and validated."""

    manifest: Manifest
    environments: tuple[str, ...]
    services: tuple[str, ...]
    configs: dict[tuple[str, str], Config]
    # Where the values decrypted from SOPS files were written: a leaf whose source is one of
    # these is a secret.
    secrets: frozenset[Source] = frozenset()
