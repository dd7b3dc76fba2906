"""Servers for the dashboard's tests: a repository with two published revisions and a rejected
commit, with and without tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from gitconf.bootstrap import Server
from gitconf.testing import commit_all

ADMIN = "a" * 32
PROD = "p" * 32
TOKENS = [
    {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
    {"name": "prod-reader", "token": PROD, "scopes": ["read:production*"]},
]
# Breaks the schema of staging's payments: a problem at its file:line:col.
BAD_STAGING = {"environments/staging/payments.yaml": "db:\n  port: not-a-port\n"}


class History(NamedTuple):
    """The commits a test server has seen: two published, then one rejected."""

    first: str
    second: str
    rejected: str


def build_history(repo: Path, server: Server) -> History:
    """Publish a second revision (the production pool goes 50 -> 60), then reject a commit."""
    first = server.publisher.served.revision  # type: ignore[union-attr]
    second = commit_all(
        repo,
        "raise the pool",
        {"environments/production/payments.yaml": "db:\n  pool: {max: 60}\n"},
    )
    assert server.poller.run_once() == "published"
    rejected = commit_all(repo, "break staging", BAD_STAGING)
    assert server.poller.run_once() == "rejected"
    return History(first, second, rejected)


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
def open_server(repo: Path, make_server: Callable[..., Server]) -> tuple[Server, History]:
    """A server without tokens (loopback only) that has seen History."""
    server = make_server(repo)
    assert server.poller.run_once() == "published"
    return server, build_history(repo, server)


@pytest.fixture
def secured(repo: Path, make_server: Callable[..., Server]) -> tuple[Server, History]:
    """A server with TOKENS that has seen History."""
    server = make_server(repo, tokens=TOKENS)
    assert server.poller.run_once() == "published"
    return server, build_history(repo, server)


def login(client: Any, token: str) -> Any:
    """Log in through the form; the POST's response."""
    form = client.get("/ui/login").get_data(as_text=True)
    return client.post("/ui/login", data={"token": token, "csrf": csrf_of(form)})
