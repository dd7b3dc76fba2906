"""poll.tick() against real repositories: publish, reject, unchanged, faults, history rewrites."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from gitconf.bootstrap import Server
from gitconf.testing import commit_all, git


def served_value(server: Server, env: str, service: str) -> object:
    served = server.publisher.served
    assert served is not None
    return served.value(env, service)


def test_first_tick_publishes_the_branch_head(server: Server, repo: Path) -> None:
    served = server.publisher.served
    assert served is not None
    assert served.revision == git(repo, "rev-parse", "HEAD")
    assert served_value(server, "production-eu", "payments") == {
        "region": "eu-west-1",
        "db": {"host": "db.internal", "port": 5432, "pool": {"max": 50}},
    }


def test_unchanged_branch_does_nothing_more(server: Server) -> None:
    compiles = server.compiler.sent["Compile"]
    assert server.poller.run_once() == "unchanged"
    assert server.compiler.sent["Compile"] == compiles, "an unchanged branch is not compiled"


def test_valid_commit_replaces_the_served_revision(server: Server, repo: Path) -> None:
    sha = commit_all(
        repo, "bigger pool", {"environments/production/payments.yaml": "db: {pool: {max: 80}}\n"}
    )
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == sha
    assert served_value(server, "production", "payments")["db"]["pool"]["max"] == 80


def test_invalid_commit_is_rejected_and_the_last_good_keeps_serving(
    server: Server, repo: Path
) -> None:
    good = server.publisher.served.revision
    bad = commit_all(repo, "break", {"environments/production/payments.yaml": "db: {port: abc}\n"})
    assert server.poller.run_once() == "rejected"
    assert server.publisher.served.revision == good
    [record] = server.poll.revisions.recent(state="rejected")
    assert record["revision"] == bad
    [problem] = record["problems"]
    assert problem["path"] == "environments/production/payments.yaml"
    assert (problem["line"], problem["key"]) == (1, "db.port")
    assert "'abc' is not of type 'integer'" in problem["text"]

    compiles = server.compiler.sent["Compile"]
    assert server.poller.run_once() == "unchanged"  # not compiled again until the branch moves
    assert server.compiler.sent["Compile"] == compiles


def test_rejected_commit_is_not_compiled_again_after_a_restart(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    first = make_server(repo)
    first.poller.run_once()
    commit_all(repo, "break", {"base/payments.yaml": "db: [1\n"})
    assert first.poller.run_once() == "rejected"
    second = make_server(repo)
    assert second.poller.run_once() == "unchanged"
    assert second.compiler.sent["Compile"] == 0


def test_unreachable_remote_keeps_serving_and_recovers(
    server: Server, repo: Path, tmp_path: Path
) -> None:
    good = server.publisher.served.revision
    moved = tmp_path / "moved"
    shutil.move(repo, moved)
    assert server.poller.run_once(forced=True) == "error"
    assert server.publisher.served.revision == good
    assert server.poll.status.consecutive_failures == 1
    assert "fetching" in server.poll.status.last_error
    # Backing off: the scheduled poll skips until the retry time.
    assert server.poller.run_once() == "backoff"
    shutil.move(moved, repo)
    sha = commit_all(repo, "after the outage", {"base/_all.yaml": "region: us-west-2\n"})
    assert server.poller.run_once(forced=True) == "published"
    assert server.publisher.served.revision == sha
    assert server.poll.status.last_error is None


def test_missing_branch_is_an_error_not_a_crash(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, branch="release")
    assert server.poller.run_once() == "error"
    assert "no branch 'release'" in server.poll.status.last_error
    assert server.publisher.served is None


def test_force_push_is_followed(server: Server, repo: Path) -> None:
    first = server.publisher.served.revision
    commit_all(repo, "to be rewritten", {"base/_all.yaml": "region: a\n"})
    assert server.poller.run_once() == "published"
    git(repo, "reset", "-q", "--hard", first)
    rewritten = commit_all(repo, "rewritten", {"base/_all.yaml": "region: b\n"})
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == rewritten
    assert served_value(server, "staging", "payments")["region"] == "b"


def test_corrupt_clone_is_cloned_again(repo: Path, make_server: Callable[..., Server]) -> None:
    server = make_server(repo)
    server.poller.run_once()
    mirror = server.mirror.path
    server.engine.dispose()
    # A half-written clone: objects gone.
    shutil.rmtree(mirror / "objects")
    (mirror / "objects").mkdir()
    again = make_server(repo)
    assert again.poller.run_once() in ("unchanged", "published")
    assert again.mirror.head() == git(repo, "rev-parse", "HEAD")


def test_restart_serves_the_persisted_revision_without_the_remote(
    repo: Path, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    first = make_server(repo)
    first.poller.run_once()
    good = first.publisher.served.revision
    shutil.rmtree(repo)
    second = make_server(repo)
    assert second.publisher.served is not None
    assert second.publisher.served.revision == good
    assert second.poller.run_once() == "error"
    assert second.publisher.served.revision == good


def test_a_compile_that_crashes_is_an_error_and_is_tried_again(server: Server, repo: Path) -> None:
    good = server.publisher.served.revision
    bad = commit_all(repo, "anything", {"base/_all.yaml": "region: x\n"})
    server.compiler.command = [sys.executable, "-m", "tests.worker.faulty"]
    server.compiler.restart()
    assert server.poller.run_once(forced=True) == "error"
    assert server.publisher.served.revision == good
    assert "RuntimeError: boom" in server.poll.status.last_error
    [record] = server.poll.revisions.recent(state="error")
    assert record["revision"] == bad
    assert "RuntimeError: boom" in record["problems"][0]["text"]
    # A bug of gitconf's is not the commit's fault: once it is fixed, the commit is served.
    server.compiler.command = [sys.executable, "-m", "gitconf.worker"]
    server.compiler.restart()
    assert server.poller.run_once(forced=True) == "published"
    assert server.publisher.served.revision == bad
    assert server.poll.revisions.recent(state="error") == []


def test_a_fix_pushed_after_a_rejected_commit_is_compiled_at_the_next_poll(
    server: Server, repo: Path
) -> None:
    commit_all(repo, "break", {"environments/production/payments.yaml": "db: {port: abc}\n"})
    assert server.poller.run_once() == "rejected"
    fixed = commit_all(repo, "fix", {"environments/production/payments.yaml": "db: {port: 1}\n"})
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == fixed
