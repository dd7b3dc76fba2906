"""A SOPS file's values in SOPS's order, each opened where the file's rule says it is encrypted.

SOPS walks the document in order (sops.go walkBranch, walkSlice): a value's path is the
mapping keys above it (list items add nothing), its additional data that path joined by `:`
with a trailing `:`, and the MAC hashes every non-null value's bytes in that order (only the
encrypted ones with mac_only_encrypted). Comments are not values: they are neither hashed
nor read here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

from gitconf.core.model import KeyPath, Node, format_path
from gitconf.errors import Problem, Source
from gitconf.secrets.metadata import METADATA_KEY, Metadata
from gitconf.secrets.sops import ENC_PREFIX, MAC_ONLY_ENCRYPTED_INIT, EncValue, mac_bytes, parse_enc

__all__ = ["Opener", "Walked", "walk"]

# Opens one encrypted value: (its parts, its additional data) -> (value, MAC bytes or None),
# or a message saying why it cannot.
Opener = Callable[[EncValue, str], "tuple[Any, bytes | None] | str"]

# SOPS writes a merge key back as `!!merge <<:`, which gitconf reads as a key named `<<`.
MERGE_KEY = "<<"
_RESTORE = (
    "restore the file from Git history, or set the value again with `sops set` or `sops edit`"
)


class Walked(NamedTuple):
    """The tree with the encrypted values opened, what went wrong, and where the secrets are."""

    tree: Node
    problems: list[Problem]
    secrets: frozenset[KeyPath]
    sources: frozenset[Source]
    mac: str  # the SHA-512 of the values, upper-case hex (sops.go Tree.Decrypt)


class _Walker:
    def __init__(self, path: str, metadata: Metadata, opener: Opener) -> None:
        self.path = path
        self.rule = metadata.rule
        self.encrypt_on_match = metadata.rule.encrypts_matches
        self.mac_only = metadata.mac_only_encrypted
        self.opener = opener
        self.digest = hashlib.sha512()
        if self.mac_only:
            self.digest.update(MAC_ONLY_ENCRYPTED_INIT)
        self.problems: list[Problem] = []
        self.secrets: list[KeyPath] = []
        self.sources: list[Source] = []

    def problem(self, node: Node, key_path: KeyPath, message: str, hint: str) -> None:
        self.problems.append(Problem(node.source, message, format_path(key_path), hint))

    def node(self, node: Node, key_path: KeyPath, keys: tuple[str, ...], matched: bool) -> Node:
        if node.kind == "map":
            if MERGE_KEY in node.value:
                self.problem(
                    node.value[MERGE_KEY],
                    (*key_path, MERGE_KEY),
                    "a merge key `<<` in a SOPS file: sops encrypts it as a plain key named "
                    "'<<' (`sops --decrypt` shows it so), not as a merge",
                    "write the merged values out in the plaintext and encrypt it again",
                )
            matches = self.rule.matches
            items = {
                key: self.node(child, (*key_path, key), (*keys, key), matched or matches(key))
                for key, child in node.value.items()
            }
            return node._replace(value=items)
        if node.kind == "seq":
            return node._replace(
                value=tuple(
                    self.node(child, (*key_path, index), keys, matched)
                    for index, child in enumerate(node.value)
                )
            )
        return self.scalar(node, key_path, keys, matched == self.encrypt_on_match)

    def scalar(self, node: Node, key_path: KeyPath, keys: tuple[str, ...], encrypted: bool) -> Node:
        value = node.value
        if not encrypted:
            if isinstance(value, str) and value.startswith(ENC_PREFIX):
                self.problem(
                    node,
                    key_path,
                    f"the value is encrypted but the file's {self.rule.name} "
                    f"{self.rule.value!r} leaves it in plaintext",
                    "encrypt the file again with sops (gitconf and SOPS may read the rule "
                    "differently: keep it a plain regular expression)",
                )
            elif not self.mac_only and (plain := mac_bytes(value)) is not None:
                self.digest.update(plain)
            return node
        self.secrets.append(key_path)
        self.sources.append(node.source)
        if value is None or value == "":
            return node  # SOPS encrypts neither (aes/cipher.go isEmpty, sops.go walkValue)
        if not isinstance(value, str):
            self.problem(
                node,
                key_path,
                f"the value is in plaintext where the file's {self.rule.name} "
                f"{self.rule.value!r} says it is encrypted",
                "encrypt the value with sops (`sops set` or `sops edit`), never by hand",
            )
            return node
        enc = parse_enc(value)
        if isinstance(enc, str):
            what = (
                f"the value {enc}"
                if value.startswith(ENC_PREFIX)
                else (
                    f"the value is in plaintext where the file's {self.rule.name} "
                    f"{self.rule.value!r} says it is encrypted"
                )
            )
            self.problem(node, key_path, what, _RESTORE)
            return node
        opened = self.opener(enc, ":".join(keys) + ":")
        if isinstance(opened, str):
            self.problem(node, key_path, opened, _RESTORE)
            return node
        plain, hashed = opened
        if hashed is not None:
            self.digest.update(hashed)
        return node._replace(value=plain)


def walk(path: str, tree: Node, metadata: Metadata, opener: Opener) -> Walked:
    """The file's tree without `sops:`, each encrypted value replaced by what opener makes of it."""
    walker = _Walker(path, metadata, opener)
    matches = walker.rule.matches
    items = {
        key: walker.node(child, (key,), (key,), matches(key))
        for key, child in tree.value.items()
        if key != METADATA_KEY
    }
    return Walked(
        tree._replace(value=items),
        walker.problems,
        frozenset(walker.secrets),
        frozenset(walker.sources),
        walker.digest.hexdigest().upper(),
    )
