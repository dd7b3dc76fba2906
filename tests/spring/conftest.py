from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitconf.bootstrap import Server, build
from gitconf.settings import load_settings
from gitconf.testing import commit_all, git

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"

MANIFEST = """\
version: 1
environments:
  staging: {}
  production: {}
  production-eu: {extends: production}
  eu: {}
validation:
  require_schema: false
"""

# payments exercises !delete, !replace, null, empty values and a dotted key; api and
# api-production make `api-production-eu` read two ways (api in production-eu, or
# api-production in eu).
FILES: dict[str, str | bytes | None] = {
    "gitconf.yaml": MANIFEST,
    "base/_all.yaml": "region: us\n",
    "base/payments.yaml": (
        "db:\n"
        "  host: db.internal\n"
        "  pool: {max: 10, min: 2}\n"
        "servers: [a, b, c]\n"
        "providers:\n"
        "  stripe: {key: s}\n"
        "  adyen: {key: a}\n"
        "debug:\n"
        "  toolbar: true\n"
        "fallback: null\n"
        "origins: []\n"
        "extra: {}\n"
        "labels:\n"
        "  app.kubernetes.io/name: payments\n"
    ),
    "environments/production/payments.yaml": (
        "debug: !delete\nservers: [p1, p2]\ndb:\n  pool:\n    max: 50\n"
    ),
    "environments/production-eu/payments.yaml": "providers: !replace\n  adyen: {key: eu}\n",
    "environments/staging/payments.yaml": "db:\n  host: staging-db\n",
    "base/api.yaml": "a: 1\n",
    "base/api-production.yaml": "b: 2\n",
}

TOKENS = [
    {"name": "prod-reader", "token": "p" * 32, "scopes": ["read:production*"]},
    {"name": "staging-reader", "token": "s" * 32, "scopes": ["read:staging"]},
]


def copy_sample(dest: Path) -> Path:
    """A fresh Git repository holding the sample repository, committed on main."""
    shutil.copytree(SAMPLE, dest)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "the sample repository")
    return dest


def build_server(repo: Path | str, state_dir: Path, **options: Any) -> Server:
    """A Server over repo that has published its branch head."""
    flags = {"repo": str(repo), "state_dir": str(state_dir), **options}
    server = build(load_settings(flags, environ={}), environ={})
    assert server.poller.run_once() == "published"
    return server


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def factory(repo: Path | str, **options: Any) -> Server:
        made.append(build_server(repo, tmp_path / f"state{len(made)}", **options))
        return made[-1]

    yield factory
    for server in made:
        server.engine.dispose()
