from __future__ import annotations

from pathlib import Path

import pytest

from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, make_repo

CONFIG_FILES: dict[str, str | bytes | None] = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "base/payments.yaml": "db:\n  host: db.internal\n  pool: {max: 10}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "config", dict(CONFIG_FILES))
