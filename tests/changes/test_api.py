"""POST /v1/changes against real Git remotes: bare repositories, and a smart-HTTP server with
credentials for the push. Every change is read back from the remote and from the server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitconf.bootstrap import Server
from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.githttp import GitHttpServer
from gitconf.worker.messages import ApplyChange
from tests.conftest import BASE_FILES

PROD = "environments/production/payments.yaml"
WRITER = {"name": "Ada Operator", "email": "ada@example.com", "token": "writer-token-0001", "scopes": ["write:production*/payments"]}  # fmt: skip
READER = {"name": "reader", "token": "reader-token-0001", "scopes": ["read:*"]}
ADMIN = {"name": "root", "token": "admin-token-00001", "scopes": ["admin"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote holding the BASE_FILES repository."""
    work = make_repo(tmp_path / "seed", dict(BASE_FILES))
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


@pytest.fixture
def other(tmp_path: Path, remote: Path) -> Path:
    """Someone else's clone of the remote, to push commits of their own."""
    clone = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.name", "Other")
    git(clone, "config", "user.email", "other@example.com")
    return clone


def push_other(clone: Path, files: dict[str, str | bytes | None], message: str) -> str:
    git(clone, "pull", "-q", "--rebase")
    sha = commit_all(clone, message, files)
    git(clone, "push", "-q", "origin", "main")
    return sha


def head_of(remote: Path, ref: str = "main") -> str:
    return git(remote, "rev-parse", ref)


def served(server: Server, env: str = "production", service: str = "payments") -> Any:
    client = server.app.test_client()
    reply = client.get(f"/v1/config/{env}/{service}", headers=bearer("admin-token-00001"))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()


@pytest.fixture
def serve(remote: Path, make_server: Callable[..., Server]) -> Callable[..., Server]:
    def start(**options: Any) -> Server:
        options.setdefault("tokens", [WRITER, READER, ADMIN])
        server = make_server(remote, **options)
        assert server.poller.run_once() == "published"
        return server

    return start


def post(server: Server, body: Any, token: str = "writer-token-0001", **kwargs: Any) -> Any:
    return server.app.test_client().post("/v1/changes", json=body, headers=bearer(token), **kwargs)


def change(base: str, **edit: Any) -> dict[str, Any]:
    target = {"environment": "production", "service": "payments", **edit}
    return {"base": base, "edits": [target]}


