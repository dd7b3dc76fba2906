"""The server's age key files: several for rotation, errors that never show key material."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitconf.secrets import KeyFileError, key_file_paths, load_keyring, read_yaml
from tests.secrets.conftest import AgeKey, Sops

SECRETS = "db:\n  password: hunter2\n"


def test_a_key_file_as_age_keygen_writes_it(age_key: AgeKey) -> None:
    keyring = load_keyring([str(age_key.path)])
    assert keyring.recipients == (age_key.recipient,)
    assert keyring.files == (str(age_key.path),)
    assert age_key.secret not in repr(keyring)


def test_several_keys_in_one_file_and_in_several(tmp_path: Path) -> None:
    one, two, three = (AgeKey(tmp_path / f"k{i}.txt") for i in range(3))
    both = tmp_path / "both.txt"
    both.write_text(f"# two keys\n\n{one.secret}\n  {two.secret}  \n# end\n")
    keyring = load_keyring([str(both), str(three.path), str(one.path)])
    assert keyring.recipients == (one.recipient, two.recipient, three.recipient)
    assert len(keyring.identities) == 3
    assert keyring.fingerprint == load_keyring([str(three.path), str(both)]).fingerprint
    assert keyring.fingerprint != load_keyring([str(three.path)]).fingerprint


def test_key_file_paths() -> None:
    environ = {"GITCONF_AGE_KEY_FILE": os.pathsep.join(["/keys/new.txt", "/keys/old.txt"])}
    assert key_file_paths(["/etc/gitconf/age.txt", "/keys/old.txt"], environ) == [
        "/etc/gitconf/age.txt",
        "/keys/old.txt",
        "/keys/new.txt",
    ]
    assert key_file_paths([], {}) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no age identity"),
        ("# only a comment\n", "holds no age identity"),
        ("AGE-PLUGIN-YUBIKEY-1QQQQQQ\n", ":1: age plugin identities are not supported"),
        ("# c\nnot-a-key SECRETVALUE\n", ":2: not an age identity"),
    ],
)
def test_bad_key_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "key.txt"
    path.write_text(content)
    with pytest.raises(KeyFileError) as caught:
        load_keyring([str(path)])
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "SECRETVALUE" not in str(caught.value)


def test_a_damaged_key_is_not_shown(tmp_path: Path, age_key: AgeKey) -> None:
    damaged = age_key.secret[:-3] + ("QQQ" if not age_key.secret.endswith("QQQ") else "PPP")
    path = tmp_path / "damaged.txt"
    path.write_text(f"# public key: {age_key.recipient}\n{damaged}\n")
    with pytest.raises(KeyFileError) as caught:
        load_keyring([str(path)])
    text = str(caught.value)
    assert text.startswith(f"{path}:2: the age identity is damaged")
    assert damaged[20:] not in text and age_key.secret[20:] not in text


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the age key file"):
        load_keyring([str(tmp_path / "absent.txt")])
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyFileError, match="is not text"):
        load_keyring([str(binary)])
    with pytest.raises(KeyFileError, match="no age key file given"):
        load_keyring([])


def test_rotation(sops: Sops, tmp_path: Path) -> None:
    """Rotating: the file gets the new recipient too (sops updatekeys), the server both keys,
    then the old recipient is removed; at every step the server decrypts the file."""
    old, new = sops.key, AgeKey(tmp_path / "new.txt")
    config = sops.folder / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - age: {old.recipient}\n")
    target = sops.folder / "secrets.yaml"
    target.write_bytes(sops.encrypt(SECRETS, "--config", str(config)))
    both_keys = load_keyring([str(old.path), str(new.path)])

    def server_reads(keyring: object) -> bool:
        return read_yaml("secrets.yaml", target.read_bytes(), keyring).problems == []  # type: ignore[arg-type]

    assert server_reads(old.keyring()) and server_reads(both_keys)
    assert not server_reads(new.keyring())

    config.write_text(f"creation_rules:\n  - age: {old.recipient},{new.recipient}\n")
    sops.run("--config", str(config), "updatekeys", "--yes", str(target))
    assert target.read_bytes().count(b"recipient: age1") == 2
    assert server_reads(old.keyring()) and server_reads(new.keyring()) and server_reads(both_keys)

    config.write_text(f"creation_rules:\n  - age: {new.recipient}\n")
    sops.run(
        "--config",
        str(config),
        "updatekeys",
        "--yes",
        str(target),
        env={"SOPS_AGE_KEY_FILE": str(new.path)},
    )
    assert server_reads(new.keyring()) and server_reads(both_keys)
    result = read_yaml("secrets.yaml", target.read_bytes(), old.keyring())
    [problem] = result.problems
    assert new.recipient in problem.message and old.recipient in problem.message
