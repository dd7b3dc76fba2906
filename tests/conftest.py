from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from gitconf.bootstrap import Server, build
from gitconf.settings import load_settings
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, make_repo
from gitconf.testing.pg import fresh_database

PAYMENTS_SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {"db": {"type": "object", "properties": {"port": {"type": "integer"}}}}
}
"""

BASE_FILES = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": PAYMENTS_SCHEMA,
    "schemas/search.schema.json": OPEN_SCHEMA,
    "base/_all.yaml": "region: us-east-1\n",
    "base/payments.yaml": "db:\n  host: db.internal\n  port: 5432\n  pool: {max: 10}\n",
    "base/search.yaml": "shards: [s1, s2]\n",
    "environments/production/payments.yaml": "db:\n  pool: {max: 50}\n",
    "environments/production-eu/_all.yaml": "region: eu-west-1\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "config", dict(BASE_FILES))


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def factory(repo: Path | str, environ: dict[str, str] | None = None, **options: Any) -> Server:
        """Build (not start) a Server; servers made by one test share a state dir unless told."""
        flags = {
            "repo": str(repo),
            "state_dir": str(tmp_path / "state"),
            "poll_interval": 600,
            **options,
        }
        server = build(load_settings(flags, environ=environ or {}), environ=environ or {})
        made.append(server)
        return server

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def server(repo: Path, make_server: Callable[..., Server]) -> Server:
    server = make_server(repo)
    assert server.poller.run_once() == "published"
    return server


@pytest.fixture
def client(server: Server) -> Any:
    return server.app.test_client()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (skipped without one)."""
    base = os.environ.get("GITCONF_TEST_DATABASE_URL")
    if not base:
        pytest.skip("GITCONF_TEST_DATABASE_URL is not set (.ci/run sets it)")
    with fresh_database(base) as url:
        yield url


def expect_one_line_exit_2(result: Result, *words: str) -> str:
    """Assert a usage/access error: exit 2, one clear line, no traceback; return the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    text = [line for line in result.output.splitlines() if line.strip()]
    assert len(text) == 1, result.output
    for word in words:
        assert word in text[0], text[0]
    return text[0]
