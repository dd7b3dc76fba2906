"""A config as an agent file's bytes, and putting a file in place (real files and commands)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from gitconf.agent.config import FileSpec
from gitconf.agent.files import put_file, run_command
from gitconf.agent.render import RenderFailed, render_file

CONFIG = {"zone": "<eu> & co", "db": {"host": "h", "port": 5432}, "app.name": "pay"}


def spec(tmp_path: Path, **fields: object) -> FileSpec:
    values: dict[str, object] = {
        "environment": "production",
        "service": "payments",
        "destination": tmp_path / "out" / "file",
        "format": "json",
        "template": None,
        "perms": None,
        "check_cmd": None,
        "reload_cmd": None,
        "command_timeout": 5.0,
    }
    values.update(fields)
    return FileSpec(**values)  # type: ignore[arg-type]


def test_a_template_gets_the_keys_the_config_and_json_as_written(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text(
        "{{ db.host }}:{{ db.port }} {{ config['app.name'] }} {{ environment }}/{{ service }}"
        " {{ revision }}\n{{ config | tojson }}\n{{ db | toyaml }}"
    )
    data = render_file(spec(tmp_path, format=None, template=template), CONFIG, "abc")
    assert data.decode() == (
        "h:5432 pay production/payments abc\n"
        '{"zone": "<eu> & co", "db": {"host": "h", "port": 5432}, "app.name": "pay"}\n'
        "host: h\nport: 5432\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ db.user }}", "t.j2: 'dict object' has no attribute 'user'"),
        ("{% if %}", "t.j2:1: Expected an expression"),
        ("{% include 'missing.j2' %}", "t.j2: template 'missing.j2' not found"),
    ],
)
def test_a_broken_template_fails_with_where_and_what(
    tmp_path: Path, text: str, message: str
) -> None:
    template = tmp_path / "t.j2"
    template.write_text(text)
    with pytest.raises(RenderFailed) as caught:
        render_file(spec(tmp_path, format=None, template=template), CONFIG, "abc")
    assert message in str(caught.value)


def test_env_refuses_keys_that_collide(tmp_path: Path) -> None:
    with pytest.raises(RenderFailed, match=r"cannot be written as env: keys db\.pool and db_pool"):
        render_file(spec(tmp_path, format="env"), {"db": {"pool": 1}, "db_pool": 2}, None)


def test_put_file_writes_only_changes_and_a_failing_check_keeps_the_old(tmp_path: Path) -> None:
    log = tmp_path / "reloads"
    target = spec(
        tmp_path,
        perms=0o600,
        check_cmd=f'{sys.executable} -c \'import sys; sys.exit(b"bad" in open(sys.argv[1], "rb").read())\' {{{{path}}}}',
        reload_cmd=f"echo {{{{path}}}} >> {log}",
    )
    assert put_file(target, b"one\n").status == "written"
    assert stat.S_IMODE(target.destination.stat().st_mode) == 0o600
    assert put_file(target, b"one\n").status == "unchanged"
    failed = put_file(target, b"bad\n")
    assert failed.status == "check_failed" and "exited with 1" in failed.message
    assert target.destination.read_bytes() == b"one\n"
    assert log.read_text().splitlines() == [str(target.destination)]
    assert sorted(p.name for p in target.destination.parent.iterdir()) == ["file"]


def test_a_command_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    result = run_command("sleep 30 & sleep 30; echo never", tmp_path, 0.3)
    assert not result.ok and "timed out after 0.3 s" in result.summary
