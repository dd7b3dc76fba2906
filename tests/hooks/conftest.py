from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitconf.bootstrap import Server, build
from gitconf.settings import load_settings
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, make_repo

CONFIG_FILES: dict[str, str | bytes | None] = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "base/payments.yaml": "db:\n  host: db.internal\n  pool: {max: 10}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "config", dict(CONFIG_FILES))


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Build (not start) a Server over a real repository; stopped at the end."""
    made: list[Server] = []

    def factory(repo: Path, environ: dict[str, str] | None = None, **options: Any) -> Server:
        flags = {
            "repo": str(repo),
            "state_dir": str(tmp_path / f"state{len(made)}"),
            "poll_interval": 600,
            **options,
        }
        server = build(load_settings(flags, environ=environ or {}), environ=environ or {})
        made.append(server)
        return server

    yield factory
    for server in made:
        server.stop()
