"""The mirror against remotes: a local path, file://, and HTTPS-style auth over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitconf.git.remote import FetchError, Mirror, redact
from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.githttp import GitHttpServer

FILES = {"gitconf.yaml": "version: 1\nenvironments: {prod: {}}\n", "base/a.yaml": "x: 1\n"}


@pytest.fixture
def http_remote(tmp_path: Path) -> Iterator[tuple[GitHttpServer, Path]]:
    work = make_repo(tmp_path / "work", dict(FILES))
    bare = tmp_path / "served" / "config.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    server = GitHttpServer(tmp_path / "served", user="x-access-token", password="s3cret-token")
    yield server, work
    server.close()


def test_token_from_an_environment_variable(
    http_remote: tuple[GitHttpServer, Path], tmp_path: Path
) -> None:
    server, work = http_remote
    mirror = Mirror(
        server.url("config.git"), tmp_path / "m.git", "main",
        {"token_env": "GIT_TOKEN"}, timeout=10, environ={"GIT_TOKEN": "s3cret-token"},
    )  # fmt: skip
    head = mirror.fetch()
    assert head == git(work, "rev-parse", "HEAD")
    sha, files = mirror.fileset("main")
    assert sha == head
    assert files.files["base/a.yaml"] == b"x: 1\n"


def test_token_from_a_file(http_remote: tuple[GitHttpServer, Path], tmp_path: Path) -> None:
    server, work = http_remote
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    mirror = Mirror(
        server.url("config.git"), tmp_path / "m.git", "main", {"token_file": str(token)}, environ={}
    )
    assert mirror.fetch() == git(work, "rev-parse", "HEAD")


@pytest.mark.parametrize("credentials", [{}, {"token_env": "GIT_TOKEN"}])
def test_refused_authentication_is_a_clear_error(
    http_remote: tuple[GitHttpServer, Path], tmp_path: Path, credentials: dict[str, str]
) -> None:
    server, _ = http_remote
    mirror = Mirror(
        server.url("config.git"),
        tmp_path / "m.git",
        "main",
        credentials,
        environ={"GIT_TOKEN": "wrong"},
    )
    with pytest.raises(FetchError) as info:
        mirror.fetch()
    message = str(info.value)
    assert "credentials" in message or "refused" in message
    assert "wrong" not in message


def test_unreachable_host_is_a_fetch_error(tmp_path: Path) -> None:
    mirror = Mirror(
        "http://127.0.0.1:9/nothing.git", tmp_path / "m.git", "main", timeout=2, environ={}
    )
    with pytest.raises(FetchError, match=re.escape("fetching http://127.0.0.1:9/nothing.git")):
        mirror.fetch()


def test_file_url_and_new_commits(tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work", dict(FILES))
    mirror = Mirror(work.as_uri(), tmp_path / "m.git", "main", environ={})
    mirror.fetch()
    sha = commit_all(work, "two", {"base/a.yaml": "x: 2\n"})
    assert mirror.fetch() == sha
    assert mirror.fileset(sha)[1].files["base/a.yaml"] == b"x: 2\n"


def test_urls_are_redacted() -> None:
    assert redact("https://user:token@git.example.com/r.git") == "https://***@git.example.com/r.git"
    assert redact("/srv/git/r.git") == "/srv/git/r.git"
