"""Decrypt a SOPS YAML file with age keys into gitconf's located tree, MAC verified, fail closed.

The data key is unwrapped from `sops.age[].enc` (age/keysource.go Decrypt: an armored age
file holding the 32-byte key), each value opened with AES-256-GCM (aes/cipher.go Decrypt),
and the MAC recomputed and compared with `sops.mac` (cmd/sops/common/common.go DecryptTree).
Any failure is a Problem at the file's line and column: nothing of the file is used then.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, NamedTuple

from gitconf.core.model import KeyPath, Node, format_path
from gitconf.core.parse import parse_yaml
from gitconf.errors import GitconfError, Problem, Source
from gitconf.secrets.keys import KEY_FILE_VARIABLE, Keyring
from gitconf.secrets.metadata import Metadata, is_sops_tree, parse_metadata
from gitconf.secrets.sops import ENC_PREFIX, EncValue, convert, parse_enc
from gitconf.secrets.walk import walk

__all__ = ["SecretParse", "Skipped", "SopsError", "decrypt_tree", "read_yaml", "stray_values"]

DATA_KEY_SIZE = 32
_EXTRA = "install gitconf's secrets extra: pip install 'gitconf[secrets]'"


class Skipped(NamedTuple):
    """A check that validation without a key did not make, and where."""

    source: Source
    message: str

    def render(self) -> str:
        """The skipped check as one line: `path:line:col: message`."""
        return f"{self.source}: {self.message}"


class SecretParse(NamedTuple):
    """A config file read with SOPS decryption, or its problems (then `tree` is None).

    `secrets` are the key paths, in this file, of the values the file's rule encrypts (empty
    strings and nulls among them, which SOPS leaves as they are); `sources` where they are
    written: after the merge, a leaf whose Source is in `sources` holds a secret.
    """

    tree: Node | None
    problems: list[Problem]
    encrypted: bool = False  # a SOPS file
    secrets: frozenset[KeyPath] = frozenset()
    sources: frozenset[Source] = frozenset()
    skipped: tuple[Skipped, ...] = ()  # key-less validation only

    def or_raise(self) -> SecretParse:
        """This result, or SopsError with its problems."""
        if self.problems:
            raise SopsError(self.problems)
        return self


class SopsError(GitconfError):
    """A SOPS file that cannot be used; `problems` say where, what and how to fix it."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


def _problem(source: Source, message: str, hint: str, key_path: str = "") -> list[Problem]:
    return [Problem(source, message, key_path, hint)]


def _data_key(metadata: Metadata, keyring: Keyring) -> bytes | list[Problem]:
    """The file's data key, unwrapped by any of the keyring's identities."""
    try:
        import pyrage
    except ImportError:
        return _problem(metadata.source, "decrypting SOPS files needs pyrage", _EXTRA)
    ours = set(keyring.recipients)
    # Stanzas for our own recipients first; the rest too (a recipient may be mislabelled:
    # whatever unwraps the key, the MAC proves it right).
    stanzas = sorted(metadata.age, key=lambda stanza: stanza.recipient not in ours)
    for stanza in stanzas:
        try:
            key = pyrage.decrypt(stanza.enc.encode(), list(keyring.identities))
        except (pyrage.DecryptError, ValueError, TypeError):
            continue
        if len(key) != DATA_KEY_SIZE:
            return _problem(
                stanza.source,
                f"the data key wrapped for {stanza.recipient} has {len(key)} bytes, not "
                f"{DATA_KEY_SIZE}",
                "encrypt the file again with sops",
                "sops.age",
            )
        return key
    listed = ", ".join(stanza.recipient for stanza in metadata.age)
    known = ", ".join(keyring.recipients)
    mine = [stanza for stanza in metadata.age if stanza.recipient in ours]
    if mine:
        return _problem(
            mine[0].source,
            f"the data key wrapped for {mine[0].recipient} does not decrypt with its key: "
            "the file's sops.age entry is damaged",
            "restore the file from Git history, or re-wrap the key with `sops updatekeys FILE`",
            "sops.age",
        )
    others = f" (and {', '.join(metadata.others)})" if metadata.others else ""
    return _problem(
        metadata.source,
        f"no age key of the server decrypts this file: it is encrypted for {listed}{others}; "
        f"the server has keys for {known} (from {', '.join(keyring.files)})",
        "add one of the file's recipients' identities to secrets.age_key_files, or add a "
        "server recipient to .sops.yaml and run `sops updatekeys FILE`",
        "sops",
    )


