"""The mirror against remotes: a local path, file://, and HTTPS-style auth over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitconf.bootstrap import build
from gitconf.git.remote import FetchError, Mirror, redact
from gitconf.settings import load_settings
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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:token@git.example.com/r.git", "https://***@git.example.com/r.git"),
        # An '@' in the password: only the last '@' ends the credentials.
        ("https://alice:p@ss-SECRET@host/r.git", "https://***@host/r.git"),
        # A '/', '?' or '#' in the password ends urlsplit's netloc before the '@'.
        ("https://alice:p/ss-SECRET@host/r.git", "https://***@host/r.git"),
        ("https://alice:p?ss-SECRET@host/r.git", "https://***@host/r.git"),
        ("https://alice:p#ss-SECRET@host/r.git", "https://***@host/r.git"),
        ("https://alice:a/b@c:d/SECRET@host:8443/r.git", "https://***@host:8443/r.git"),
        ("https://ghp_SECRET@github.com/org/r.git", "https://***@github.com/org/r.git"),
        ("https://x-access-token:SE/CR@ET@gitlab.com/g/r", "https://***@gitlab.com/g/r"),
        ("HTTPS://u:SECRET@Host/r.git", "HTTPS://***@Host/r.git"),
        ("https://u:p%40SECRET@host/r.git", "https://***@host/r.git"),
        ("https://u:SECRET@[::1]:8443/r.git", "https://***@[::1]:8443/r.git"),
        ("ssh://git@host:2222/org/r.git", "ssh://***@host:2222/org/r.git"),
        ("ssh://alice:SECRET@host/org/r.git", "ssh://***@host/org/r.git"),
        ("git+ssh://u:SECRET@host/r.git", "git+ssh://***@host/r.git"),
        # No credentials: unchanged.
        ("https://git.example.com/r.git", "https://git.example.com/r.git"),
        ("https://git.example.com:8443/r.git", "https://git.example.com:8443/r.git"),
        ("ssh://host/r.git", "ssh://host/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("/srv/git/user@host/r.git", "/srv/git/user@host/r.git"),
        ("/srv/odd://dir@x/r.git", "/srv/odd://dir@x/r.git"),
        ("relative/r.git", "relative/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
        ("file:///home/a@b/r.git", "file:///home/a@b/r.git"),
        # scp-like: the user is SSH's login name, shown; a password written in it is not.
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),
        ("host:org/r.git", "host:org/r.git"),
        ("alice:SECRET@host:org/r.git", "***@host:org/r.git"),
        ("alice:p@ss-SECRET@host:org/r.git", "***@host:org/r.git"),
    ],
)
def test_urls_are_redacted_in_every_form(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "SECRET" not in redact(url)


def test_a_fetch_error_shows_no_credentials(tmp_path: Path) -> None:
    # libgit2 refuses the URL ('malformed hostname'); the error named '***@ss-SECRET@...'.
    mirror = Mirror("https://alice:p@ss-SECRET@127.0.0.1:9/r.git", tmp_path / "m", "main")
    with pytest.raises(FetchError) as caught:
        mirror.fetch()
    assert "SECRET" not in str(caught.value)
    assert "https://***@127.0.0.1:9/r.git" in str(caught.value)


def test_status_shows_no_credentials(tmp_path: Path) -> None:
    url = "https://alice:p/ss-SECRET@127.0.0.1:9/r.git"
    server = build(load_settings({"repo": url, "state_dir": str(tmp_path / "s")}, {}), {})
    try:
        assert server.poller.run_once() == "error"
        body = server.app.test_client().get("/v1/status").get_data(as_text=True)
    finally:
        server.engine.dispose()
    assert "https://***@127.0.0.1:9/r.git" in body
    assert "SECRET" not in body
