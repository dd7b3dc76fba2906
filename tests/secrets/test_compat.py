"""Differential tests: gitconf decrypts files made by the real sops exactly as `sops --decrypt` does."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest

from gitconf.core.model import KeyPath, Node, iter_leaves, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.secrets import read_yaml
from gitconf.secrets.decrypt import _data_key, _opener
from gitconf.secrets.metadata import is_sops_tree, parse_metadata
from gitconf.secrets.sops import format_float, parse_enc
from tests.secrets.conftest import Sops

DOCUMENT = """\
# The payments service's secrets (comments are encrypted too, and dropped by gitconf)
db:
  host: db.internal            # an inline comment
  port: 5432
  password: "s3cr3t: with a colon # and a hash"
  pool:
    max: 50
    ratio: 1.0
    timeout_s: 2.5
features:
  enabled: true
  disabled: false
numbers:
  one_float: 1.0
  big: 1e20
  neg_half: -0.5
  pi: 3.14159
  tiny: 1.0e-7
  third: 0.3333333333333333
  sum: 0.30000000000000004
  max_float: 1.7976931348623157e308
  large_int: 9007199254740993
  negative: -42
text:
  unicode: "Grüße, 世界 ✓"
  emoji: "🔑"
  multiline: |
    line one
    line two
  empty: ""
  spaces: "  padded  "
  looks_like_int: "123"
  looks_like_bool: "true"
  nothing: null
  "key.with.dots": dotted
  "key with spaces": spaced
  "clé ✓": unicode key
hosts: [a.example, b.example]
users:
  - name: alice
    password: pw-alice
    roles: [admin, dev]
  - name: bob
    password: pw-bob
    roles: []
matrix:
  - [1, 2.5]
  - [x, true]
empty_map: {}
api_key_unencrypted: visible
settings_unencrypted:
  ratio: 0.1
  retries: 3
  fast: true
token_secret: hidden
"""

MODES: dict[str, tuple[str, ...]] = {
    "full": (),
    "encrypted-regex": ("--encrypted-regex", "^(password|text|token_secret)$"),
    "unencrypted-suffix": ("--unencrypted-suffix", "_unencrypted"),
    "encrypted-suffix": ("--encrypted-suffix", "_secret"),
    "unencrypted-regex": ("--unencrypted-regex", "^(host|hosts|numbers|name)$"),
    "mac-only-encrypted": ("--mac-only-encrypted", "--encrypted-regex", "^(password|numbers)$"),
    "mac-only-full": ("--mac-only-encrypted",),
}


def assert_same(ours: Any, theirs: Any, where: str = "") -> None:
    """The same JSON value, kind for kind: sops's JSON writes an integral float as an integer."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        assert type(ours) is type(theirs) and ours == theirs, where
    elif isinstance(ours, float):
        assert isinstance(theirs, int | float), where
        assert ours == float(theirs), where
    elif isinstance(ours, int):
        assert type(theirs) is int and ours == theirs, where
    elif isinstance(ours, dict):
        assert isinstance(theirs, dict) and list(ours) == list(theirs), where
        for key in ours:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert isinstance(theirs, list) and len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


def assert_same_kinds(decrypted: Node, plain: Node, secrets: frozenset[KeyPath]) -> None:
    """Decrypted equals the plaintext as gitconf reads it, type for type: an encrypted 1.0 stays
    a float (its ENC value says so); sops writes a plaintext one back as `1`, an integer."""
    ours, theirs = dict(iter_leaves(decrypted)), dict(iter_leaves(plain))
    assert list(ours) == list(theirs)
    for key_path, leaf in ours.items():
        value, expected = leaf.value, theirs[key_path].value
        if type(expected) is float and type(value) is int and key_path not in secrets:
            assert value == expected, key_path
        else:
            assert type(value) is type(expected) and value == expected, key_path


@pytest.mark.parametrize("mode", list(MODES))
def test_decrypts_as_sops_does(sops: Sops, mode: str) -> None:
    encrypted = sops.encrypt(DOCUMENT, *MODES[mode])
    result = read_yaml("environments/production/payments.yaml", encrypted, sops.key.keyring())
    assert result.problems == [], [p.render() for p in result.problems]
    assert result.encrypted and result.tree is not None
    ours = to_plain(result.tree)
    assert_same(ours, sops.decrypt_json(encrypted))
    plain, _ = parse_yaml("plain.yaml", DOCUMENT.encode())
    assert plain is not None
    assert_same_kinds(result.tree, plain, result.secrets)

    # Each value keeps the place of its scalar in the encrypted file; the secrets are exactly
    # the values written ENC[...] there (and the empty strings and nulls SOPS leaves as they are).
    lines = encrypted.decode().splitlines()
    encrypted_tree, _ = parse_yaml("enc.yaml", encrypted)
    assert encrypted_tree is not None
    written = dict(iter_leaves(encrypted_tree))
    for key_path, leaf in iter_leaves(result.tree):
        scalar = written[key_path]
        assert leaf.source.line == scalar.source.line and leaf.source.col == scalar.source.col
        is_enc = isinstance(scalar.value, str) and scalar.value.startswith("ENC[")
        if is_enc:
            assert key_path in result.secrets
            assert lines[leaf.source.line - 1][leaf.source.col - 1 :].startswith("ENC[")
            assert leaf.source in result.sources
        elif key_path in result.secrets:
            assert scalar.value in ("", None), key_path
        else:
            assert leaf.source not in result.sources
    assert "sops" not in result.tree.value


