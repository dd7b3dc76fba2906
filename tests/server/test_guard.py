"""A web page cannot drive gitconf: JSON routes take only JSON, other origins cannot change
state, and without tokens only loopback Host values are answered (no DNS rebinding)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.test import Client

from gitconf.bootstrap import Server
from gitconf.server.guard import Guard, is_loopback_host, origin_of
from gitconf.testing.server import ServeProcess
from tests.hooks.payloads import hooks_settings, signature_headers, signed_push

HOOK = "http://127.0.0.1:9/hook"
EVIL = "https://evil.example"
TOKEN = "a" * 24
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# What a page on another site can send without a preflight.
SIMPLE_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST:8080", True),
        ("127.0.0.1", True),
        ("127.0.0.1:8080", True),
        ("127.255.0.9:1", True),
        ("[::1]", True),
        ("[::1]:8080", True),
        ("[0:0:0:0:0:0:0:1]:8080", True),
        ("attacker.example", False),
        ("attacker.example:8080", False),
        ("localhost.attacker.example", False),
        ("127.0.0.1.nip.io:8080", False),
        ("10.0.0.1:8080", False),
        ("0.0.0.0:8080", False),
        ("::1", False),  # an IPv6 Host is always in brackets
        ("[127.0.0.1]", False),
        ("[::1]x", False),
        ("127.0.0.1:80a", False),
        ("2130706433", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("HTTP://LocalHost:80", "http://localhost"),
        ("https://config.internal:443/ui/", "https://config.internal"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("null", None),
        ("file://", None),
        ("chrome-extension://abc", None),
        ("http://user@127.0.0.1", None),
    ],
)
def test_origins(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_the_guard_rules() -> None:
    open_server = Guard.of(tokens=False, own_urls=["https://config.internal/"])
    assert open_server.misdirected("localhost:8080") is None
    refused = open_server.misdirected("attacker.example:8080")
    assert refused is not None and (refused.status, refused.code) == (421, "misdirected_request")
    assert "'attacker.example:8080'" in refused.message and "tokens:" in refused.message
    assert Guard.of(tokens=True).misdirected("attacker.example:8080") is None

    def post(origin: str | None, method: str = "POST") -> Any:
        environ = {"REQUEST_METHOD": method, "wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1:80"}
        if origin is not None:
            environ["HTTP_ORIGIN"] = origin
        return open_server.cross_origin(environ)

    assert post(None) is None
    assert post("http://127.0.0.1") is None
    assert post("https://config.internal") is None
    assert post(EVIL, "GET") is None
    for origin in (EVIL, "null", "http://127.0.0.1:8080", "https://127.0.0.1"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            refused = post(origin, method)
            assert (refused.status, refused.code) == (403, "cross_origin"), (origin, method)
            assert repr(origin) in refused.message


# -- through the Flask app and the fast read path ---------------------------------------


def subscriptions(client: Any, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = client.get("/v1/subscriptions", headers=headers or {})
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["subscriptions"]
    return found


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
def test_a_cross_site_simple_post_creates_nothing(client: Any, content_type: str) -> None:
    body = json.dumps({"url": HOOK, "include_config": True})
    response = client.post(
        "/v1/subscriptions", data=body, headers={"Content-Type": content_type, "Origin": EVIL}
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_origin"
    response = client.post("/v1/subscriptions", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    error = response.get_json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert repr(content_type) in error["message"]
    assert subscriptions(client) == []


def test_json_with_parameters_and_from_the_servers_own_pages_is_taken(client: Any) -> None:
    body = json.dumps({"url": HOOK})
    for headers in (
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "Application/JSON", "Origin": "http://localhost"},
    ):
        response = client.post("/v1/subscriptions", data=body, headers=headers)
        assert response.status_code == 201, response.get_json()
    response = client.post("/v1/subscriptions", data=body)
    assert response.status_code == 415
    assert "no Content-Type" in response.get_json()["error"]["message"]
    assert len(subscriptions(client)) == 2


def test_another_origin_cannot_delete(client: Any) -> None:
    created = client.post("/v1/subscriptions", json={"url": HOOK}).get_json()
    for origin in (EVIL, "null"):
        response = client.delete(f"/v1/subscriptions/{created['id']}", headers={"Origin": origin})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "cross_origin"
    assert [s["id"] for s in subscriptions(client)] == [created["id"]]
    response = client.delete(f"/v1/subscriptions/{created['id']}", headers={"Origin": EVIL.upper()})
    assert response.status_code == 403
    assert client.delete(f"/v1/subscriptions/{created['id']}").status_code == 204


def test_public_url_is_an_own_origin_and_tokens_do_not_lift_the_origin_rule(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    tokens = [{"name": "admin", "token": TOKEN, "scopes": ["admin"]}]
    server = make_server(repo, public_url="https://config.internal/", tokens=tokens)
    client = server.app.test_client()
    body = {"url": HOOK}
    refused = client.post("/v1/subscriptions", json=body, headers={**ADMIN, "Origin": EVIL})
    assert refused.status_code == 403
    taken = client.post(
        "/v1/subscriptions", json=body, headers={**ADMIN, "Origin": "https://config.internal"}
    )
    assert taken.status_code == 201, taken.get_json()
    assert len(subscriptions(client, ADMIN)) == 1


ROUTES = ["/v1/config/production/payments", "/v1/status", "/healthz", "/v1/subscriptions", "/x"]


@pytest.mark.parametrize("path", ROUTES)
def test_without_tokens_a_rebound_host_is_421_on_every_route(server: Server, path: str) -> None:
    for client in (server.app.test_client(), Client(server.wsgi)):  # Flask, and the fast path
        for host in ("attacker.example:8080", "attacker.example", "10.1.2.3:8080"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 421, (path, host)
            error = response.get_json()["error"]
            assert error["code"] == "misdirected_request"
            assert repr(host) in error["message"]
        head = client.head(path, headers={"Host": "attacker.example"})
        assert (head.status_code, head.data) == (421, b"")
        response = client.post(path, json={"url": HOOK}, headers={"Host": "attacker.example"})
        assert response.status_code == 421
        for host in ("127.0.0.1:8080", "localhost", "[::1]:8080", "127.9.9.9"):
            assert client.get(path, headers={"Host": host}).status_code in (200, 404), host
    assert subscriptions(server.app.test_client()) == []


def test_the_fast_path_checks_the_host_of_every_read_it_has_cached(server: Server) -> None:
    client = Client(server.wsgi)
    path = "/v1/config/production/payments"
    first = client.get(path, headers={"Host": "127.0.0.1:8080"})
    assert first.status_code == 200
    assert client.get(path, headers={"Host": "attacker.example:8080"}).status_code == 421
    etag = {"If-None-Match": first.headers["ETag"]}
    assert client.get(path, headers={"Host": "evil.example", **etag}).status_code == 421
    assert client.get(path, headers={"Host": "localhost", **etag}).status_code == 304
    metrics = server.app.test_client().get("/metrics").text
    assert (
        'gitconf_http_requests_total{route="/v1/config/<env>/<service>",status="421"} 2.0'
        in metrics
    )


def test_with_tokens_any_host_is_answered(repo: Path, make_server: Callable[..., Server]) -> None:
    tokens = [{"name": "admin", "token": TOKEN, "scopes": ["admin"]}]
    server = make_server(repo, tokens=tokens)
    assert server.poller.run_once() == "published"
    headers = {**ADMIN, "Host": "config.internal:8080"}
    for client in (server.app.test_client(), Client(server.wsgi)):
        assert client.get("/v1/config/production/payments", headers=headers).status_code == 200
        assert client.get("/v1/status", headers=headers).status_code == 200


# -- a real `gitconf serve` ------------------------------------------------------------


def test_a_real_server_refuses_a_web_page_and_takes_hooks(repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"hooks": hooks_settings()}))
    with ServeProcess(repo, tmp_path / "state", config=config) as server:
        body = json.dumps({"url": HOOK, "include_config": True})
        # What a page on another site sends with fetch(..., {mode: "no-cors", body}).
        page = {"Content-Type": "text/plain;charset=UTF-8", "Origin": EVIL}
        response = server.post("/v1/subscriptions", data=body, headers=page)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "cross_origin"
        response = server.post(
            "/v1/subscriptions", data=body, headers={"Content-Type": "text/plain"}
        )
        assert response.status_code == 415, response.text
        assert server.get("/v1/subscriptions").json()["subscriptions"] == []

        port = server.port
        for path in ("/v1/config/production/payments", "/v1/status"):
            rebound = server.get(path, headers={"Host": f"attacker.example:{port}"})
            assert rebound.status_code == 421, (path, rebound.text)
            assert rebound.json()["error"]["code"] == "misdirected_request"
            assert server.get(path, headers={"Host": f"localhost:{port}"}).status_code == 200

        # Git hosts send no Origin, and GitHub may send the payload form-encoded.
        headers, payload = signed_push("github", "refs/heads/other", "0" * 40, "1" * 40)
        form = urllib.parse.urlencode({"payload": payload.decode()}).encode()
        form_headers = {
            "X-GitHub-Event": "push",
            "Content-Type": "application/x-www-form-urlencoded",
            **signature_headers("github", form),
        }
        for hook_headers, body in ((headers, payload), (form_headers, form)):
            response = server.post("/v1/hooks/github", data=body, headers=hook_headers)
            assert response.status_code == 200, response.text
            assert "ignored" in response.json()
