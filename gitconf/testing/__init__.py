"""Builders for tests and benchmarks: real Git repositories in a temporary folder."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd and return its stdout; fail loudly on error."""
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "gitconf tests",
            "GIT_AUTHOR_EMAIL": "tests@gitconf.invalid",
            "GIT_COMMITTER_NAME": "gitconf tests",
            "GIT_COMMITTER_EMAIL": "tests@gitconf.invalid",
            "HOME": str(cwd),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        },
    )
    return result.stdout.strip()


def write_files(root: Path, files: dict[str, str | bytes | None]) -> None:
    """Write files under root; a None value deletes the file."""
    for rel, content in files.items():
        path = root / rel
        if content is None:
            if path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def make_repo(
    path: Path, files: dict[str, str | bytes | None], *, commit: bool = True, branch: str = "main"
) -> Path:
    """Create a Git work tree at path holding files, committed unless commit=False."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    write_files(path, files)
    if commit:
        commit_all(path, "initial")
    return path


def commit_all(path: Path, message: str, files: dict[str, str | bytes | None] | None = None) -> str:
    """Write files (if given), commit everything in the work tree and return the new sha."""
    if files:
        write_files(path, files)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


MINIMAL_MANIFEST = """\
version: 1
environments:
  staging: {}
  production: {}
  production-eu: {extends: production}
validation:
  require_schema: true
"""

OPEN_SCHEMA = '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}\n'


def signed_github_push(
    secret: str, after: str, ref: str = "refs/heads/main"
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a GitHub push webhook signed with secret (X-Hub-Signature-256)."""
    body = json.dumps({"ref": ref, "after": after, "commits": []}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }
    return body, headers
