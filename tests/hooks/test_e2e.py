"""End to end: a real `gitconf serve` tracking a real bare repository, woken only by hooks.

The poll interval is 600 s, so once the server is ready only a hook can explain the new
commit being served.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gitconf.cli import main
from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.hooks.conftest import CONFIG_FILES
from tests.hooks.payloads import SECRETS, hooks_settings, provider_of, signed_push

MAIN = "refs/heads/main"
NEW_PAYMENTS: dict[str, str | bytes | None] = {
    "base/payments.yaml": "db:\n  host: db.internal\n  pool: {max: 20}\n"
}


def origin(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository (what gitconf tracks) and a work tree that pushes to it."""
    work = make_repo(tmp_path / "work", dict(CONFIG_FILES))
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(work, "remote", "add", "origin", str(bare))
    return bare, work


def server_for(tmp_path: Path, bare: Path) -> ServeProcess:
    """A server on bare with every hook on; GitHub's secret comes from the environment."""
    hooks = {**hooks_settings(), "github": {"secret_env": "GITHUB_HOOK_SECRET"}}
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"repo": str(bare), "hooks": hooks}))
    return ServeProcess(
        bare,
        tmp_path / "state",
        poll_interval=600,
        config=config,
        env={"GITHUB_HOOK_SECRET": SECRETS["github"]},
    )


def served_revision(server: ServeProcess) -> str:
    return server.get("/v1/config/production/payments").headers.get("X-Gitconf-Revision", "")


@pytest.mark.parametrize("variant", ["github", "gitlab", "gitea", "bitbucket-cloud", "generic"])
def test_a_signed_hook_serves_the_pushed_commit_at_once(variant: str, tmp_path: Path) -> None:
    bare, work = origin(tmp_path)
    first = git(work, "rev-parse", "HEAD")
    with server_for(tmp_path, bare) as server:
        assert served_revision(server) == first
        new = commit_all(work, "raise the pool", NEW_PAYMENTS)
        git(work, "push", "-q", "origin", "main")
        headers, body = signed_push(variant, MAIN, first, new)
        response = server.post(f"/v1/hooks/{provider_of(variant)}", data=body, headers=headers)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": True, "ref": MAIN, "after": new}
        wait_until(lambda: served_revision(server) == new, what=f"{new} served\n{server.log()}")
        assert server.get("/v1/config/production/payments").json()["db"]["pool"]["max"] == 20
        metrics = server.get("/metrics").text
        provider = provider_of(variant)
        assert f'gitconf_hooks_received_total{{outcome="accepted",provider="{provider}"}} 1.0' in (
            metrics
        )


def _push(work: Path, secret: str, *refs: str) -> str:
    """git push with the hook's secret in the environment; what the remote printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITCONF_")}
    env.update(
        GITCONF_HOOK_SECRET=secret,
        GIT_AUTHOR_NAME="gitconf tests",
        GIT_AUTHOR_EMAIL="tests@gitconf.invalid",
        GIT_COMMITTER_NAME="gitconf tests",
        GIT_COMMITTER_EMAIL="tests@gitconf.invalid",
    )
    pushed = subprocess.run(
        ["git", "push", "origin", *refs], cwd=work, env=env, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    return pushed.stderr


def test_the_post_receive_script_triggers_the_poll(tmp_path: Path) -> None:
    bare, work = origin(tmp_path)
    hook = bare / "hooks" / "post-receive"
    hook.write_text(CliRunner().invoke(main, ["hook-script"]).output)
    hook.chmod(0o755)
    first = git(work, "rev-parse", "HEAD")
    with server_for(tmp_path, bare) as server:
        git(bare, "config", "gitconf.url", server.url)

        commit_all(work, "pushed with the wrong secret", {"base/payments.yaml": "db: {}\n"})
        printed = _push(work, "whsec_" + "A" * 32, "main")
        assert "gitconf: refs/heads/main: 401 no v1 entry of webhook-signature matches" in printed
        assert served_revision(server) == first

        new = commit_all(work, "raise the pool", NEW_PAYMENTS)
        git(work, "tag", "v2")
        printed = _push(work, SECRETS["generic"], "main", "v2")
        assert "gitconf: refs/heads/main: the server polls now" in printed
        assert "gitconf: refs/tags/v2: 200 refs/tags/v2 is a tag" in printed
        wait_until(lambda: served_revision(server) == new, what=f"{new} served\n{server.log()}")
        assert server.get("/v1/config/production/payments").json()["db"]["pool"]["max"] == 20


def test_limits_hold_through_the_real_server(tmp_path: Path) -> None:
    bare, _ = origin(tmp_path)
    with server_for(tmp_path, bare) as server:
        headers, body = signed_push("generic", MAIN, "1" * 40, "2" * 40)
        big = body + b" " * (5 * 1024 * 1024)
        response = server.post("/v1/hooks/generic", data=big, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: read up to the limit, no further
            for _ in range(100):
                yield b" " * 65536

        response = server.post("/v1/hooks/generic", data=chunks(), headers=headers)
        assert response.status_code == 413
        response = server.post("/v1/hooks/github", data=b"{}", headers={"X-GitHub-Event": "push"})
        assert response.status_code == 401
        headers, body = signed_push("generic", MAIN, "1" * 40, "2" * 40)
        assert server.post("/v1/hooks/generic", data=body, headers=headers).status_code == 202
        assert server.post("/v1/hooks/generic", data=body, headers=headers).status_code == 409
        assert server.get("/v1/hooks/generic").status_code == 405
