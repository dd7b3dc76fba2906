"""Fail closed: a SOPS file that gitconf cannot prove intact, or cannot read, is refused with
the file, the line and the key path; sops itself refuses the same files."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from gitconf.errors import Problem
from gitconf.secrets import SopsError, read_yaml
from tests.secrets.conftest import AgeKey, Sops

SECRETS = """\
db:
  host: db.internal
  password: hunter2
  port: 5432
api:
  token: t0k3n
  timeout_unencrypted: 2.5
"""
PATH = "environments/production/secrets.yaml"


def flip(encrypted: bytes, key: str, part: str) -> bytes:
    """The file with one bit of `part` (data, iv or tag) of key's ENC value flipped."""
    pattern = re.compile(rf"^(\s*{key}: ENC\[AES256_GCM,.*?{part}:)([^,\]]+)".encode(), flags=re.M)
    match = pattern.search(encrypted)
    assert match, f"no ENC value for {key!r}"
    raw = bytearray(base64.b64decode(match.group(2)))
    raw[0] ^= 0x01
    return encrypted[: match.start(2)] + base64.b64encode(raw) + encrypted[match.end(2) :]


def line_of(encrypted: bytes, text: str) -> int:
    """The 1-based line of the file that holds text."""
    for number, line in enumerate(encrypted.decode().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(text)


def refused(sops: Sops, encrypted: bytes, keyring: object = None) -> list[Problem]:
    """gitconf's problems with the file, the same in the SopsError of or_raise()."""
    result = read_yaml(PATH, encrypted, keyring or sops.key.keyring())  # type: ignore[arg-type]
    assert result.tree is None and result.problems
    with pytest.raises(SopsError) as caught:
        result.or_raise()
    assert caught.value.problems == result.problems
    return result.problems


@pytest.mark.parametrize("part", ["data", "tag", "iv"])
def test_a_tampered_value(sops: Sops, part: str) -> None:
    tampered = flip(sops.encrypt(SECRETS), "password", part)
    assert sops.decrypt_fails(tampered)
    [problem] = refused(sops, tampered)
    assert problem.source is not None
    assert (problem.source.path, problem.source.line) == (PATH, line_of(tampered, "password:"))
    assert problem.key_path == "db.password"
    assert "does not decrypt" in problem.message
    assert problem.render().startswith(f"{PATH}:3:15: db.password: the value does not decrypt")


def test_every_tampered_value_is_reported(sops: Sops) -> None:
    tampered = flip(flip(sops.encrypt(SECRETS), "password", "data"), "token", "tag")
    assert [p.key_path for p in refused(sops, tampered)] == ["db.password", "api.token"]


def test_a_value_moved_to_another_key(sops: Sops) -> None:
    """The key path is the value's additional data: a value copied to another key fails."""
    encrypted = sops.encrypt(SECRETS)
    token = re.search(rb"token: (ENC\[[^\]]+\])", encrypted)
    assert token
    moved = re.sub(rb"password: ENC\[[^\]]+\]", b"password: " + token.group(1), encrypted)
    assert sops.decrypt_fails(moved)
    [problem] = refused(sops, moved)
    assert problem.key_path == "db.password"


def test_a_wrong_key(sops: Sops, tmp_path: Path) -> None:
    encrypted = sops.encrypt(SECRETS)
    other = AgeKey(tmp_path / "other.txt")
    [problem] = refused(sops, encrypted, other.keyring())
    assert problem.message.startswith("no age key of the server decrypts this file")
    assert sops.key.recipient in problem.message  # the file's recipient
    assert other.recipient in problem.message and str(other.path) in problem.message
    assert other.secret not in problem.render() and sops.key.secret not in problem.render()
    # at the metadata mapping, which starts on the line after `sops:`
    assert problem.source is not None and problem.source.line == line_of(encrypted, "sops:") + 1


def test_no_key_at_all(sops: Sops) -> None:
    result = read_yaml(PATH, sops.encrypt(SECRETS), None)
    [problem] = result.problems
    assert "the server has no age key" in problem.message
    assert "GITCONF_AGE_KEY_FILE" in problem.hint


def test_a_damaged_data_key(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS)
    lines = encrypted.decode().splitlines(keepends=True)
    begin = next(i for i, line in enumerate(lines) if "BEGIN AGE ENCRYPTED FILE" in line)
    body = lines[begin + 2]  # inside the age header's stanza body
    lines[begin + 2] = body.replace(body.strip()[5], "A" if body.strip()[5] != "A" else "B", 1)
    damaged = "".join(lines).encode()
    assert sops.decrypt_fails(damaged)
    [problem] = refused(sops, damaged)
    assert "is damaged" in problem.message and sops.key.recipient in problem.message


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: re.sub(r"\n    mac: [^\n]+", "", t), id="removed"),
        pytest.param(lambda t: re.sub(r"\n    mac: [^\n]+", '\n    mac: ""', t), id="empty"),
    ],
)
def test_a_missing_mac(sops: Sops, edit: object) -> None:
    encrypted = edit(sops.encrypt(SECRETS).decode()).encode()  # type: ignore[operator]
    assert sops.decrypt_fails(encrypted)
    [problem] = refused(sops, encrypted)
    assert problem.key_path == "sops.mac"
    assert "no MAC" in problem.message or "no 'mac'" in problem.message


