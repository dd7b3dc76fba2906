"""A real `gitconf serve` process on 127.0.0.1 against a real repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import requests
import yaml

from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.server import ServeProcess, free_port, wait_until
from tests.conftest import BASE_FILES


def served_revision(server: ServeProcess, path: str = "/v1/config/staging/payments") -> str:
    return server.get(path).headers.get("X-Gitconf-Revision", "")


def test_commits_go_live_and_bad_ones_are_rejected(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state") as server:
        assert served_revision(server) == git(repo, "rev-parse", "HEAD")
        before = server.get("/v1/config/staging/payments").headers["ETag"]

        good = commit_all(
            repo, "eu pool", {"environments/production-eu/payments.yaml": "db: {pool: {max: 70}}\n"}
        )
        wait_until(lambda: served_revision(server) == good, what="the good commit to go live")
        assert server.get("/v1/config/production-eu/payments").json()["db"]["pool"]["max"] == 70
        assert server.get("/v1/config/staging/payments").headers["ETag"] == before

        bad = commit_all(repo, "break", {"base/payments.yaml": "db: {port: not-a-port}\n"})
        status = wait_until(
            lambda: (s := server.get("/v1/status").json())["rejected"] and s, what="the rejection"
        )
        assert status["rejected"][0]["revision"] == bad
        assert status["revision"] == good
        assert (
            "base/payments.yaml:1:12: db.port: 'not-a-port' is not of type 'integer'"
            in (status["rejected"][0]["problems"][0]["text"])
        )
        assert served_revision(server) == good
        assert server.get("/readyz").status_code == 200
        metrics = server.get("/metrics").text
        assert "gitconf_rejected_commits_total 1.0" in metrics
        assert server.stop() == 0


def test_restart_serves_the_last_good_revision_with_the_remote_gone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    state = tmp_path / "state"
    with ServeProcess(repo, state) as server:
        good = served_revision(server)
        body = server.get("/v1/config/production/payments").content
    shutil.move(repo, tmp_path / "elsewhere")
    with ServeProcess(repo, state) as server:
        assert served_revision(server) == good
        assert server.get("/v1/config/production/payments").content == body
        status = wait_until(
            lambda: (s := server.get("/v1/status").json())["poll"]["last_error"] and s
        )
        assert status["ready"] is True
        assert "fetching" in status["poll"]["last_error"]
        assert "gitconf_last_poll_success 0.0" in server.get("/metrics").text


def test_long_poll_over_http(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state") as server:
        etag = server.get("/v1/config/staging/search").headers["ETag"]
        timed_out = server.get(
            "/v1/config/staging/search?wait=0.3", headers={"If-None-Match": etag}
        )
        assert timed_out.status_code == 304
        answers: list[requests.Response] = []
        waiter = threading.Thread(
            target=lambda: answers.append(
                server.get(
                    "/v1/config/staging/search?wait=30", headers={"If-None-Match": etag}, timeout=40
                )
            )
        )
        waiter.start()
        sha = commit_all(repo, "new shards", {"base/search.yaml": "shards: [s7]\n"})
        waiter.join(40)
        [answer] = answers
        assert answer.status_code == 200
        assert answer.json() == {"region": "us-east-1", "shards": ["s7"]}
        assert answer.headers["X-Gitconf-Revision"] == sha


def test_tokens_and_scopes_over_http(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump(
            {"tokens": [{"name": "eu", "token_env": "EU_TOKEN", "scopes": ["read:production-eu"]}]}
        )
    )
    token = "t0ken-for-the-eu-readers-only"
    with ServeProcess(repo, tmp_path / "state", config=config, env={"EU_TOKEN": token}) as server:
        auth = {"Authorization": f"Bearer {token}"}
        assert server.get("/v1/config/production-eu/payments", headers=auth).status_code == 200
        assert server.get("/v1/config/production/payments", headers=auth).status_code == 403
        assert server.get("/v1/config/production-eu/payments").status_code == 401


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitconf", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_refuses_a_public_listen_without_tokens(tmp_path: Path) -> None:
    result = run_serve("--repo", str(tmp_path), "--listen", "0.0.0.0:8080")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0:8080 without tokens" in result.stderr


def test_bad_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("repo: x\npoll_interval: often\n")
    result = run_serve("--config", str(config))
    assert result.returncode == 2
    assert "poll_interval" in result.stderr and "'often'" in result.stderr
    result = run_serve("--listen", "127.0.0.1:8080")
    assert result.returncode == 2
    assert "repo" in result.stderr


def test_a_token_variable_missing_or_an_unusable_state_dir_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "repo": str(tmp_path),
                "tokens": [{"name": "ci", "token_env": "NOT_SET", "scopes": ["admin"]}],
            }
        )
    )
    result = run_serve("--config", str(config))
    assert result.returncode == 2
    assert "tokens: 'ci' reads token_env 'NOT_SET', which is not set" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_serve("--repo", str(tmp_path), "--state-dir", "/proc/no-such-place")
    assert result.returncode == 2
    assert "state_dir: cannot use /proc/no-such-place" in result.stderr


def test_listen_localhost_serves_on_127_0_0_1(repo: Path, tmp_path: Path) -> None:
    # It passed the settings check, then granian raised 'invalid IP address syntax'.
    port = free_port()
    server = ServeProcess(repo, tmp_path / "state", port=port)
    server.extra_args = ["--listen", f"localhost:{port}"]  # the last --listen wins
    with server:
        assert server.get("/v1/config/staging/payments").status_code == 200
    assert f"Listening at: http://127.0.0.1:{port}" in server.log()


def test_listen_on_another_host_name_exits_2_in_one_line(tmp_path: Path) -> None:
    result = run_serve("--repo", str(tmp_path), "--listen", "config.internal:8080")
    assert result.returncode == 2
    assert result.stderr == (
        "gitconf: listen: 'config.internal:8080' names the host 'config.internal', and gitconf "
        "listens on an IP address: use 127.0.0.1:8080 (this machine only), 0.0.0.0:8080 (every "
        "interface; tokens required) or the address of one interface\n"
    )


def test_a_second_server_on_a_port_in_use_exits_2(repo: Path, tmp_path: Path) -> None:
    # Granian listens with SO_REUSEPORT: the second server started and took half the traffic.
    with ServeProcess(repo, tmp_path / "first") as first:
        result = run_serve(
            "--repo", str(repo), "--listen", f"127.0.0.1:{first.port}",
            "--state-dir", str(tmp_path / "second"),
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stderr == (
            f"gitconf: listen: 127.0.0.1:{first.port} is already in use (another gitconf "
            "serve?); stop what listens there or choose another port, or set reuse_port: true "
            "(--reuse-port) to share it on purpose\n"
        )
        assert first.get("/v1/config/staging/payments").status_code == 200


def test_reuse_port_shares_the_port_when_asked(repo: Path, tmp_path: Path) -> None:
    with ServeProcess(repo, tmp_path / "first") as first:
        second = ServeProcess(
            repo, tmp_path / "second", port=first.port, env={"GITCONF_REUSE_PORT": "true"}
        )
        second.log_path = tmp_path / "second.log"
        second.start(wait_ready=False)  # /healthz may be answered by either server
        try:
            # Its own worker started and published: it shares the port, as asked.
            wait_until(lambda: "INFO gitconf.jobs.poll: published" in second.log())
            assert f"Listening at: http://127.0.0.1:{first.port}" in second.log()
            assert second.proc is not None and second.proc.poll() is None
            assert first.proc is not None and first.proc.poll() is None
        finally:
            second.stop()


def test_a_restart_on_the_same_port_is_not_refused(repo: Path, tmp_path: Path) -> None:
    # A server that stops with a keep-alive connection open closes it first, which leaves
    # that connection in TIME_WAIT on its port: a restart must not take it for a listener.
    server = ServeProcess(repo, tmp_path / "state").start()
    with requests.Session() as session:
        assert session.get(server.url + "/healthz", timeout=5).status_code == 200
        server.stop()
    port = server.port
    with ServeProcess(repo, tmp_path / "state", port=port) as again:
        assert again.get("/healthz").status_code == 200
