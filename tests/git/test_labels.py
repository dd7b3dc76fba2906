"""The mirror's label branches (spring.labels): chosen by glob, bounded, pruned, over HTTP too."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitconf.errors import UsageError
from gitconf.git.remote import MAX_LABEL_BRANCHES, LabelBranches, Mirror, choose_branches
from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.githttp import GitHttpServer

FILES = {"gitconf.yaml": "version: 1\nenvironments: {prod: {}}\n", "base/a.yaml": "x: 1\n"}


@pytest.mark.parametrize(
    ("names", "globs", "expected"),
    [
        (["main", "release/1", "release/2", "dev"], ["release/*"], ("release/1", "release/2")),
        (["main", "release/a/b"], ["release/*"], ("release/a/b",)),  # * matches '/' too
        (["main", "hotfix-1", "v2"], ["hotfix-?", "v[0-9]"], ("hotfix-1", "v2")),
        (["main", "dev"], ["*"], ("dev",)),  # never the tracked branch itself
        (["main", "Release/1"], ["release/*"], ()),  # case matters, as in Git
    ],
)
def test_choose_branches(names: list[str], globs: list[str], expected: tuple[str, ...]) -> None:
    assert choose_branches(names, globs, "main") == LabelBranches(expected, 0)


def test_choose_branches_keeps_the_first_in_name_order_and_counts_the_rest() -> None:
    names = [f"b{i:02d}" for i in range(40)]
    chosen = choose_branches(reversed(names), ["b*"], "main")
    assert chosen.fetched == tuple(names[:MAX_LABEL_BRANCHES])
    assert chosen.skipped == 40 - MAX_LABEL_BRANCHES


@pytest.fixture
def work(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "work", dict(FILES))
    git(repo, "checkout", "-q", "-b", "release/1")
    commit_all(repo, "release 1", {"base/a.yaml": "x: 10\n"})
    git(repo, "checkout", "-q", "-b", "dev", "main")
    commit_all(repo, "dev", {"base/a.yaml": "x: 99\n"})
    git(repo, "checkout", "-q", "main")
    return repo


def remote_refs(mirror: Mirror) -> set[str]:
    repo = mirror.repository()
    return {r for r in repo.references if r.startswith("refs/remotes/")}


def test_matching_branches_are_fetched_and_others_are_not(work: Path, tmp_path: Path) -> None:
    mirror = Mirror(str(work), tmp_path / "m.git", "main", environ={}, labels=["release/*"])
    assert mirror.fetch() == git(work, "rev-parse", "main")
    assert mirror.label_branches == LabelBranches(("release/1",), 0)
    assert remote_refs(mirror) == {"refs/remotes/origin/main", "refs/remotes/origin/release/1"}
    assert mirror.resolve("release/1") == git(work, "rev-parse", "release/1")
    assert mirror.fileset("release/1")[1].files["base/a.yaml"] == b"x: 10\n"
    with pytest.raises(UsageError):
        mirror.resolve("dev")  # outside the globs: never fetched


def test_label_branches_follow_the_remote(work: Path, tmp_path: Path) -> None:
    mirror = Mirror(str(work), tmp_path / "m.git", "main", environ={}, labels=["release/*"])
    mirror.fetch()
    git(work, "checkout", "-q", "release/1")
    moved = commit_all(work, "release 1.1", {"base/a.yaml": "x: 11\n"})
    git(work, "checkout", "-q", "-b", "release/2")
    git(work, "checkout", "-q", "main")
    mirror.fetch()
    assert mirror.resolve("release/1") == moved
    assert mirror.label_branches.fetched == ("release/1", "release/2")
    # A branch deleted on the remote is dropped from the mirror.
    git(work, "branch", "-q", "-D", "release/1")
    mirror.fetch()
    assert mirror.label_branches.fetched == ("release/2",)
    assert "refs/remotes/origin/release/1" not in remote_refs(mirror)
    with pytest.raises(UsageError):
        mirror.resolve("release/1")


def test_narrower_globs_drop_branches_fetched_before(work: Path, tmp_path: Path) -> None:
    Mirror(str(work), tmp_path / "m.git", "main", environ={}, labels=["*"]).fetch()
    narrower = Mirror(str(work), tmp_path / "m.git", "main", environ={}, labels=["release/*"])
    narrower.fetch()
    assert remote_refs(narrower) == {"refs/remotes/origin/main", "refs/remotes/origin/release/1"}


def test_at_most_the_limit_of_branches_is_fetched(
    work: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(MAX_LABEL_BRANCHES + 3):
        git(work, "branch", f"feature/{i:02d}", "main")
    mirror = Mirror(str(work), tmp_path / "m.git", "main", environ={}, labels=["feature/*"])
    with caplog.at_level("WARNING", logger="gitconf.git.remote"):
        mirror.fetch()
    assert len(mirror.label_branches.fetched) == MAX_LABEL_BRANCHES
    assert mirror.label_branches.skipped == 3
    assert mirror.label_branches.fetched[-1] == f"feature/{MAX_LABEL_BRANCHES - 1:02d}"
    assert len(remote_refs(mirror)) == MAX_LABEL_BRANCHES + 1
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"match {MAX_LABEL_BRANCHES + 3} branches" in warning
    assert "narrow the globs" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="gitconf.git.remote"):
        mirror.fetch()
    assert not caplog.records  # said once, not at every poll


def test_label_branches_over_https_with_a_token(work: Path, tmp_path: Path) -> None:
    bare = tmp_path / "served" / "config.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    server = GitHttpServer(tmp_path / "served", user="x-access-token", password="s3cret-token")
    try:
        mirror = Mirror(
            server.url("config.git"),
            tmp_path / "m.git",
            "main",
            {"token_env": "GIT_TOKEN"},
            timeout=10,
            environ={"GIT_TOKEN": "s3cret-token"},
            labels=["release/*"],
        )
        assert mirror.fetch() == git(work, "rev-parse", "main")
        assert mirror.resolve("release/1") == git(work, "rev-parse", "release/1")
    finally:
        server.close()
