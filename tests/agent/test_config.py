"""agent.yaml: what a bad one says, and what a good one becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitconf.agent.config import AgentConfigError, load_agent_config


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return load_agent_config(path, environ or {})


def test_a_good_config_resolves_paths_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  s3cret\n")
    config = load(
        tmp_path,
        "server: https://config.internal/\ntoken_file: token\ncache_dir: cache\n"
        "wait: {min: 0.5, max: 3}\nfiles:\n"
        "  - {environment: production, service: payments, destination: out/p.json, perms: '0640'}\n"
        "  - {environment: production, service: payments, destination: /etc/p.conf, template: p.j2}\n",
    )
    assert config.server == "https://config.internal"  # type: ignore[attr-defined]
    assert config.token == "s3cret"  # type: ignore[attr-defined]
    assert config.cache_dir == str(tmp_path / "cache")  # type: ignore[attr-defined]
    first, second = config.files  # type: ignore[attr-defined]
    assert (first.destination, first.format, first.perms) == (
        tmp_path / "out/p.json",
        "json",
        0o640,
    )
    assert (second.destination, second.format, second.template) == (
        Path("/etc/p.conf"),
        None,
        tmp_path / "p.j2",
    )
    assert config.configs() == [("production", "payments")]  # type: ignore[attr-defined]
    assert config.cache_secrets is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "server: http://x\nfiles:\n  - {environment: prod, service: p, destination: d, perms: '999'}\n",
            "agent.yaml:3:60: files[0].perms: '999' does not match",
        ),
        ("server: x\nfiles: []\n", "agent.yaml:1:9: server: 'x' does not match"),
        (
            "server: http://x\nfiles:\n  - {environment: prod, service: p, destination: d, format: json, template: t}\n",
            "files[0]: give format or template, not both",
        ),
        (
            "server: http://x\ntoken_env: NOPE\nfiles: [{environment: e, service: s, destination: d}]\n",
            "token_env: the variable 'NOPE' is not set or empty",
        ),
        (
            "server: http://x\nwait: {min: 3, max: 1}\nfiles: [{environment: e, service: s, destination: d}]\n",
            "wait: max (1 s) is less than min (3 s)",
        ),
        (
            "server: http://x\nfiles: [{environment: e, service: s, destination: d}, {environment: f, service: s, destination: d}]\n",
            "is the destination of two entries",
        ),
        (
            "server: http://x\nserver: http://y\nfiles: []\n",
            "agent.yaml:2:1: server: duplicate key 'server'",
        ),
        (
            "server: http://:80\nfiles: [{environment: e, service: s, destination: d}]\n",
            "server: server URL 'http://:80' must be http:// or https:// and name a host",
        ),
        (
            "server: http://x\ntoken_file: two-lines\n"
            "files: [{environment: e, service: s, destination: d}]\n",
            "token_file: '{tmp}/two-lines' holds more than one line",
        ),
    ],
)
def test_a_bad_config_says_where_and_what(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "two-lines").write_text("tok\nen\n")
    with pytest.raises(AgentConfigError) as caught:
        load(tmp_path, text)
    assert message.format(tmp=tmp_path) in str(caught.value)
