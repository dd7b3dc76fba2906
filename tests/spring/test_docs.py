"""The server.yaml examples of the Spring settings are settings gitconf accepts, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitconf.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def yaml_blocks(path: Path, after: str) -> list[str]:
    text = path.read_text()
    start = text.index(after)
    return re.findall(r"```yaml\n(.*?)```", text[start:], re.S)


@pytest.mark.parametrize(
    ("doc", "heading"),
    [
        ("docs/spring-migration.md", "## The Spring settings of server.yaml"),
        ("README.md", "## Serving"),
    ],
)
def test_the_spring_settings_example_loads(tmp_path: Path, doc: str, heading: str) -> None:
    block = yaml_blocks(ROOT / doc, heading)[0]
    assert "spring:" in block
    config = tmp_path / "server.yaml"
    config.write_text(block)
    env = {"GIT_TOKEN": "t", "GITCONF_ADMIN_TOKEN": "a" * 32, "PROD_READ_TOKEN": "p" * 32}
    settings = load_settings({"repo": str(tmp_path)}, environ=env, config_file=str(config))
    assert settings.spring_default_environment == "production"
    assert "release/*" in settings.spring_labels