def test_a_change_is_committed_pushed_and_served(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve()
    base = head_of(remote)
    reply = post(server, change(base, set={"db.pool.max": 60}))
    assert reply.status_code == 201, reply.get_data(as_text=True)
    doc = reply.get_json()
    assert doc["change"].startswith("chg_")
    assert doc["commit"] == head_of(remote) != base
    assert doc["branch"] == "main" and doc["files"] == [PROD]
    assert doc["diff"] == [
        {
            "environment": "production",
            "service": "payments",
            "status": "changed",
            "changes": [{"key": "db.pool.max", "status": "changed", "old": 50, "new": 60}],
        },
        {
            "environment": "production-eu",
            "service": "payments",
            "status": "changed",
            "changes": [{"key": "db.pool.max", "status": "changed", "old": 50, "new": 60}],
        },
    ]
    # The commit: only the changed line, author from the token, committer and trailers.
    assert git(remote, "show", "--format=", "main", "--", PROD).splitlines()[-2:] == [
        "-  pool: {max: 50}",
        "+  pool: {max: 60}",
    ]
    assert git(remote, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "main") == (
        "Ada Operator <ada@example.com>|gitconf <gitconf@localhost>"
    )
    message = git(remote, "log", "-1", "--format=%B", "main")
    assert message.splitlines()[0] == "set production/payments db.pool.max=60"
    assert f"Gitconf-Change-Id: {doc['change']}" in message
    assert f"Gitconf-Base: {base}" in message
    # The poller was woken; one poll serves it.
    assert server.poller._wanted.is_set()
    assert server.poller.run_once() == "published"
    assert served(server)["db"]["pool"]["max"] == 60


def test_unset_shows_the_inherited_value_again(serve: Callable[..., Server], remote: Path) -> None:
    server = serve()
    reply = post(server, change(head_of(remote), unset=["db.pool.max"]))
    assert reply.status_code == 201, reply.get_data(as_text=True)
    server.poller.run_once()
    assert served(server)["db"]["pool"]["max"] == 10  # base/payments.yaml's


def test_dry_run_shows_the_diff_and_writes_nothing(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve()
    base = head_of(remote)
    reply = post(server, {**change(base, set={"db.port": 6432}), "dry_run": True})
    assert reply.status_code == 200
    doc = reply.get_json()
    assert doc["dry_run"] is True and doc["commit"] is None
    assert doc["diff"][0]["changes"] == [
        {"key": "db.port", "status": "changed", "old": 5432, "new": 6432}
    ]
    assert head_of(remote) == base


def test_a_value_the_schema_refuses_is_422_at_its_line(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve()
    base = head_of(remote)
    reply = post(server, change(base, set={"db.port": "not a port"}))
    assert reply.status_code == 422
    error = reply.get_json()["error"]
    assert error["code"] == "invalid_change"
    assert "nothing was written" in error["message"]
    [problem] = error["problems"]
    assert problem["path"] == PROD and problem["line"] == 3
    assert "'not a port' is not of type 'integer'" in problem["text"]
    assert head_of(remote) == base


def test_stale_only_when_an_edited_file_changed(
    serve: Callable[..., Server], remote: Path, other: Path
) -> None:
    server = serve()
    base = head_of(remote)
    # An unrelated commit in between: no conflict.
    push_other(other, {"base/search.yaml": "shards: [s1, s2, s3]\n"}, "more shards")
    reply = post(server, change(base, set={"db.pool.max": 60}))
    assert reply.status_code == 201, reply.get_data(as_text=True)
    # The file itself changed since base: 412, naming it, nothing pushed.
    head = push_other(other, {PROD: "db:\n  pool: {max: 70}\n"}, "seventy")
    reply = post(server, change(base, set={"db.pool.max": 80}))
    assert reply.status_code == 412
    error = reply.get_json()["error"]
    assert error["code"] == "stale_base" and error["files"] == [PROD] and error["head"] == head
    assert head_of(remote) == head
    # Made again on the new head, it lands.
    reply = post(server, change(head, set={"db.pool.max": 80}))
    assert reply.status_code == 201


def race(server: Server, other: Path, times: int) -> list[str]:
    """After each of the first `times` compiles of a change (between the server's fetch and
    its push), someone else pushes an unrelated commit; their shas, in order."""
    real_call = server.compiler.call
    raced: list[str] = []

    def call_then_push(request: Any, **kwargs: Any) -> Any:
        reply = real_call(request, **kwargs)
        if isinstance(request, ApplyChange) and len(raced) < times:
            files = {"base/search.yaml": f"shards: [s{len(raced)}]\n"}
            raced.append(push_other(other, files, "race"))
        return reply

    server.compiler.call = call_then_push  # type: ignore[method-assign]
    return raced


def test_a_lost_push_race_is_retried_on_the_new_head(
    serve: Callable[..., Server], remote: Path, other: Path
) -> None:
    server = serve()
    raced = race(server, other, 1)
    reply = post(server, change(head_of(remote), set={"db.pool.max": 61}))
    assert reply.status_code == 201, reply.get_data(as_text=True)
    assert reply.get_json()["parent"] == raced[0]  # applied again on the head that won
    assert git(remote, "rev-parse", "main^") == raced[0]
    assert "shards: [s0]" in git(remote, "show", "main:base/search.yaml")


def test_a_push_that_keeps_losing_is_409(
    serve: Callable[..., Server], remote: Path, other: Path
) -> None:
    server = serve()
    raced = race(server, other, 100)
    reply = post(server, change(head_of(remote), set={"db.pool.max": 62}))
    assert reply.status_code == 409
    assert reply.get_json()["error"]["code"] == "push_conflict"
    assert len(raced) == 3  # three tries, each lost
    assert git(remote, "show", "main:" + PROD) == "db:\n  pool: {max: 50}"


def test_two_changes_of_different_files_at_once_both_land(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve(tokens=[ADMIN])
    base = head_of(remote)
    replies: list[Any] = []
    bodies = [
        change(base, set={"db.pool.max": 63}),
        {"base": base, "edits": [{"environment": "staging", "service": "search", "set": {"shards": ["a"]}}]},
    ]  # fmt: skip
    threads = [
        threading.Thread(target=lambda b=b: replies.append(post(server, b, "admin-token-00001")))
        for b in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.status_code for r in replies) == [201, 201]
    server.poller.run_once()
    assert served(server)["db"]["pool"]["max"] == 63
    assert served(server, "staging", "search")["shards"] == ["a"]


def test_branch_mode_leaves_the_branch_alone(serve: Callable[..., Server], remote: Path) -> None:
    server = serve(
        changes={"review_url": "https://git.example/config/compare/main...{branch}?expand=1"}
    )
    base = head_of(remote)
    reply = post(server, {**change(base, set={"db.pool.max": 64}), "mode": "branch"})
    assert reply.status_code == 201, reply.get_data(as_text=True)
    doc = reply.get_json()
    branch = f"gitconf/change-{doc['change']}"
    assert doc["branch"] == branch
    assert doc["url"] == f"https://git.example/config/compare/main...{branch}?expand=1"
    assert head_of(remote) == base
    assert head_of(remote, branch) == doc["commit"]
    assert "{max: 64}" in git(remote, "show", f"{branch}:{PROD}")


def test_changes_mode_branch_is_the_default_when_set(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve(changes={"mode": "branch"})
    base = head_of(remote)
    reply = post(server, change(base, set={"db.pool.max": 65}))
    assert reply.status_code == 201
    assert reply.get_json()["branch"].startswith("gitconf/change-chg_")
    assert head_of(remote) == base


@pytest.mark.parametrize(
    ("edit", "status", "code", "says"),
    [
        (
            {"environment": "production-us"},
            404,
            "unknown_config",
            "known: staging, production, production-eu",
        ),
        ({"service": "billing"}, 403, "forbidden", "write:production/billing"),
        ({"set": {"db.pool.max.x": 1}}, 422, "bad_edit", "db.pool.max"),
        ({"set": {"a": 1}, "layer": "base/search.yaml"}, 422, "bad_layer", "base/search.yaml"),
        ({"set": {"db..max": 1}}, 400, "bad_key", "db..max"),
        ({"set": {"db.x\ud800": 1}}, 400, "bad_key", "lone surrogate"),
        ({"set": {"db.pool.max": "x\ud800"}}, 400, "bad_key", "lone surrogate"),
        ({"set": {".".join(["a"] * 100): 1}}, 400, "bad_key", "at most 64"),
        ({"set": {"db.hosts[5]": "h"}}, 422, "bad_edit", "first item is [0]"),
    ],
)
def test_bad_edits_name_what_is_wrong(
    serve: Callable[..., Server],
    remote: Path,
    edit: dict[str, Any],
    status: int,
    code: str,
    says: str,
) -> None:
    server = serve()
    base = head_of(remote)
    body = change(base, **{"set": {"db.pool.max": 1}, **edit})
    reply = post(server, body)
    assert reply.status_code == status, reply.get_data(as_text=True)
    error = reply.get_json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert head_of(remote) == base


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"edits": []}, 428, "base_required", "base"),
        ({"base": "zz", "edits": [{}]}, 400, "invalid_change", "base: 'zz' does not match"),
        # A short sha could be read as a ref (a tag named like it): only full ids are bases.
        ({"base": "deadbee", "edits": [{}]}, 400, "invalid_change", "base: 'deadbee' does not match"),
        ({"base": "0" * 40, "message": " \n", "edits": [{"environment": "production", "service": "payments", "set": {"a": 1}}]}, 400, "invalid_change", "message: "),
        ({"base": "0" * 40, "edits": [{"environment": "production", "service": "payments", "set": {f"k{i}": i for i in range(600)}}] * 2}, 400, "invalid_change", "edits: 1200 keys"),
        ({"base": "0" * 40, "edits": [{"environment": "production", "service": "payments", "set": {f"k{i}": i for i in range(1001)}}]}, 400, "invalid_change", "edits[0].set: the value fails 'maxProperties': 1000"),
        ({"base": "0" * 40, "edits": []}, 400, "invalid_change", "edits: [] should be non-empty"),
        ({"base": "0" * 40, "edits": [{"environment": "production"}]}, 400, "invalid_change", "edits[0].service"),
        ({"base": "0" * 40, "edits": [{"environment": "production", "service": "payments"}]}, 400, "invalid_change", "edits[0]: an edit sets or unsets"),
        ({"base": "0" * 40, "edits": [{"environment": "production", "service": "payments", "set": {"a": 1}, "lyer": "x"}]}, 400, "invalid_change", "edits[0].lyer"),
        ({"base": "0" * 40, "edits": [{"environment": "production", "service": "payments", "set": {"a": 1}}]}, 422, "unknown_base", "base: " + "0" * 40),
        ([1, 2], 400, "invalid_change", "JSON object"),
        ({"base": "0" * 40, "message": "a\u0000b", "edits": [{"environment": "production", "service": "payments", "set": {"a": 1}}]}, 400, "invalid_change", "message: "),
    ],
)  # fmt: skip
def test_bad_bodies_name_the_field(
    serve: Callable[..., Server], body: Any, status: int, code: str, says: str
) -> None:
    server = serve()
    reply = post(server, body)
    assert reply.status_code == status, reply.get_data(as_text=True)
    error = reply.get_json()["error"]
    assert error["code"] == code and says in error["message"], error


def test_hostile_bodies(serve: Callable[..., Server], remote: Path) -> None:
    server = serve()
    client = server.app.test_client()
    base = head_of(remote)
    as_text = client.post(
        "/v1/changes", data=json.dumps(change(base, set={"a": 1})), headers=bearer("writer-token-0001"),
        content_type="text/plain",
    )  # fmt: skip
    assert as_text.status_code == 415
    huge = change(base, set={"a": "x" * (1024 * 1024)})
    assert post(server, huge).status_code == 413
    deep: Any = 1
    for _ in range(100):
        deep = {"a": deep}
    reply = post(server, change(base, set={"a": deep}))
    assert reply.status_code == 400 and reply.get_json()["error"]["code"] == "too_deep"
    assert head_of(remote) == base


def test_scopes(serve: Callable[..., Server], remote: Path) -> None:
    server = serve()
    base = head_of(remote)
    body = change(base, set={"db.pool.max": 66})
    assert post(server, body, token="reader-token-0001").status_code == 403
    assert post(server, body, token="nope").status_code == 401
    client = server.app.test_client()
    assert client.post("/v1/changes", json=body).status_code == 401
    # write implies read of the same configs.
    reader = client.get("/v1/config/production/payments", headers=bearer("writer-token-0001"))
    assert reader.status_code == 200
    assert head_of(remote) == base


def test_tokenless_loopback_refuses_another_origin(
    remote: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(remote)
    server.poller.run_once()
    base = head_of(remote)
    reply = server.app.test_client().post(
        "/v1/changes",
        json=change(base, set={"db.pool.max": 67}),
        headers={"Origin": "https://evil.example"},
    )
    assert reply.status_code == 403
    assert head_of(remote) == base
    ok = server.app.test_client().post("/v1/changes", json=change(base, set={"db.pool.max": 67}))
    assert ok.status_code == 201
    assert git(remote, "log", "-1", "--format=%an", "main") == "anonymous"


def test_a_change_that_also_changes_other_configs_needs_their_write_scope(
    serve: Callable[..., Server], remote: Path
) -> None:
    # base/payments.yaml is a layer of staging's payments too: a write to it changes both.
    server = serve(
        tokens=[
            {"name": "w", "token": "writer-token-0002", "scopes": ["write:production*/payments"]},
            ADMIN,
        ]
    )
    base = head_of(remote)
    body = change(base, set={"db.host": "db2.internal"}, layer="base/payments.yaml")
    reply = post(server, body, token="writer-token-0002")
    assert reply.status_code == 403
    error = reply.get_json()["error"]
    assert "staging/payments" in error["message"] and "write:staging/payments" in error["message"]
    assert head_of(remote) == base
    assert post(server, body, token="admin-token-00001").status_code == 201


def test_an_author_name_git_would_refuse_is_cleaned(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve(
        tokens=[{"name": "ci <bot>", "token": "ci-bot-token-00001", "scopes": ["admin"]}]
    )
    reply = post(
        server, change(head_of(remote), set={"db.pool.max": 71}), token="ci-bot-token-00001"
    )
    assert reply.status_code == 201, reply.get_data(as_text=True)
    assert (
        git(remote, "log", "-1", "--format=%an <%ae>", "main") == "ci bot <ci.bot@gitconf.invalid>"
    )


def test_a_layer_that_feeds_another_config_needs_its_scope_even_when_overridden_today(
    serve: Callable[..., Server], remote: Path
) -> None:
    # production overrides db.pool.max today, so the effective diff would show staging only;
    # but base/payments.yaml feeds production too, and production's override may go.
    server = serve(tokens=[{"name": "s", "token": "staging-writer-0001", "scopes": ["write:staging/payments"]}])  # fmt: skip
    base = head_of(remote)
    body = change(base, set={"db.pool.max": 999}, layer="base/payments.yaml")
    body["edits"][0]["environment"] = "staging"
    reply = post(server, body, token="staging-writer-0001")
    assert reply.status_code == 403, reply.get_data(as_text=True)
    assert "write:production/payments" in reply.get_json()["error"]["message"]
    assert head_of(remote) == base


def test_the_problems_of_a_broken_head_are_shown_only_where_the_token_may_read(
    serve: Callable[..., Server], remote: Path, other: Path
) -> None:
    server = serve(tokens=[{"name": "s", "token": "staging-writer-0001", "scopes": ["write:staging/payments"]}])  # fmt: skip
    push_other(other, {PROD: "db:\n  port: SECRET-prod-value\n"}, "broken production")
    body = {"base": head_of(remote), "dry_run": True,
            "edits": [{"environment": "staging", "service": "payments", "set": {"db.pool.max": 1}}]}  # fmt: skip
    reply = post(server, body, token="staging-writer-0001")
    assert reply.status_code == 409
    error = reply.get_json()["error"]
    assert error["code"] == "base_invalid"
    assert "SECRET-prod-value" not in reply.get_data(as_text=True)
    assert "1 problem(s) in configs your token may not read" in error["message"]


def test_a_server_in_branch_mode_refuses_direct_commits(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve(changes={"mode": "branch"})
    base = head_of(remote)
    reply = post(server, {**change(base, set={"db.pool.max": 72}), "mode": "commit"})
    assert reply.status_code == 403
    assert reply.get_json()["error"]["code"] == "commit_refused"
    assert head_of(remote) == base


def test_status_counts_changes(serve: Callable[..., Server], remote: Path) -> None:
    server = serve()
    post(server, change(head_of(remote), set={"db.pool.max": 68}))
    post(server, {"edits": []})
    status = (
        server.app.test_client().get("/v1/status", headers=bearer("admin-token-00001")).get_json()
    )
    section = status["changes"]
    assert section["committed"] == 1 and section["refused"] == {"base_required": 1}


@pytest.fixture
def http_remote(tmp_path: Path, remote: Path) -> Iterator[GitHttpServer]:
    served_root = tmp_path / "served"
    served_root.mkdir()
    remote.rename(served_root / "config.git")
    git(served_root / "config.git", "config", "http.receivepack", "true")
    server = GitHttpServer(served_root, user="x-access-token", password="s3cret-token")
    yield server
    server.close()


def test_push_with_the_servers_credentials(
    http_remote: GitHttpServer, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    bare = tmp_path / "served" / "config.git"
    environ = {"GIT_TOKEN": "s3cret-token"}
    server = make_server(
        http_remote.url("config.git"), environ=environ, credentials={"token_env": "GIT_TOKEN"}
    )
    assert server.poller.run_once() == "published"
    base = git(bare, "rev-parse", "main")
    reply = post(server, change(base, set={"db.pool.max": 69}), token="")
    assert reply.status_code == 201, reply.get_data(as_text=True)
    assert git(bare, "rev-parse", "main") == reply.get_json()["commit"]
    server.poller.run_once()
    assert served(server)["db"]["pool"]["max"] == 69


def test_a_push_refused_for_credentials_is_502_and_nothing_changes(
    http_remote: GitHttpServer, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    bare = tmp_path / "served" / "config.git"
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    server = make_server(http_remote.url("config.git"), credentials={"token_file": str(token_file)})
    assert server.poller.run_once() == "published"
    token_file.write_text("revoked\n")
    base = git(bare, "rev-parse", "main")
    reply = post(server, change(base, set={"db.pool.max": 70}), token="")
    assert reply.status_code == 502
    error = reply.get_json()["error"]
    assert error["code"] == "remote_unavailable"
    assert "s3cret" not in json.dumps(error) and "revoked" not in json.dumps(error)
    assert git(bare, "rev-parse", "main") == base


def test_a_push_a_remote_hook_refuses_is_409_at_once(
    http_remote: GitHttpServer, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    bare = tmp_path / "served" / "config.git"
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: changes need a review' >&2\nexit 1\n")
    hook.chmod(0o755)
    server = make_server(
        http_remote.url("config.git"), environ={"T": "s3cret-token"}, credentials={"token_env": "T"}
    )
    assert server.poller.run_once() == "published"
    base = git(bare, "rev-parse", "main")
    reply = post(server, change(base, set={"db.pool.max": 73}), token="")
    assert reply.status_code == 409, reply.get_data(as_text=True)
    error = reply.get_json()["error"]
    assert error["code"] == "push_refused"
    assert server.compiler.sent["ApplyChange"] == 1  # not retried as if it were a race
    assert git(bare, "rev-parse", "main") == base


def test_changes_are_audited_with_their_author_and_keys_but_not_values(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve()
    base = head_of(remote)
    made = post(server, change(base, set={"db.pool.max": 61}))
    assert made.status_code == 201
    refused = post(server, change(base, set={"db.pool.max": 62}), token="reader-token-0001")
    assert refused.status_code == 403
    audit = server.app.test_client().get("/v1/audit?action=change", headers=bearer(ADMIN["token"]))
    rows = audit.get_json()["entries"]
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in rows] == [
        ("Ada Operator", "change", "production/payments", "201"),
        ("reader", "change", "production/payments", "403 forbidden"),
    ]
    detail = rows[0]["detail"]
    assert detail["commit"] == made.get_json()["commit"] and detail["keys"] == ["db.pool.max"]
    assert rows[0]["request_id"] == made.headers["X-Request-Id"]
    assert set(detail) == {"change", "commit", "branch", "files", "keys"}  # no values
    assert "writer-token" not in json.dumps(rows)


def test_a_work_tree_served_directly_says_how_to_take_changes(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    work = make_repo(tmp_path / "work", dict(BASE_FILES))
    server = make_server(work)
    assert server.poller.run_once() == "published"
    reply = post(server, change(git(work, "rev-parse", "HEAD"), set={"db.pool.max": 74}), token="")
    assert reply.status_code == 502
    assert "serve a bare clone (git clone --bare)" in reply.get_json()["error"]["message"]


def test_a_new_layer_file_needs_write_on_every_config_it_will_feed(
    serve: Callable[..., Server], remote: Path
) -> None:
    # environments/production/search.yaml does not exist yet: created, it feeds
    # production-eu's search too (production-eu extends production).
    server = serve(tokens=[{"name": "p", "token": "prod-search-token-1", "scopes": ["write:production/search"]}])  # fmt: skip
    base = head_of(remote)
    body = {"base": base, "edits": [{"environment": "production", "service": "search", "set": {"shards": ["p1"]}}]}  # fmt: skip
    reply = post(server, body, token="prod-search-token-1")
    assert reply.status_code == 403, reply.get_data(as_text=True)
    assert "write:production-eu/search" in reply.get_json()["error"]["message"]
    assert head_of(remote) == base
