"""The HTTP API through Flask's test client over a real Server on a real repository."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.test import Client

from gitconf.bootstrap import Server
from gitconf.testing import OPEN_SCHEMA, commit_all, git, make_repo
from gitconf.testing.server import wait_until
from tests.conftest import BASE_FILES


def error_code(response: Any) -> str:
    return response.get_json()["error"]["code"]


def test_config_as_json_with_etag_and_revision(client: Any, server: Server, repo: Path) -> None:
    response = client.get("/v1/config/production/payments")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "region": "us-east-1",
        "db": {"host": "db.internal", "port": 5432, "pool": {"max": 50}},
    }
    assert response.headers["X-Gitconf-Revision"] == git(repo, "rev-parse", "HEAD")
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')


@pytest.mark.parametrize(
    ("query", "headers", "content_type"),
    [
        ("?format=yaml", {}, "application/yaml"),
        ("", {"Accept": "application/yaml"}, "application/yaml"),
        ("?format=env", {}, "text/plain; charset=utf-8"),
    ],
)
def test_config_formats(
    client: Any, query: str, headers: dict[str, str], content_type: str
) -> None:
    response = client.get(f"/v1/config/production/payments{query}", headers=headers)
    assert response.status_code == 200
    assert response.content_type == content_type
    if content_type == "application/yaml":
        assert yaml.safe_load(response.data)["db"]["pool"]["max"] == 50
    else:
        assert "DB_POOL_MAX=50\n" in response.get_data(as_text=True)


def test_bad_format_is_400(client: Any) -> None:
    response = client.get("/v1/config/production/payments?format=xml")
    assert response.status_code == 400
    assert error_code(response) == "bad_format"


def test_if_none_match_gives_304(client: Any) -> None:
    etag = client.get("/v1/config/staging/payments").headers["ETag"]
    response = client.get("/v1/config/staging/payments", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


def test_unchanged_config_keeps_its_etag_across_commits(
    client: Any, server: Server, repo: Path
) -> None:
    before_staging = client.get("/v1/config/staging/payments").headers["ETag"]
    before_prod = client.get("/v1/config/production/payments").headers["ETag"]
    sha = commit_all(
        repo, "prod only", {"environments/production/payments.yaml": "db: {pool: {max: 60}}\n"}
    )
    server.poller.run_once()
    staging = client.get("/v1/config/staging/payments")
    assert staging.headers["X-Gitconf-Revision"] == sha
    assert staging.headers["ETag"] == before_staging
    assert client.get("/v1/config/production/payments").headers["ETag"] != before_prod


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/config/nowhere/payments", "unknown_environment"),
        ("/v1/config/production/nothing", "unknown_service"),
        ("/v1/config/nowhere", "unknown_environment"),
        ("/v1/config/production/nothing/explain", "unknown_service"),
    ],
)
def test_unknown_environment_or_service_is_404(client: Any, path: str, code: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_code(response) == code
    assert "known:" in response.get_json()["error"]["message"]


def test_unknown_route_is_json_404(client: Any) -> None:
    response = client.get("/v1/nothing/here/at/all")
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_path_segments_never_reach_the_filesystem(client: Any) -> None:
    for path in ["/v1/config/..%2F..%2Fetc/passwd", "/v1/config/production/..%2Fgitconf"]:
        assert client.get(path).status_code == 404


def test_ref_serves_an_earlier_revision(client: Any, server: Server, repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    commit_all(repo, "more", {"base/payments.yaml": "db: {host: db2.internal, port: 5433}\n"})
    server.poller.run_once()
    assert client.get("/v1/config/staging/payments").get_json()["db"]["port"] == 5433
    for ref in (first, first[:10], "v1", "main~1"):
        response = client.get(f"/v1/config/staging/payments?ref={ref}")
        assert response.status_code == 200, ref
        assert response.get_json()["db"]["port"] == 5432
        assert response.headers["X-Gitconf-Revision"] == first


def test_unknown_ref_is_404_and_invalid_ref_422(client: Any, server: Server, repo: Path) -> None:
    response = client.get("/v1/config/staging/payments?ref=nope")
    assert response.status_code == 404
    assert error_code(response) == "unknown_ref"
    bad = commit_all(repo, "break", {"base/payments.yaml": "db: {port: abc}\n"})
    server.poller.run_once()
    response = client.get(f"/v1/config/staging/payments?ref={bad}")
    assert response.status_code == 422
    assert any("db.port" in p for p in response.get_json()["error"]["problems"])


@pytest.mark.parametrize("wait", ["abc", "-1", "100000", "nan"])
def test_bad_wait_is_400(client: Any, wait: str) -> None:
    response = client.get(
        f"/v1/config/staging/payments?wait={wait}", headers={"If-None-Match": '"x"'}
    )
    assert response.status_code == 400
    assert error_code(response) == "bad_wait"


def test_long_poll_times_out_with_304(client: Any) -> None:
    etag = client.get("/v1/config/staging/payments").headers["ETag"]
    response = client.get("/v1/config/staging/payments?wait=0.2", headers={"If-None-Match": etag})
    assert response.status_code == 304


def test_long_poll_returns_when_the_config_changes(client: Any, server: Server, repo: Path) -> None:
    etag = client.get("/v1/config/staging/payments").headers["ETag"]
    results: list[Any] = []
    waiter = threading.Thread(
        target=lambda: results.append(
            client.get("/v1/config/staging/payments?wait=30", headers={"If-None-Match": etag})
        )
    )
    waiter.start()
    # Commit only once the request waits: a commit before would be answered by the plain read.
    wait_until(lambda: server.reader.waiting == 1, 10, what="the long poll to be waiting")
    # A commit that does not touch this config wakes the waiter, which keeps waiting.
    commit_all(repo, "other", {"base/search.yaml": "shards: [s9]\n"})
    assert server.poller.run_once() == "published"
    sha = commit_all(repo, "this one", {"base/payments.yaml": "db: {host: h, port: 6000}\n"})
    assert server.poller.run_once() == "published"
    # Well before the 30 s wait ends: the publish answered it, not the deadline.
    waiter.join(10)
    assert not waiter.is_alive()
    [response] = results
    assert response.status_code == 200
    assert response.get_json()["db"]["port"] == 6000
    assert response.headers["X-Gitconf-Revision"] == sha
    assert server.reader.waiting == 0


def test_too_many_waiters_get_503(repo: Path, make_server: Callable[..., Server]) -> None:
    server = make_server(repo, max_waiters=1)
    server.poller.run_once()
    client = server.app.test_client()
    etag = client.get("/v1/config/staging/payments").headers["ETag"]
    done: list[int] = []

    def hold() -> None:
        done.append(
            client.get(
                "/v1/config/staging/payments?wait=30", headers={"If-None-Match": etag}
            ).status_code
        )

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: server.reader.waiting == 1, 10, what="the first long poll to hold its slot")
    assert b"\ngitconf_long_polls_waiting 1.0\n" in client.get("/metrics").data
    response = client.get("/v1/config/staging/payments?wait=30", headers={"If-None-Match": etag})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    commit_all(repo, "release the waiter", {"base/payments.yaml": "db: {port: 1}\n"})
    server.poller.run_once()
    holder.join(10)
    assert done == [200]


def test_whole_environment(client: Any) -> None:
    doc = client.get("/v1/config/production-eu").get_json()
    assert doc["environment"] == "production-eu"
    assert set(doc["services"]) == {"payments", "search"}
    assert doc["services"]["payments"]["region"] == "eu-west-1"


def test_explain_names_the_layer_of_each_leaf(client: Any) -> None:
    doc = client.get("/v1/config/production-eu/payments/explain").get_json()
    leaves = {leaf["key"]: leaf for leaf in doc["leaves"]}
    assert leaves["db.pool.max"]["source"] == "environments/production/payments.yaml:2:15"
    assert leaves["db.pool.max"]["overrides"] == ["base/payments.yaml:4:15"]
    assert leaves["region"]["source"] == "environments/production-eu/_all.yaml:1:9"
    assert doc["layers"][0] == "base/_all.yaml"


def test_environments_status_revisions(client: Any, server: Server, repo: Path) -> None:
    envs = client.get("/v1/environments").get_json()
    assert [e["name"] for e in envs["environments"]] == ["staging", "production", "production-eu"]
    bad = commit_all(repo, "break", {"base/search.yaml": "shards: [a\n"})
    server.poller.run_once()
    status = client.get("/v1/status").get_json()
    assert status["ready"] is True
    assert status["revision"] != bad
    assert status["poll"]["last_result"] == "rejected"
    assert status["rejected"][0]["revision"] == bad
    assert status["rejected"][0]["problems"][0]["path"] == "base/search.yaml"
    revisions = client.get("/v1/revisions").get_json()["revisions"]
    assert [r["state"] for r in revisions] == ["rejected", "published"]


def test_diff_between_revisions(client: Any, server: Server, repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit_all(
        repo, "eu pool", {"environments/production-eu/payments.yaml": "db: {pool: {max: 70}}\n"}
    )
    server.poller.run_once()
    doc = client.get(f"/v1/diff?from={first}").get_json()
    assert doc["from"] == first
    assert doc["changes"] == [
        {
            "environment": "production-eu",
            "service": "payments",
            "status": "changed",
            "changes": [{"key": "db.pool.max", "status": "changed", "old": 50, "new": 70}],
        }
    ]
    assert client.get("/v1/diff").status_code == 400


def test_health_readiness_metrics_openapi(
    client: Any, repo: Path, make_server: Callable[..., Server]
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["status"] == "ready"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gitconf_polls_total{result="published"} 1.0' in metrics
    assert "gitconf_served_revision_info{revision=" in metrics
    assert 'gitconf_http_requests_total{route="/readyz",status="200"}' in metrics
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/config/{env}/{service}" in spec["paths"]
    fresh = make_server(repo, branch="nothing-here").app.test_client()
    assert fresh.get("/readyz").status_code == 503
    assert fresh.get("/v1/config/staging/payments").status_code == 503


TOKENS = [
    {"name": "prod-reader", "token": "p" * 32, "scopes": ["read:production*"]},
    {"name": "ops", "token_env": "OPS_TOKEN", "scopes": ["admin"]},
]


@pytest.fixture
def secured(repo: Path, make_server: Callable[..., Server], tmp_path: Path) -> Any:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"repo": str(repo), "tokens": TOKENS}))
    from gitconf.bootstrap import build
    from gitconf.settings import load_settings

    environ = {"OPS_TOKEN": "o" * 32}
    settings = load_settings(
        {"state_dir": str(tmp_path / "sec")}, environ=environ, config_file=str(config)
    )
    server = build(settings, environ)
    server.poller.run_once()
    yield server.app.test_client()
    server.engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_scopes(secured: Any) -> None:
    prod = bearer("p" * 32)
    assert secured.get("/v1/config/production/payments").status_code == 401
    assert (
        secured.get("/v1/config/production/payments", headers=bearer("x" * 32)).status_code == 401
    )
    assert secured.get("/v1/config/production/payments", headers=prod).status_code == 200
    assert secured.get("/v1/config/production-eu/payments", headers=prod).status_code == 200
    response = secured.get("/v1/config/staging/payments", headers=prod)
    assert response.status_code == 403
    assert error_code(response) == "forbidden"
    assert secured.get("/v1/config/staging/payments", headers=bearer("o" * 32)).status_code == 200
    envs = secured.get("/v1/environments", headers=prod).get_json()["environments"]
    assert [e["name"] for e in envs] == ["production", "production-eu"]
    assert secured.get("/v1/status").status_code == 401
    assert secured.get("/healthz").status_code == 200
    unauthorized = secured.get("/v1/config/production/payments")
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(unauthorized.data)["error"]["code"] == "unauthorized"


def test_openapi_document_is_valid_and_lists_every_route(client: Any, server: Server) -> None:
    from openapi_spec_validator import validate

    from gitconf.server.openapi import CORE_PATHS, HOST_ROUTES, drift, flask_routes

    spec = client.get("/openapi.json").get_json()
    validate(spec)
    routes = [*flask_routes(server.app), *HOST_ROUTES]
    # Every route and method served is documented, and nothing documented is not served.
    assert drift(routes, [CORE_PATHS, *(f.openapi for f in server.features)]) == []
    assert not any(path.startswith("/static") for path, _ in routes)
    for path, methods in routes:
        if path.startswith("/{document}") or path.startswith("/{label}/{document}"):
            continue  # the Spring documents: one route, documented once per extension
        assert path in spec["paths"], path
        for method in methods:
            assert method.lower() in spec["paths"][path], (method, path)
    # The request schema of a subscription is gitconf's own schema file, not a copy of it.
    from gitconf.package_data import own_schema

    body = spec["paths"]["/v1/subscriptions"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    own = own_schema("subscription")
    assert schema["properties"] == own["properties"]
    assert schema.get("required") == own.get("required")
    assert "503" in spec["paths"]["/v1/subscriptions"]["get"]["responses"]


def test_problems_of_unreadable_environments_stay_hidden(secured: Any, repo: Path) -> None:
    server_client = secured
    bad = commit_all(
        repo,
        "secret in staging",
        {"environments/staging/payments.yaml": "db: {port: hunter2-secret}\n"},
    )
    admin, prod = bearer("o" * 32), bearer("p" * 32)
    server_client.application.extensions["gitconf"].poller.run_once()
    admin_view = server_client.get("/v1/status", headers=admin).get_json()["rejected"][0]
    assert "hunter2-secret" in json.dumps(admin_view)
    prod_view = server_client.get("/v1/status", headers=prod).get_json()["rejected"][0]
    assert prod_view["revision"] == bad
    assert prod_view["hidden_problems"] == 1
    assert "hunter2-secret" not in json.dumps(prod_view)
    revisions = server_client.get("/v1/revisions", headers=prod).get_data(as_text=True)
    assert "hunter2-secret" not in revisions
    response = server_client.get(f"/v1/config/production/payments?ref={bad}", headers=prod)
    assert response.status_code == 422
    assert "hunter2-secret" not in response.get_data(as_text=True)


def test_a_config_env_lines_cannot_carry_is_a_422_naming_the_keys(
    tmp_path: Path, make_server: Callable[..., Any]
) -> None:
    files = {
        **BASE_FILES,
        "schemas/clash.schema.json": OPEN_SCHEMA,
        "base/clash.yaml": "db:\n  pool: 1\ndb_pool: 2\n",
    }
    server = make_server(make_repo(tmp_path / "clash", files))
    assert server.poller.run_once() == "published"
    for app in (server.app.wsgi_app, server.wsgi):  # the Flask view and the fast path
        client = Client(app)
        response = client.get("/v1/config/staging/clash?format=env")
        assert response.status_code == 422
        error = response.json["error"]
        assert error["code"] == "not_representable"
        assert "staging/clash cannot be served as env" in error["message"]
        assert "keys db.pool and db_pool would both be the variable DB_POOL" in error["message"]
        value = client.get("/v1/config/staging/clash").json
        assert value == {"region": "us-east-1", "db": {"pool": 1}, "db_pool": 2}
        whole = client.get("/v1/config/staging?format=env")
        assert whole.status_code == 422
        assert "staging cannot be served as env" in whole.json["error"]["message"]
