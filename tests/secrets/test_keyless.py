"""`gitconf validate` without a key: SOPS structure, the MAC's presence, stand-ins by type."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gitconf.core.model import to_plain
from gitconf.secrets import check_yaml, read_yaml
from tests.secrets.conftest import Sops

DOCUMENT = """\
db:
  host: db.internal
  port: 5432
  password: hunter2
  ratio: 0.75
  tls: true
  empty: ""
  nothing: null
hosts: [a, b]
when: !!timestamp 2024-01-01T10:00:00Z
"""
ROOT = Path(__file__).resolve().parents[2]


def test_stand_ins_carry_the_recorded_types(sops: Sops) -> None:
    encrypted = sops.encrypt(DOCUMENT, "--unencrypted-regex", "^host$")
    checked = check_yaml("secrets.yaml", encrypted)
    assert checked.problems == [] and checked.tree is not None and checked.encrypted
    assert to_plain(checked.tree) == {
        "db": {
            "host": "db.internal",
            "port": 0,
            "password": "",
            "ratio": 0.0,
            "tls": False,
            "empty": "",
            "nothing": None,
        },
        "hosts": ["", ""],
        "when": "1970-01-01T00:00:00Z",
    }
    assert type(checked.tree.value["db"].value["ratio"].value) is float
    # the same secrets, at the same places, as with the key
    decrypted = read_yaml("secrets.yaml", encrypted, sops.key.keyring())
    assert checked.secrets == decrypted.secrets and checked.sources == decrypted.sources
    assert ("db", "host") not in checked.secrets and ("hosts", 1) in checked.secrets
    [skipped] = checked.skipped
    assert "the MAC was not verified" in skipped.message
    assert "9 encrypted values were checked for their recorded type only" in skipped.message
    assert skipped.render().startswith("secrets.yaml:")
    assert decrypted.skipped == ()


def test_structure_problems_are_found_without_a_key(sops: Sops) -> None:
    encrypted = sops.encrypt(DOCUMENT)
    no_mac = re.sub(rb"\n    mac: [^\n]+", b"", encrypted)
    assert [p.key_path for p in check_yaml("f.yaml", no_mac).problems] == ["sops.mac"]
    truncated = re.sub(rb"(password: ENC\[AES256_GCM,data:[^,]+,iv:)[^,]+", rb"\1AAAA", encrypted)
    [problem] = check_yaml("f.yaml", truncated).problems
    assert problem.key_path == "db.password" and "iv has 3 bytes" in problem.message
    planted = re.sub(rb"port: ENC\[[^\]]+\]", b"port: 5432", encrypted)
    [problem] = check_yaml("f.yaml", planted).problems
    assert problem.key_path == "db.port" and "in plaintext" in problem.message
    unknown = re.sub(rb"(port: ENC\[[^\]]+),type:int\]", rb"\1,type:decimal]", encrypted)
    [problem] = check_yaml("f.yaml", unknown).problems
    assert "type 'decimal' is not one SOPS writes" in problem.message


def test_what_the_key_finds_and_the_check_cannot(sops: Sops) -> None:
    """A tampered value passes the key-less check (it is skipped), and fails with the key."""
    encrypted = sops.encrypt(DOCUMENT)
    tampered = re.sub(
        rb"(password: ENC\[AES256_GCM,data:)(.)",
        rb"\1A" if b"data:A" not in encrypted else rb"\1B",
        encrypted,
        count=1,
    )
    assert tampered != encrypted
    assert check_yaml("f.yaml", tampered).problems == []
    assert read_yaml("f.yaml", tampered, sops.key.keyring()).problems != []


def test_plaintext_files_pass_through(sops: Sops) -> None:
    checked = check_yaml("base/payments.yaml", b"db:\n  port: 5432\nsops:\n  enabled: true\n")
    assert checked.problems == [] and not checked.encrypted and checked.skipped == ()
    assert checked.tree is not None
    assert to_plain(checked.tree) == {"db": {"port": 5432}, "sops": {"enabled": True}}
    bad = check_yaml("base/payments.yaml", b"db: [")
    assert bad.tree is None and bad.problems[0].message.startswith("YAML syntax error")


def test_needs_neither_pyrage_nor_cryptography(sops: Sops) -> None:
    """Key-less validation runs where the secrets extra is not installed."""
    target = sops.folder / "f.yaml"
    target.write_bytes(sops.encrypt(DOCUMENT))
    script = (
        "import sys\n"
        "sys.modules['pyrage'] = None\n"
        "sys.modules['cryptography'] = None\n"
        "from gitconf.secrets import check_yaml, read_yaml\n"
        f"data = open({str(target)!r}, 'rb').read()\n"
        "checked = check_yaml('f.yaml', data)\n"
        "assert checked.problems == [] and checked.skipped, checked\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