def test_a_mac_from_another_file(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS)
    other = sops.encrypt(SECRETS.replace("hunter2", "hunter3"))
    mac = re.search(rb"\n    mac: [^\n]+", other)
    assert mac
    swapped = re.sub(rb"\n    mac: [^\n]+", mac.group(0), encrypted)
    assert sops.decrypt_fails(swapped)
    [problem] = refused(sops, swapped)
    assert problem.key_path == "sops.mac" and "MAC does not decrypt" in problem.message


def test_lastmodified_changed(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS)
    changed = re.sub(rb'lastmodified: "\d{4}', b'lastmodified: "1999', encrypted)
    assert changed != encrypted and sops.decrypt_fails(changed)
    [problem] = refused(sops, changed)
    assert problem.key_path == "sops.mac" and "lastmodified" in problem.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(b"host: db.internal", b"host: evil.internal", id="plaintext-value-changed"),
        pytest.param(b"timeout_unencrypted: 2.5", b"timeout_unencrypted: 9.5", id="float-changed"),
        pytest.param(b"    host: db.internal\n", b"", id="value-removed"),
        pytest.param(
            b"    host: db.internal\n", b"    host: db.internal\n    extra: 1\n", id="added"
        ),
    ],
)
def test_plaintext_changes_break_the_mac(sops: Sops, old: bytes, new: bytes) -> None:
    encrypted = sops.encrypt(SECRETS, "--encrypted-regex", "^(password|token)$")
    assert old in encrypted
    changed = encrypted.replace(old, new)
    assert sops.decrypt_fails(changed)
    [problem] = refused(sops, changed)
    assert problem.key_path == "sops.mac" and problem.message.startswith("MAC mismatch")
    assert problem.source is not None and problem.source.line == line_of(changed, "    mac:")


def test_values_reordered(sops: Sops) -> None:
    encrypted = sops.encrypt("first: a\nsecond: b\n")
    lines = encrypted.split(b"\n")
    assert lines[0].startswith(b"first:") and lines[1].startswith(b"second:")
    lines[0], lines[1] = lines[1], lines[0]
    reordered = b"\n".join(lines)
    assert sops.decrypt_fails(reordered)
    [problem] = refused(sops, reordered)
    assert problem.message.startswith("MAC mismatch")


def test_a_plaintext_value_where_the_rule_encrypts(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS)
    planted = re.sub(rb"password: ENC\[[^\]]+\]", b"password: planted", encrypted)
    assert sops.decrypt_fails(planted)
    [problem] = refused(sops, planted)
    assert problem.key_path == "db.password"
    assert "in plaintext where the file's unencrypted_suffix '_unencrypted'" in problem.message


def test_an_encrypted_value_where_the_rule_leaves_plaintext(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS, "--encrypted-regex", "^password$")
    token = re.search(rb"password: (ENC\[[^\]]+\])", encrypted)
    assert token
    planted = encrypted.replace(b"host: db.internal", b"host: " + token.group(1))
    [problem] = refused(sops, planted)
    assert problem.key_path == "db.host"
    assert "encrypted_regex '^password$' leaves it in plaintext" in problem.message


def test_metadata_removed(sops: Sops) -> None:
    encrypted = sops.encrypt(SECRETS)
    stripped = encrypted[: encrypted.index(b"\nsops:\n") + 1]
    result = read_yaml(PATH, stripped, sops.key.keyring())
    assert result.tree is None
    assert [p.key_path for p in result.problems] == [
        "db.host",
        "db.password",
        "db.port",
        "api.token",
    ]
    assert "has no SOPS metadata" in result.problems[0].message


def test_merge_keys_are_refused(sops: Sops) -> None:
    """sops keeps `<<` as a key of its own (`!!merge <<:`): gitconf refuses rather than serve
    a config with a key named '<<' that the plaintext did not have."""
    encrypted = sops.encrypt("base: &b\n  user: u\nprod:\n  <<: *b\n  pw: q\n")
    assert b"!!merge <<:" in encrypted
    assert sops.decrypt_json(encrypted)["prod"]["<<"] == {"user": "u"}
    [problem] = refused(sops, encrypted)
    assert problem.key_path == 'prod["<<"]' and "merge key" in problem.message


