"""The fast WSGI read path answers exactly as the Flask view does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from gitconf.bootstrap import Server, build
from gitconf.settings import load_settings

COMPARED = (
    "ETag",
    "X-Gitconf-Revision",
    "Content-Type",
    "Content-Length",
    "Cache-Control",
    "Vary",
    "WWW-Authenticate",
    "Retry-After",
)


@pytest.fixture
def secured(repo: Path, tmp_path: Path) -> Any:
    tokens = [{"name": "eu", "token": "e" * 24, "scopes": ["read:production-eu"]}]
    server = build(
        load_settings(
            {"repo": str(repo), "state_dir": str(tmp_path / "s"), "tokens": tokens}, environ={}
        ),
        {},
    )
    server.poller.run_once()
    yield server
    server.engine.dispose()


def compare(server: Server, path: str, headers: dict[str, str]) -> Any:
    flask = server.app.test_client().get(path, headers=headers)
    fast = Client(server.wsgi).get(path, headers=headers)
    assert fast.status_code == flask.status_code, path
    assert fast.data == flask.data, path
    for name in COMPARED:
        assert fast.headers.get(name) == flask.headers.get(name), (path, name)
    return fast


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/config/production/payments", {}, 200),
        ("/v1/config/production/payments?format=yaml", {}, 200),
        ("/v1/config/production/payments?format=env", {}, 200),
        ("/v1/config/production/payments", {"Accept": "application/yaml"}, 200),
        ("/v1/config/production/payments?format=xml", {}, 400),
        ("/v1/config/nowhere/payments", {}, 404),
        ("/v1/config/production/nothing", {}, 404),
    ],
)
def test_open_server_paths_agree(
    server: Server, path: str, headers: dict[str, str], status: int
) -> None:
    assert compare(server, path, headers).status_code == status


def test_revalidation_agrees(server: Server) -> None:
    etag = compare(server, "/v1/config/staging/search", {}).headers["ETag"]
    assert compare(server, "/v1/config/staging/search", {"If-None-Match": etag}).status_code == 304
    assert (
        compare(server, "/v1/config/staging/search", {"If-None-Match": '"other"'}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("env", "token", "status"),
    [
        ("production-eu", "e" * 24, 200),
        ("production", "e" * 24, 403),
        ("production-eu", None, 401),
        ("production-eu", "wrong", 401),
    ],
)
def test_auth_agrees(secured: Server, env: str, token: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert compare(secured, f"/v1/config/{env}/payments", headers).status_code == status


def test_not_ready_agrees(repo: Path, make_server: Callable[..., Server]) -> None:
    server = make_server(repo, branch="missing")
    assert compare(server, "/v1/config/staging/payments", {}).status_code == 503


def test_everything_else_reaches_flask(server: Server) -> None:
    client = Client(server.wsgi)
    assert client.get("/v1/environments").status_code == 200
    assert client.get("/v1/config/production").status_code == 200
    assert client.get("/v1/config/production/payments/explain").status_code == 200
    assert client.get("/v1/config/production/payments?ref=main").status_code == 200
    assert client.post("/v1/config/production/payments").status_code == 405
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gitconf_http_requests_total{route="/v1/config/<env>/<service>",status="200"}' in metrics