def _opener(key: bytes) -> Any:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(key)

    def open_value(enc: EncValue, aad: str) -> tuple[Any, bytes] | str:
        try:
            plain = cipher.decrypt(enc.iv, enc.data + enc.tag, aad.encode())
        except InvalidTag:
            return (
                "the value does not decrypt: it was changed after it was encrypted, or moved "
                "from another key (its key path is part of what is authenticated)"
            )
        converted = convert(enc.type, plain)
        if isinstance(converted, str):
            return f"the decrypted value is refused: {converted}"
        return converted

    return open_value


def decrypt_tree(path: str, tree: Node, keyring: Keyring | None) -> SecretParse:
    """A parsed SOPS file (is_sops_tree) decrypted: the tree without `sops:`, or its problems."""
    metadata, problems = parse_metadata(path, tree)
    if metadata is None:
        return SecretParse(None, problems, encrypted=True)
    if keyring is None or not keyring.identities:
        return SecretParse(
            None,
            _problem(
                metadata.source,
                "the file is encrypted with SOPS and the server has no age key",
                f"give the key in secrets.age_key_files or {KEY_FILE_VARIABLE}",
                "sops",
            ),
            encrypted=True,
        )
    key = _data_key(metadata, keyring)
    if isinstance(key, list):
        return SecretParse(None, key, encrypted=True)
    try:
        opener = _opener(key)
    except ImportError:
        return SecretParse(
            None, _problem(metadata.source, "decrypting needs cryptography", _EXTRA), encrypted=True
        )
    walked = walk(path, tree, metadata, opener)
    if walked.problems:
        return SecretParse(None, walked.problems, encrypted=True)
    stored = opener(parse_enc(metadata.mac), metadata.mac_aad)  # checked by parse_metadata
    if isinstance(stored, str):
        return SecretParse(
            None,
            _problem(
                metadata.mac_source,
                "the MAC does not decrypt: sops.mac or sops.lastmodified was changed",
                "restore the file from Git history; edit encrypted files with `sops edit`",
                "sops.mac",
            ),
            encrypted=True,
        )
    if not isinstance(stored[0], str) or not hmac.compare_digest(
        stored[0].encode(), walked.mac.encode()
    ):
        return SecretParse(
            None,
            _problem(
                metadata.mac_source,
                "MAC mismatch: the file's values are not those SOPS encrypted (changed, added, "
                "removed or reordered without sops)",
                "restore the file from Git history; edit encrypted files with `sops edit`",
                "sops.mac",
            ),
            encrypted=True,
        )
    return SecretParse(walked.tree, [], True, walked.secrets, walked.sources)


def stray_values(path: str, data: bytes, tree: Node) -> list[Problem]:
    """Encrypted values in a file that is not a SOPS file (its `sops:` metadata removed)."""
    if ENC_PREFIX.encode() not in data:
        return []
    found: list[Problem] = []
    stack: list[tuple[Node, KeyPath]] = [(tree, ())]
    while stack:
        node, key_path = stack.pop()
        if node.kind == "map":
            stack += [(child, (*key_path, k)) for k, child in reversed(node.value.items())]
        elif node.kind == "seq":
            stack += [(child, (*key_path, i)) for i, child in reversed(list(enumerate(node.value)))]
        elif isinstance(node.value, str) and node.value.startswith(ENC_PREFIX):
            found.append(
                Problem(
                    node.source,
                    "the value is encrypted with SOPS but the file has no SOPS metadata "
                    "(its top-level `sops:` mapping is missing)",
                    format_path(key_path),
                    "restore the file's `sops:` metadata from Git history, or encrypt the "
                    "plaintext again with `sops --encrypt --in-place FILE`",
                )
            )
    return found


def read_yaml(path: str, data: bytes, keyring: Keyring | None) -> SecretParse:
    """Parse one config file with gitconf's parser, decrypting it if it is a SOPS file.

    A plaintext file comes back as parse_yaml reads it (refused if it holds ENC[...] values
    without SOPS metadata); a SOPS file as its decrypted tree, each value at the line and
    column of its ENC[...] scalar, without the `sops:` key.
    """
    return parse_sops(path, data, lambda tree: decrypt_tree(path, tree, keyring))


def parse_sops(path: str, data: bytes, sops: Callable[[Node], SecretParse]) -> SecretParse:
    """Parse one config file with gitconf's parser; a SOPS file's tree goes to sops (decrypt
    it, or check it without a key); a plaintext one is refused if it holds ENC[...] values."""
    tree, problems = parse_yaml(path, data)
    if tree is None:
        return SecretParse(None, problems)
    if not is_sops_tree(tree):
        stray = stray_values(path, data, tree)
        return SecretParse(None, stray) if stray else SecretParse(tree, [])
    return sops(tree)
