"""The fast WSGI read path answers exactly as the Flask view does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from gitconf.bootstrap import Server, build
from gitconf.settings import load_settings
from gitconf.testing import commit_all

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
    tokens = [
        {"name": "eu", "token": "e" * 24, "scopes": ["read:production-eu"]},
        {"name": "admin", "token": "a" * 24, "scopes": ["admin"]},
    ]
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
        # Without tokens, a Host that is not loopback (DNS rebinding) is refused alike.
        ("/v1/config/production/payments", {"Host": "attacker.example:8080"}, 421),
        ("/v1/config/production/payments?format=yaml", {"Host": "attacker.example"}, 421),
        ("/v1/config/production/payments", {"Host": "[::1]:8080"}, 200),
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


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/config/production/payments", {}),
        ("/v1/config/production/payments?format=yaml", {}),
        ("/v1/config/production/payments", {"Accept": "application/yaml"}),
        ("/v1/config/production/payments", {"Accept": "application/json"}),
    ],
)
def test_reads_answered_from_prepared_replies_agree(
    server: Server, path: str, headers: dict[str, str]
) -> None:
    # The first read is resolved through ConfigReader; the ones after come prepared.
    etag = compare(server, path, headers).headers["ETag"]
    compare(server, path, headers)
    for inm, status in [
        (etag, 304),
        (f"W/{etag}", 304),
        (f'"other", {etag}', 304),
        ("*", 304),
        ('"other"', 200),
    ]:
        assert compare(server, path, {**headers, "If-None-Match": inm}).status_code == status
    head = Client(server.wsgi).head(path, headers=headers)
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["ETag"] == etag


def test_a_new_revision_replaces_the_prepared_replies(server: Server, repo: Path) -> None:
    client = Client(server.wsgi)
    path = "/v1/config/staging/search"
    before = client.get(path)
    assert client.get(path).data == before.data
    sha = commit_all(repo, "more shards", {"base/search.yaml": "shards: [s1, s2, s3]\n"})
    assert server.poller.run_once() == "published"
    after = client.get(path)
    assert after.headers["X-Gitconf-Revision"] == sha
    assert after.json["shards"] == ["s1", "s2", "s3"]
    assert client.get(path, headers={"If-None-Match": before.headers["ETag"]}).status_code == 200


def test_a_grant_holds_for_one_token_and_one_environment(secured: Server) -> None:
    client = Client(secured.wsgi)
    eu = {"Authorization": "Bearer " + "e" * 24}
    admin = {"Authorization": "Bearer " + "a" * 24}
    path = "/v1/config/production-eu/payments"
    other = "/v1/config/production/payments"
    for _ in range(2):  # both reads are prepared now, each granted to one token
        assert client.get(path, headers=eu).status_code == 200
        assert client.get(other, headers=admin).status_code == 200
    for _ in range(2):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer " + "x" * 24}).status_code == 401
        assert client.get(other, headers=eu).status_code == 403
        assert client.head(other, headers=eu).status_code == 403
        assert client.get(other, headers={"If-None-Match": "*", **eu}).status_code == 403


def test_a_read_seen_before_does_not_go_through_the_reader(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    config = server.reader.config

    def counted(env: str, service: str, **kwargs: Any) -> Any:
        calls.append((env, service))
        return config(env, service, **kwargs)

    monkeypatch.setattr(server.reader, "config", counted)
    client = Client(server.wsgi)
    path = "/v1/config/staging/search"
    first = client.get(path)
    for _ in range(3):
        assert client.get(path).data == first.data
        assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert calls == [("staging", "search")]
    client.get(path, headers={"Accept": "application/yaml"})  # another reply: resolved once
    assert calls == [("staging", "search")] * 2


def test_fast_reads_are_counted_in_the_metrics(server: Server) -> None:
    client = Client(server.wsgi)
    path = "/v1/config/staging/search"
    etag = client.get(path).headers["ETag"]
    for _ in range(4):
        client.get(path)
    for _ in range(3):
        client.get(path, headers={"If-None-Match": etag})
    client.get("/v1/config/staging/nothing")
    metrics = client.get("/metrics").get_data(as_text=True)
    route = 'route="/v1/config/<env>/<service>"'
    assert f'gitconf_http_requests_total{{{route},status="200"}} 5.0' in metrics
    assert f'gitconf_http_requests_total{{{route},status="304"}} 3.0' in metrics
    assert f'gitconf_http_requests_total{{{route},status="404"}} 1.0' in metrics
    client.get(path)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'gitconf_http_requests_total{{{route},status="200"}} 6.0' in metrics


SPRING = [
    ("/payments/production", {}),
    ("/payments/production,production-eu", {}),
    ("/payments/production", {"Accept": "application/vnd.spring-cloud.config-server.v2+json"}),
    ("/payments-production.yml", {}),
    ("/payments-production.properties", {}),
    ("/main/payments-production-eu.json", {}),
    ("/payments/production/main", {}),
]


@pytest.mark.parametrize(("path", "headers"), SPRING)
def test_a_remembered_spring_reply_is_the_one_flask_gives(
    secured: Server, path: str, headers: dict[str, str]
) -> None:
    for token in ("a" * 24, "e" * 24, "wrong"):
        auth = {**headers, "Authorization": f"Bearer {token}"}
        # Through Flask (and remembered), then from memory: the same both times.
        first = compare(secured, path, auth)
        again = compare(secured, path, auth)
        assert again.data == first.data
        if first.status_code == 200:
            revalidated = compare(secured, path, {**auth, "If-None-Match": first.headers["ETag"]})
            assert revalidated.status_code == 304
    remembered = secured.wsgi._cache.memo
    assert any(key[0] == path for key in remembered)
    # A token that may not read production never had a 200 to remember.
    assert not any(key[3] == "Bearer " + "wrong" for key in remembered)


def test_remembered_spring_replies_end_with_the_revision(secured: Server, repo: Path) -> None:
    before = Client(secured.wsgi).get(
        "/payments/production", headers={"Authorization": "Bearer " + "a" * 24}
    )
    commit_all(repo, "pool", {"environments/production/payments.yaml": "db: {pool: {max: 3}}\n"})
    assert secured.poller.run_once() == "published"
    after = compare(secured, "/payments/production", {"Authorization": "Bearer " + "a" * 24})
    assert after.data != before.data
    assert b'"db.pool.max":3' in after.data.replace(b" ", b"")
