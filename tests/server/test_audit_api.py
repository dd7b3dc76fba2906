"""The audit log over HTTP: every write and every refused token, with its actor and request id;
GET /v1/audit paged and filtered, for admins only; no token or secret in it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from gitconf.bootstrap import Server
from gitconf.testing import signed_github_push

ADMIN = "t-admin-0123456789abcdef"
READER = "t-reader-0123456789abcdef"
HOOK_SECRET = "audit-hook-secret-0123"
TOKENS = [
    {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
    {"name": "reader", "token": READER, "scopes": ["read:staging"]},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(repo: Path, make_server: Callable[..., Server]) -> Server:
    server = make_server(
        repo,
        tokens=TOKENS,
        hooks={"github": {"secret": HOOK_SECRET}},
    )
    assert server.poller.run_once() == "published"
    return server


def entries(server: Server, query: str = "") -> list[dict[str, Any]]:
    response = server.app.test_client().get(f"/v1/audit{query}", headers=bearer(ADMIN))
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["entries"]
    return found


def test_subscriptions_made_and_deleted_are_audited_with_their_actor(server: Server) -> None:
    client = server.app.test_client()
    doc = {"url": "http://user:pw@127.0.0.1:9/hook?key=k1", "environments": ["staging"]}
    made = client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN))
    assert made.status_code == 201
    sub_id = made.get_json()["id"]
    assert client.delete(f"/v1/subscriptions/{sub_id}", headers=bearer(ADMIN)).status_code == 204
    refused = client.post("/v1/subscriptions", json=doc, headers=bearer(READER))
    assert refused.status_code == 403
    rows = entries(server)
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in rows] == [
        ("ops", "subscription.create", f"subscription {sub_id}", "201 created"),
        ("ops", "subscription.delete", f"subscription {sub_id}", "204"),
        ("reader", "subscription.create", "subscriptions", "403 forbidden"),
    ]
    assert rows[0]["detail"]["url"] == "http://127.0.0.1:9/hook"  # no user info, no query
    assert rows[0]["request_id"] == made.headers["X-Request-Id"]
    text = json.dumps(rows)
    for secret in (ADMIN, READER, made.get_json()["secret"], "pw", "k1"):
        assert secret not in text


def test_tokens_refused_on_the_fast_read_path_and_in_flask_are_audited(server: Server) -> None:
    fast = Client(server.wsgi)
    forbidden = fast.get("/v1/config/production/payments", headers=bearer(READER))
    assert forbidden.status_code == 403
    missing = fast.get("/v1/config/staging/payments", headers=bearer("t-nobody-0123456789"))
    assert missing.status_code == 401
    flask = server.app.test_client().get("/v1/status")
    assert flask.status_code == 401
    rows = [r for r in entries(server) if r["action"] == "token.refused"]
    assert [(r["actor"], r["target"], r["result"]) for r in rows] == [
        ("reader", "GET /v1/config/production/payments", "403 forbidden"),
        ("-", "GET /v1/config/staging/payments", "401 unauthorized"),
        ("-", "GET /v1/status", "401 unauthorized"),
    ]
    assert [r["request_id"] for r in rows] == [
        forbidden.headers["X-Request-Id"],
        missing.headers["X-Request-Id"],
        flask.headers["X-Request-Id"],
    ]
    assert "t-nobody" not in json.dumps(rows)


def test_hooks_accepted_and_refused_are_audited(server: Server) -> None:
    client = server.app.test_client()
    body, headers = signed_github_push(HOOK_SECRET, "1" * 40)
    assert client.post("/v1/hooks/github", data=body, headers=headers).status_code == 202
    bad, bad_headers = signed_github_push("not-the-secret-at-all", "0" * 40)
    assert client.post("/v1/hooks/github", data=bad, headers=bad_headers).status_code == 401
    rows = [r for r in entries(server) if r["action"].startswith("hook.")]
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in rows] == [
        ("hook:github", "hook.accepted", "github", "202"),
        ("hook:github", "hook.refused", "github", "401 bad_signature"),
    ]
    assert HOOK_SECRET not in json.dumps(rows)


def test_the_audit_log_is_paged_and_filtered(server: Server) -> None:
    client = server.app.test_client()
    for _ in range(5):
        assert client.get("/v1/status").status_code == 401
    doc = {"url": "http://127.0.0.1:9/x"}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    pages: list[list[str]] = []
    cursor: int | None = 0
    while cursor is not None:
        response = client.get(
            f"/v1/audit?action=token&limit=2&cursor={cursor}", headers=bearer(ADMIN)
        )
        assert response.status_code == 200
        page = response.get_json()
        pages.append([e["action"] for e in page["entries"]])
        cursor = page["next_cursor"]
    assert pages == [["token.refused"] * 2, ["token.refused"] * 2, ["token.refused"]]
    assert [e["action"] for e in entries(server, "?actor=ops")] == ["subscription.create"]
    assert entries(server, "?since=2999-01-01T00:00:00Z") == []
    assert len(entries(server, "?since=2000-01-01T00:00:00Z")) == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=yesterday", "since"),
        ("?limit=0", "limit"),
        ("?limit=5000", "limit"),
        ("?cursor=-1", "cursor"),
        ("?who=ops", "who"),
    ],
)
def test_bad_queries_name_the_parameter(server: Server, query: str, field: str) -> None:
    response = server.app.test_client().get(f"/v1/audit{query}", headers=bearer(ADMIN))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"].startswith(f"{field}: ")


def test_only_admins_read_the_audit_log_and_nothing_edits_it(server: Server) -> None:
    client = server.app.test_client()
    response = client.get("/v1/audit", headers=bearer(READER))
    assert response.status_code == 403
    assert "admin" in response.get_json()["error"]["message"]
    assert client.get("/v1/audit").status_code == 401
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/v1/audit", headers=bearer(ADMIN)).status_code == 405
    refused = [r for r in entries(server) if r["action"] == "token.refused"]
    assert [(r["actor"], r["target"], r["result"]) for r in refused] == [
        ("reader", "GET /v1/audit", "403 forbidden"),
        ("-", "GET /v1/audit", "401 unauthorized"),
    ]


def test_a_request_id_is_kept_in_the_access_log_and_the_audit_log(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    client = server.app.test_client()
    with caplog.at_level(logging.INFO, logger="gitconf"):
        response = client.post(
            "/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/y"},
            headers={**bearer(ADMIN), "X-Request-Id": "deploy-42.a"},
        )
        weird = client.get("/v1/status", headers={"X-Request-Id": "no spaces\tplease"})
    assert response.headers["X-Request-Id"] == "deploy-42.a"
    assert weird.headers["X-Request-Id"].startswith("req_")  # not taken as given
    access = [r.getMessage() for r in caplog.records if r.name == "gitconf.access"]
    assert any(
        '"POST /v1/subscriptions" 201' in m and "request_id=deploy-42.a" in m for m in access
    )
    trail = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gitconf.audit"]
    assert trail[0]["action"] == "subscription.create"
    assert trail[0]["request_id"] == "deploy-42.a" and trail[0]["actor"] == "ops"
    assert ADMIN not in caplog.text and response.get_json()["secret"] not in caplog.text
