"""A real `gitconf agent` process against a real `gitconf serve` on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import stat
import sys
import time
from pathlib import Path

from gitconf.core.render import render
from gitconf.spring.properties import to_properties
from gitconf.testing import commit_all
from gitconf.testing.server import ServeProcess, wait_until
from tests.agent.conftest import AgentProcess, write_agent_config

PY = sys.executable


def revision(server: ServeProcess) -> str:
    return server.get("/v1/config/production/payments").headers["X-Gitconf-Revision"]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_files_are_rendered_and_a_commit_reaches_them(
    served: tuple[Path, ServeProcess], agents: list[AgentProcess], tmp_path: Path
) -> None:
    repo, server = served
    out, reloads = tmp_path / "out", tmp_path / "reloads.txt"
    (tmp_path / "search.conf.j2").write_text(
        "shards = {{ shards | join(',') }}\n"
        "# {{ environment }}/{{ service }} at {{ revision }}\n"
        "{{ config | tojson }}\n"
    )
    config = write_agent_config(
        tmp_path / "agent.yaml",
        server.url,
        [
            {
                "environment": "production",
                "service": "payments",
                "destination": "out/payments.json",
                "perms": "0640",
                "check_cmd": f"{PY} -m json.tool {{{{path}}}}",
                "reload_cmd": f"echo json {{{{path}}}} >> {reloads}",
            },
            {
                "environment": "production",
                "service": "payments",
                "destination": "out/p.yaml",
                "format": "yaml",
            },
            {
                "environment": "staging",
                "service": "payments",
                "destination": "out/p.env",
                "format": "env",
            },
            {
                "environment": "production-eu",
                "service": "payments",
                "destination": "out/p.properties",
                "format": "properties",
            },
            {
                "environment": "staging",
                "service": "search",
                "destination": "out/search.conf",
                "template": "search.conf.j2",
            },
        ],
        cache_dir="cache",
    )
    agent = AgentProcess(config).start()
    agents.append(agent)
    wait_until(
        lambda: (out / "search.conf").exists() and lines(reloads), what=f"files\n{agent.log()}"
    )
    production = server.get("/v1/config/production/payments").json()
    assert (out / "payments.json").read_bytes() == render(production, "json")
    assert (out / "p.yaml").read_bytes() == render(production, "yaml")
    staging = server.get("/v1/config/staging/payments").json()
    assert (out / "p.env").read_bytes() == render(staging, "env")
    eu = server.get("/v1/config/production-eu/payments").json()
    assert (out / "p.properties").read_bytes() == to_properties(eu)
    revision = server.get("/v1/config/staging/search").headers["X-Gitconf-Revision"]
    assert (out / "search.conf").read_text() == (
        f"shards = s1,s2\n# staging/search at {revision}\n"
        '{"region": "us-east-1", "shards": ["s1", "s2"]}\n'
    )
    assert stat.S_IMODE((out / "payments.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((out / "p.yaml").stat().st_mode) == 0o644
    assert lines(reloads) == [f"json {out / 'payments.json'}"]

    commit_all(repo, "pool", {"environments/production/payments.yaml": "db: {pool: {max: 70}}\n"})
    wait_until(lambda: len(lines(reloads)) == 2, what=f"the reload\n{agent.log()}")
    assert json.loads((out / "payments.json").read_text())["db"]["pool"]["max"] == 70
    wait_until(lambda: "out/payments.json: written" in agent.log())  # logged after the reload
    assert "production/payments changed at revision" in agent.log()
    assert agent.stop() == 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # nothing staged left


def test_a_failing_check_keeps_the_old_file_and_a_burst_reloads_once(
    served: tuple[Path, ServeProcess], agents: list[AgentProcess], tmp_path: Path
) -> None:
    repo, server = served
    target, reloads = tmp_path / "payments.json", tmp_path / "reloads.txt"
    check = (
        f'{PY} -c \'import json,sys; sys.exit(json.load(open(sys.argv[1]))["db"]["port"] == 1)\''
    )
    files = [
        {
            "environment": "production",
            "service": "payments",
            "destination": str(target),
            "check_cmd": check + " {{path}}",
            "reload_cmd": f"echo reload >> {reloads}",
        }
    ]
    config = write_agent_config(tmp_path / "agent.yaml", server.url, files)
    agent = AgentProcess(config).start()
    agents.append(agent)
    wait_until(lambda: lines(reloads), what=f"the first render\n{agent.log()}")
    good = target.read_bytes()
    commit_all(repo, "bad port", {"base/payments.yaml": "db: {host: db.internal, port: 1}\n"})
    wait_until(lambda: "check_cmd failed, the old file stays" in agent.log(), what=agent.log())
    assert target.read_bytes() == good
    assert lines(reloads) == ["reload"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".staged")] == []

    # Three commits, each served before the next is made: with wait.min 1 s, one reload.
    agent.stop()
    write_agent_config(config, server.url, files, wait={"min": 1.0, "max": 5})
    agent = AgentProcess(config).start()
    agents.append(agent)
    wait_until(lambda: agent.log().count("watching 1 config(s)") == 2, what=agent.log())
    for port in (2, 3, 4):
        sha = commit_all(
            repo, f"port {port}", {"base/payments.yaml": f"db: {{host: h, port: {port}}}\n"}
        )
        wait_until(lambda sha=sha: revision(server) == sha, what=f"{sha} served")
    wait_until(
        lambda: len(lines(reloads)) >= 2 and json.loads(target.read_text())["db"]["port"] == 4,
        what=f"the burst\n{agent.log()}",
    )
    assert lines(reloads) == ["reload", "reload"]
    # The first agent saw the bad port; this one at least two of the three commits (the long
    # poll may fold two publishes into one answer), and rendered them once.
    assert agent.log().count("changed at revision") >= 3

    # A steady stream of commits, each within wait.min of the last: rendered at wait.max.
    write_agent_config(config, server.url, files, wait={"min": 1.0, "max": 1.5})
    agent.signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: read" in agent.log(), what=agent.log())
    for port in range(5, 17):
        sha = commit_all(
            repo, f"port {port}", {"base/payments.yaml": f"db: {{host: h, port: {port}}}\n"}
        )
        wait_until(lambda sha=sha: revision(server) == sha, what=f"{sha} served")
        if json.loads(target.read_text())["db"]["port"] != 4:
            break
    else:
        raise AssertionError(f"nothing rendered during 12 commits in a row:\n{agent.log()}")
    assert agent.stop() == 0


def test_the_server_killed_and_restarted(
    served: tuple[Path, ServeProcess], agents: list[AgentProcess], tmp_path: Path
) -> None:
    repo, server = served
    target, reloads = tmp_path / "search.json", tmp_path / "reloads.txt"
    files = [
        {
            "environment": "staging",
            "service": "search",
            "destination": str(target),
            "reload_cmd": f"echo reload >> {reloads}",
        }
    ]
    config = write_agent_config(tmp_path / "agent.yaml", server.url, files, cache_dir="cache")
    once = AgentProcess(tmp_path / "agent.yaml")
    assert once.run_once() == 0, once.log()  # served
    target.unlink()
    agent = AgentProcess(config).start()
    agents.append(agent)
    wait_until(lambda: "watching 1 config(s)" in agent.log() and target.exists(), what=agent.log())
    rendered = target.read_bytes()

    server.kill()
    wait_until(lambda: "watch failed" in agent.log(), what=agent.log())
    assert agent.alive() and target.read_bytes() == rendered
    assert once.run_once() == 0, once.log()  # from the cache
    assert "using the cached copy" in once.log()
    no_cache = write_agent_config(tmp_path / "no-cache.yaml", server.url, files, cache_dir="empty")
    failing = AgentProcess(no_cache)
    assert failing.run_once() == 1
    assert "the config cannot be read" in failing.log() and "not written" in failing.log()

    restarted = ServeProcess(repo, server.state_dir, port=server.port).start()
    try:
        commit_all(repo, "shards", {"base/search.yaml": "shards: [s8]\n"})
        wait_until(lambda: b"s8" in target.read_bytes(), what=f"the next commit\n{agent.log()}")
        wait_until(
            lambda: len(lines(reloads)) == 3
        )  # --once, the start, the commit: after the rename
        assert "the watch reaches the server again" in agent.log()
        assert agent.stop() == 0
    finally:
        restarted.stop()


def test_sighup_rereads_the_config_and_sigterm_stops_promptly(
    served: tuple[Path, ServeProcess], agents: list[AgentProcess], tmp_path: Path
) -> None:
    _, server = served
    first = {"environment": "staging", "service": "search", "destination": "one.json"}
    second = {
        "environment": "production",
        "service": "payments",
        "destination": "two.env",
        "format": "env",
    }
    config = write_agent_config(tmp_path / "agent.yaml", server.url, [first], long_poll=60)
    agent = AgentProcess(config).start()
    agents.append(agent)
    wait_until(lambda: (tmp_path / "one.json").exists(), what=agent.log())
    write_agent_config(config, server.url, [first, second], long_poll=60)
    agent.signal(signal.SIGHUP)
    wait_until(lambda: (tmp_path / "two.env").exists(), what=agent.log())
    assert "SIGHUP: read" in agent.log()
    assert b"DB_POOL_MAX=50\n" in (tmp_path / "two.env").read_bytes()

    config.write_text("server: http://x\nfiles: [{environment: Bad}]\n")
    agent.signal(signal.SIGHUP)
    wait_until(lambda: "going on with the agent config as it was" in agent.log(), what=agent.log())
    assert "agent.yaml:2:9: files[0]: 'service' is a required property" in agent.log()
    assert agent.alive()
    wait_until(lambda: agent.log().count("watching 2 config(s)") == 1)
    started = time.monotonic()
    assert agent.stop(timeout=5) == 0  # in the middle of two 60 s long polls
    assert time.monotonic() - started < 3
    assert "stopping" in agent.log()