def test_two_key_groups_are_refused(sops: Sops, tmp_path: Path) -> None:
    second = AgeKey(tmp_path / "second.txt")
    config = sops.folder / ".sops.yaml"
    config.write_text(
        "creation_rules:\n"
        "  - shamir_threshold: 2\n"
        "    key_groups:\n"
        f"      - age: [{sops.key.recipient}]\n"
        f"      - age: [{second.recipient}]\n"
    )
    encrypted = sops.encrypt(SECRETS, "--config", str(config))
    assert b"key_groups:" in encrypted and b"shamir_threshold: 2" in encrypted
    [problem] = refused(sops, encrypted)
    assert problem.key_path == "sops.key_groups"
    assert "Shamir" in problem.message and "threshold 2" in problem.message
    assert "does not support key groups" in problem.message


def test_one_key_group_is_one_set_of_recipients(sops: Sops) -> None:
    """A single `key_groups` entry (written by hand: sops flattens one group) is no Shamir."""
    encrypted = sops.encrypt(SECRETS).decode()
    head, meta = encrypted.split("\nsops:\n")
    age = re.search(r"    age:\n(?:        .*\n)+", meta + "\n")
    assert age
    nested = "    key_groups:\n        - age:\n" + "".join(
        "    " + line + "\n" for line in age.group(0).splitlines()[1:]
    )
    regrouped = f"{head}\nsops:\n" + meta.replace(age.group(0), nested)
    result = read_yaml(PATH, regrouped.encode(), sops.key.keyring())
    assert result.problems == [] and result.tree is not None
    assert result.tree.value["db"].value["password"].value == "hunter2"


def test_pgp_only_is_refused(sops: Sops) -> None:
    """The data key wrapped for PGP only (the age entry replaced by a PGP one)."""
    encrypted = sops.encrypt(SECRETS).decode()
    pgp_only = re.sub(
        r"    age:\n(?:        .*\n)+",
        "    pgp:\n"
        '        - created_at: "2024-01-01T00:00:00Z"\n'
        "          enc: |\n"
        "            -----BEGIN PGP MESSAGE-----\n"
        "            wcBMA0abcdef\n"
        "            -----END PGP MESSAGE-----\n"
        "          fp: 0123456789ABCDEF0123456789ABCDEF01234567\n",
        encrypted,
    )
    assert "age:" not in pgp_only.split("\nsops:\n")[1]
    [problem] = refused(sops, pgp_only.encode())
    assert problem.key_path == "sops"
    assert problem.message == (
        "the file's data key is wrapped for PGP only: gitconf decrypts with age keys"
    )
    assert "sops updatekeys" in problem.hint


def test_real_pgp_file_is_refused(sops: Sops, tmp_path: Path) -> None:
    """A file the real sops encrypted for a real PGP key (made with gpg) is refused."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    try:
        subprocess.run(
            [*gpg, "--passphrase", "", "--quick-gen-key", "tests@gitconf.invalid", "default",
             "default", "never"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("gpg is not installed")
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    source = sops.folder / "pgp.yaml"
    source.write_text(SECRETS)
    encrypted = sops.run(
        "--encrypt", "--pgp", fingerprint, str(source), env={"GNUPGHOME": str(home)}
    )
    assert b"pgp:" in encrypted and b"age:" not in encrypted
    [problem] = refused(sops, encrypted)
    assert "wrapped for PGP only" in problem.message


def test_comment_rules_are_refused(sops: Sops) -> None:
    encrypted = sops.encrypt(
        "# sops:enc\npassword: x\nplain: y\n", "--encrypted-comment-regex", "sops:enc"
    )
    [problem] = refused(sops, encrypted)
    assert problem.key_path == "sops.encrypted_comment_regex"
    assert "YAML comments, which gitconf does not read" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "key_path", "message"),
    [
        (rb"version: [0-9.]+", b"version: 4.0.0", "sops.version", "gitconf reads files of SOPS 3"),
        (rb"\n    version: [0-9.]+", b"", "sops.version", "the SOPS metadata has no 'version'"),
        (rb'lastmodified: "[^"]+"', b'lastmodified: "yesterday"', "sops.lastmodified", "not an RFC 3339"),
        (rb"unencrypted_suffix: _unencrypted", b"unencrypted_suffix: _unencrypted\n    encrypted_regex: x", "sops", "more than one encryption rule"),
        (rb"unencrypted_suffix: _unencrypted", b"encrypted_regex: '('", "sops.encrypted_regex", "not a regular expression"),
        (rb"mac: ENC\[AES256_GCM,data:", b"mac: ENC[AES256_GCM,data:!", "sops.mac", "not valid base64"),
    ],
)  # fmt: skip
def test_bad_metadata(sops: Sops, old: bytes, new: bytes, key_path: str, message: str) -> None:
    encrypted = sops.encrypt(SECRETS)
    changed = re.sub(old, new, encrypted, count=1)
    assert changed != encrypted
    problems = refused(sops, changed)
    assert any(p.key_path == key_path and message in p.message for p in problems), problems