def test_modes_encrypt_what_they_say(sops: Sops) -> None:
    """The partial modes leave values in plaintext (so the MAC covers plaintext values too)."""
    counts = {}
    for mode, flags in MODES.items():
        result = read_yaml("f.yaml", sops.encrypt(DOCUMENT, *flags), sops.key.keyring())
        assert result.problems == []
        counts[mode] = len(result.secrets)
    assert counts["encrypted-regex"] < counts["unencrypted-regex"] < counts["full"]
    assert counts["encrypted-suffix"] == 1
    assert counts["unencrypted-suffix"] == counts["full"]


def test_negative_zero(sops: Sops) -> None:
    """An encrypted -0.0 decrypts as sops does; a plaintext one breaks SOPS's own MAC (sops
    writes it back as `-0`, an integer 0 when read again) and both refuse the file."""
    encrypted = sops.encrypt("zero: -0.0\n")
    result = read_yaml("f.yaml", encrypted, sops.key.keyring())
    assert result.problems == [] and result.tree is not None
    value = result.tree.value["zero"].value
    assert value == 0.0 and math.copysign(1, value) == -1 and type(value) is float
    assert_same(to_plain(result.tree), sops.decrypt_json(encrypted))

    broken = sops.encrypt("zero_unencrypted: -0.0\nother: 1\n")
    assert sops.decrypt_fails(broken)
    result = read_yaml("f.yaml", broken, sops.key.keyring())
    assert [p.key_path for p in result.problems] == ["sops.mac"]
    assert "MAC mismatch" in result.problems[0].message


def test_time_values(sops: Sops) -> None:
    """A !!timestamp is encrypted as type time; it decrypts to the text sops writes for it."""
    document = (
        "when: !!timestamp 2024-01-01T10:00:00.500+02:00\nutc: !!timestamp 2024-05-06T07:08:09Z\n"
    )
    encrypted = sops.encrypt(document)
    assert b"type:time" in encrypted
    result = read_yaml("f.yaml", encrypted, sops.key.keyring())
    assert result.problems == []
    assert result.tree is not None
    assert to_plain(result.tree) == sops.decrypt_json(encrypted)


def test_unquoted_dates_become_timestamps(sops: Sops) -> None:
    """sops reads an unquoted date as a timestamp and encrypts 2021-09-07T00:00:00Z (a plaintext
    one is written back so too): gitconf gives what `sops --decrypt` gives; quoted, it stays."""
    encrypted = sops.encrypt('day: 2021-09-07\nquoted: "2021-09-07"\nday_unencrypted: 2021-09-07\n')
    result = read_yaml("f.yaml", encrypted, sops.key.keyring())
    assert result.problems == [] and result.tree is not None
    assert (
        to_plain(result.tree)
        == sops.decrypt_json(encrypted)
        == {
            "day": "2021-09-07T00:00:00Z",
            "quoted": "2021-09-07",
            "day_unencrypted": "2021-09-07T00:00:00Z",
        }
    )


def _floats() -> list[float]:
    rng = random.Random(20240601)
    values = [
        1.0, 1e20, -0.5, 3.14159, 0.1, 1 / 3, 2.0**53, 2.0**53 + 2, 1e21, 1e22, 1e-6, 1e-7,
        5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123456789012345680000.0,
        100.0, 1e16, 0.30000000000000004, 9.999999999999999e22, 4.35, 0.000123,
    ]  # fmt: skip
    for _ in range(150):
        exponent = rng.randint(-30, 30)
        values.append(rng.uniform(-1, 1) * 10.0**exponent)
    for _ in range(50):
        values.append(round(rng.uniform(0, 10_000), rng.randint(0, 6)))
    return values


def test_float_text_is_gos(sops: Sops) -> None:
    """What Go's FormatFloat(f, 'f', -1, 64) wrote into each ENC value is format_float(f);
    and the same floats in plaintext under the MAC verify."""
    floats = _floats()
    lines = "".join(f"  - {value!r}\n" for value in floats)
    document = f"floats:\n{lines}floats_unencrypted:\n{lines}"
    encrypted = sops.encrypt(document)
    tree, _ = parse_yaml("f.yaml", encrypted)
    assert tree is not None and is_sops_tree(tree)
    metadata, problems = parse_metadata("f.yaml", tree)
    assert metadata is not None, problems
    key = _data_key(metadata, sops.key.keyring())
    assert isinstance(key, bytes)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(key)
    for value, node in zip(floats, tree.value["floats"].value, strict=True):
        enc = parse_enc(node.value)
        assert not isinstance(enc, str) and enc.type == "float"
        written = cipher.decrypt(enc.iv, enc.data + enc.tag, b"floats:").decode()
        assert written == format_float(value), value
        assert float(written) == value
    result = read_yaml("f.yaml", encrypted, sops.key.keyring())
    assert result.problems == []
    assert result.tree is not None
    ours = to_plain(result.tree)
    assert ours["floats"] == floats == ours["floats_unencrypted"]
    assert_same(ours, sops.decrypt_json(encrypted))
    assert _opener(key)  # the opener the decryption used works on this key


def test_gitconf_tags_survive_in_encrypted_files(sops: Sops) -> None:
    """sops drops YAML tags when it encrypts; a gitconf tag added after encryption is kept
    (SOPS ignores tags, and the MAC covers values only)."""
    encrypted = sops.encrypt("pool:\n  size: 5\n  password: x\n")
    tagged = re.sub(rb"^pool:", b"pool: !replace", encrypted, flags=re.M)
    assert tagged != encrypted
    result = read_yaml("f.yaml", tagged, sops.key.keyring())
    assert result.problems == []
    assert result.tree is not None
    assert result.tree.value["pool"].tag == "replace"
    assert to_plain(result.tree) == {"pool": {"size": 5, "password": "x"}}
