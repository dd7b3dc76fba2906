"""The workflow of docs/secrets.md, step by step, in a real Git repository with the real sops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gitconf.core.layers import discover
from gitconf.core.model import to_plain
from gitconf.git.read import fileset_from_dir
from gitconf.secrets import load_keyring, read_yaml
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, commit_all, make_repo
from tests.secrets.conftest import AgeKey, Sops

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_workflow(sops: Sops, tmp_path: Path) -> None:
    # 1. A key, made with pyrage as the doc shows (the line is taken from the doc itself).
    doc = (ROOT / "docs" / "secrets.md").read_text()
    command = next(line for line in doc.splitlines() if line.startswith("python -c"))
    script = command.split('"', 1)[1].rsplit('"', 1)[0]
    made = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    key_file = tmp_path / "gitconf-production.key"
    key_file.write_text(made.stdout)
    server_key = load_keyring([str(key_file)])
    editor = sops.key

    # 2. .sops.yaml with the doc's rules, for the server and an editor.
    repo = make_repo(
        tmp_path / "config",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": "db:\n  host: db.internal\n",
            "environments/production/payments/config.yaml": "db:\n  pool: 50\n",
            "environments/production/payments/secrets.yaml": "db:\n  password: hunter2\n",
            "environments/staging/payments/secrets.yaml": "db:\n  password: staging-pw\n",
            ".sops.yaml": (
                "creation_rules:\n"
                "  - path_regex: ^environments/production(-eu)?/[^/]+/secrets[^/]*\\.yaml$\n"
                f"    age: >-\n      {server_key.recipients[0]},\n      {editor.recipient}\n"
                "  - path_regex: ^environments/[^/]+/[^/]+/secrets[^/]*\\.yaml$\n"
                f"    age: {editor.recipient}\n"
            ),
        },
    )

    # 3. Encrypt in place, commit.
    for path in ("environments/production/payments/secrets.yaml",
                 "environments/staging/payments/secrets.yaml"):  # fmt: skip
        subprocess.run(
            [sops.binary, "--encrypt", "--in-place", path],
            cwd=repo, env=sops.env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    commit_all(repo, "payments: database password from SOPS")
    files = fileset_from_dir(repo)
    assert ".sops.yaml" not in files.files  # not a config path
    production = files.files["environments/production/payments/secrets.yaml"]
    assert b"hunter2" not in production and production.count(b"recipient: age1") == 2

    # The secrets file is a layer of payments, merged after config.yaml.
    layout, problems = discover(list(files.files))
    assert problems == []
    assert layout.files[("production", "payments")] == [
        "environments/production/payments/config.yaml",
        "environments/production/payments/secrets.yaml",
    ]

    # 4. The server's key decrypts production's file; staging's is not for it.
    result = read_yaml("environments/production/payments/secrets.yaml", production, server_key)
    assert result.problems == [] and result.tree is not None
    assert to_plain(result.tree) == {"db": {"password": "hunter2"}}
    assert result.secrets == {("db", "password")}
    staging = files.files["environments/staging/payments/secrets.yaml"]
    [problem] = read_yaml(
        "environments/staging/payments/secrets.yaml", staging, server_key
    ).problems
    assert "no age key of the server decrypts this file" in problem.message
    assert read_yaml("s.yaml", staging, editor.keyring()).problems == []


def test_a_key_file_of_age_keygen_form(tmp_path: Path) -> None:
    """The key file format of the doc's step 1 (age-keygen's): comments, then the key."""
    key = AgeKey(tmp_path / "k.txt")
    text = key.path.read_text()
    assert text.splitlines()[1] == f"# public key: {key.recipient}"
    assert load_keyring([str(key.path)]).recipients == (key.recipient,)
