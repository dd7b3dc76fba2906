"""The server's age keys: identity files as age-keygen writes them, several for rotation.

An age key file holds one `AGE-SECRET-KEY-1...` line per identity, with `#` comments and blank
lines between (age-keygen writes `# created:` and `# public key:` comments above the key).
Errors name the file and the line, never what the line holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitconf.errors import GitconfError

__all__ = ["KEY_FILE_VARIABLE", "KeyFileError", "Keyring", "key_file_paths", "load_keyring"]

KEY_FILE_VARIABLE = "GITCONF_AGE_KEY_FILE"
_IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
_PLUGIN_PREFIX = "AGE-PLUGIN-"
_EXTRA = "pip install 'gitconf[secrets]'"


class KeyFileError(GitconfError):
    """An age key file that cannot be read; the message names it (and the line), not its keys."""


@dataclass(frozen=True)
class Keyring:
    """The age identities the server decrypts with, and their public recipients (safe to show)."""

    identities: tuple[Any, ...] = field(repr=False)  # pyrage.x25519.Identity
    recipients: tuple[str, ...]  # `age1...`, one per identity
    files: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """A digest of the public recipients: add it to any cache key of a decrypted file."""
        joined = "\n".join(sorted(self.recipients)).encode()
        return hashlib.blake2b(joined, digest_size=8).hexdigest()


def key_file_paths(configured: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The key files to load: `secrets.age_key_files`, then GITCONF_AGE_KEY_FILE (paths joined
    by os.pathsep), each once."""
    paths = list(configured)
    raw = environ.get(KEY_FILE_VARIABLE, "")
    paths += [p for p in raw.split(os.pathsep) if p]
    return list(dict.fromkeys(paths))


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise KeyFileError(f"reading age keys needs gitconf's secrets extra: {_EXTRA}") from None
    return pyrage


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeyFileError(
            f"{path}: cannot read the age key file: {exc.strerror or exc}"
            f" (check secrets.age_key_files and {KEY_FILE_VARIABLE})"
        ) from None
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise KeyFileError(
            f"{path}: the age key file is not text; write it with `age-keygen -o {path}`"
        ) from None


def load_keyring(paths: Sequence[str]) -> Keyring:
    """Every age identity in the files, or KeyFileError for the first file that fails."""
    if not paths:
        raise KeyFileError(
            f"no age key file given: set secrets.age_key_files or {KEY_FILE_VARIABLE}"
        )
    pyrage = _pyrage()
    identities: list[Any] = []
    recipients: list[str] = []
    for path in paths:
        found = 0
        for number, line in enumerate(_read(path).splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if text.startswith(_PLUGIN_PREFIX):
                raise KeyFileError(
                    f"{path}:{number}: age plugin identities are not supported; "
                    "give an X25519 key (age-keygen)"
                )
            if not text.startswith(_IDENTITY_PREFIX):
                raise KeyFileError(
                    f"{path}:{number}: not an age identity (a key file holds lines starting "
                    f"{_IDENTITY_PREFIX}, as age-keygen writes them, and # comments)"
                )
            try:
                identity = pyrage.x25519.Identity.from_str(text)
            except pyrage.IdentityError:
                raise KeyFileError(
                    f"{path}:{number}: the age identity is damaged (not valid Bech32); "
                    "copy it again from where it was made"
                ) from None
            found += 1
            recipient = str(identity.to_public())
            if recipient not in recipients:
                identities.append(identity)
                recipients.append(recipient)
        if not found:
            raise KeyFileError(
                f"{path}: the file holds no age identity; make one with `age-keygen -o {path}`"
            )
    return Keyring(tuple(identities), tuple(recipients), tuple(paths))
