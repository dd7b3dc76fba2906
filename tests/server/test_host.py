"""gitconf inside granian: reads on granian's threads, everything else on gitconf's own.

These run a real `gitconf serve` with one io thread, so anything that held it (a long poll,
a slow request) would stall the reads made meanwhile: each read's timeout is the check.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gitconf.server.fast import FastReads
from gitconf.server.host import BodyRoute, GranianDispatch, granian_supported
from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.hooks.conftest import CONFIG_FILES
from tests.hooks.payloads import hooks_settings, provider_of, signed_push

SEARCH = "/v1/config/staging/search"


def test_the_installed_granian_offers_what_gitconf_takes_over() -> None:
    # Without it gitconf still serves, through plain WSGI, but reads are several times slower.
    assert granian_supported()


def long_polls(server: ServeProcess, etag: str, count: int) -> tuple[list[Any], list[Any]]:
    """count long polls started in threads; (threads, answers)."""
    answers: list[requests.Response] = []

    def poll() -> None:
        answers.append(server.get(f"{SEARCH}?wait=60", headers={"If-None-Match": etag}, timeout=90))

    threads = [threading.Thread(target=poll) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


def test_long_polls_leave_reads_and_the_api_free(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state", extra_args=["--io-threads", "1"]) as server:
        etag = server.get(SEARCH).headers["ETag"]
        threads, answers = long_polls(server, etag, 6)
        for _ in range(20):
            assert server.get(SEARCH, timeout=5).status_code == 200
            assert server.get("/v1/environments", timeout=5).status_code == 200
        assert answers == []  # all six still waiting
        sha = commit_all(repo, "new shards", {"base/search.yaml": "shards: [s9]\n"})
        for thread in threads:
            thread.join(60)
        assert [a.status_code for a in answers] == [200] * 6
        assert {a.headers["X-Gitconf-Revision"] for a in answers} == {sha}
        assert all(a.json()["shards"] == ["s9"] for a in answers)


def test_stopping_answers_the_long_polls_at_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    server = ServeProcess(repo, tmp_path / "state").start()
    try:
        etag = server.get(SEARCH).headers["ETag"]
        threads, answers = long_polls(server, etag, 2)
        wait_until(
            lambda: "gitconf_long_polls_waiting 2.0" in server.get("/metrics").text,
            what="both long polls waiting",
        )
        # Granian kills a worker that has not drained in 30 s; stop() gives up after 20 s.
        assert server.stop(timeout=20) == 0, server.log()
        for thread in threads:
            thread.join(10)
        assert [a.status_code for a in answers] == [304, 304]
        assert all(a.headers["ETag"] == etag for a in answers)
    finally:
        server.kill()


def test_head_over_http_has_the_headers_and_no_body(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state") as server:
        full = server.get(SEARCH)
        for _ in range(2):  # the first resolves the read, the second is the prepared reply
            head = requests.head(server.url + SEARCH, timeout=10)
            assert head.status_code == 200
            assert head.content == b""
            assert head.headers["Content-Length"] == str(len(full.content))
            assert head.headers["ETag"] == full.headers["ETag"]


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[ServeProcess]:
    repo = make_repo(tmp_path / "config", dict(CONFIG_FILES))
    hooks = {**hooks_settings(), "max_body": 16384}
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"hooks": hooks}))
    with ServeProcess(repo, tmp_path / "state", poll_interval=600, config=config) as server:
        yield server


def test_a_chunked_hook_body_is_read_whole(hooked: ServeProcess) -> None:
    head = hooked.get("/v1/config/production/payments").headers["X-Gitconf-Revision"]
    headers, body = signed_push("gitea", "refs/heads/main", head, head)
    chunks = iter([body[:7], body[7:100], body[100:]])  # a generator: sent chunked
    response = hooked.post(f"/v1/hooks/{provider_of('gitea')}", data=chunks, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["after"] == head


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_past_the_limit_is_refused_with_413(hooked: ServeProcess, chunked: bool) -> None:
    headers, body = signed_push("gitea", "refs/heads/main", "0" * 40, "1" * 40)
    body = body[:-1] + b', "padding": "' + b"x" * 16384 + b'"}'
    data: Any = iter([body[:10], body[10:]]) if chunked else body
    response = hooked.post(f"/v1/hooks/{provider_of('gitea')}", data=data, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert "16384" in response.json()["error"]["message"]
    assert hooked.get("/healthz").status_code == 200


def test_a_subscription_over_http(hooked: ServeProcess) -> None:
    doc = {"url": "http://127.0.0.1:9/hook", "environments": ["production"]}
    created = hooked.post("/v1/subscriptions", json=doc)
    assert created.status_code == 201, created.text
    listed = hooked.get("/v1/subscriptions").json()
    assert created.json()["id"] in [s["id"] for s in listed["subscriptions"]]


class Recorder:
    """Stands in for granian's response handle: records the one response given."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []
        self.done = threading.Event()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.responses.append((status, headers, body))
        self.done.set()

    def wait(self) -> tuple[int, dict[str, str], bytes]:
        assert self.done.wait(10)
        [(status, headers, body)] = self.responses
        return status, dict(headers), body


class Body:
    """Stands in for granian's request body: records what was asked of it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    def read(self, size: int) -> bytes:
        self.asked.append(size)
        return self.data[:size]


def scope(method: str, path: str, body: Body | None = None, **headers: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "wsgi.input": body or Body(b""),
        **headers,
    }


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.input"].read()]


def test_an_app_that_raises_gets_a_json_500(server: Any) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    dispatch = GranianDispatch(FastReads(server.reader, server.metrics, broken), 1)
    proto = Recorder()
    dispatch(proto, scope("GET", "/v1/status"))
    status, headers, body = proto.wait()
    dispatch.stop()
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert b'"internal"' in body


def test_only_admitted_body_routes_have_their_body_read(server: Any) -> None:
    routes = [
        BodyRoute("POST", "/v1/things", 10, lambda env: env.get("HTTP_AUTHORIZATION") == "yes"),
        BodyRoute("POST", "/v1/hooks/", 10, lambda env: True),
    ]
    dispatch = GranianDispatch(FastReads(server.reader, server.metrics, echo), 2, routes)
    cases = [
        # (method, path, headers, read sizes asked, body the app got)
        ("POST", "/v1/things", {"HTTP_AUTHORIZATION": "yes"}, [11], b"0123456789A"),
        ("POST", "/v1/things", {}, [], b""),
        ("PUT", "/v1/things", {"HTTP_AUTHORIZATION": "yes"}, [], b""),
        ("POST", "/v1/other", {"HTTP_AUTHORIZATION": "yes"}, [], b""),
        ("POST", "/v1/hooks/github", {}, [11], b"0123456789A"),
        ("POST", "/v1/hooks/github", {"CONTENT_LENGTH": "5"}, [11], b"0123456789A"),
        ("POST", "/v1/hooks/github", {"CONTENT_LENGTH": "11"}, [], b""),
        # What the app refuses from the headers (gitconf.server.guard) is not read either.
        ("POST", "/v1/hooks/github", {"HTTP_ORIGIN": "https://evil.example"}, [], b""),
        ("POST", "/v1/hooks/github", {"HTTP_HOST": "evil.example:8080"}, [], b""),
        ("POST", "/v1/hooks/github", {"HTTP_HOST": "127.0.0.1:8080"}, [11], b"0123456789A"),
    ]
    for method, path, headers, asked, got in cases:
        body = Body(b"0123456789ABCDEF")
        proto = Recorder()
        dispatch(proto, scope(method, path, body, **headers))
        assert proto.wait()[2] == got, (method, path, headers)
        assert body.asked == asked, (method, path, headers)
    dispatch.stop()


def test_a_full_pool_answers_503_at_once(server: Any) -> None:
    release = threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(10)
        start_response("204 No Content", [])
        return []

    dispatch = GranianDispatch(FastReads(server.reader, server.metrics, slow), 1, queue=1)
    running, queued, refused = Recorder(), Recorder(), Recorder()
    for proto in (running, queued, refused):
        dispatch(proto, scope("GET", "/v1/status"))
    status, headers, body = refused.wait()
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert b'"busy"' in body
    assert not running.done.is_set()
    release.set()
    assert running.wait()[0] == 204
    assert queued.wait()[0] == 204
    later = Recorder()
    dispatch(later, scope("GET", "/v1/status"))
    assert later.wait()[0] == 204
    dispatch.stop()


ADMIN = "a" * 32


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ServeProcess]:
    """One io thread, tokens required, only the gitea hook on."""
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    config = tmp_path / "server.yaml"
    settings = {
        "tokens": [{"name": "admin", "token": ADMIN, "scopes": ["admin"]}],
        "hooks": {"gitea": hooks_settings()["gitea"]},
    }
    config.write_text(yaml.safe_dump(settings))
    with ServeProcess(
        repo, tmp_path / "state", config=config, extra_args=["--io-threads", "1"]
    ) as server:
        yield server


def test_bodies_nobody_may_send_are_never_waited_for(guarded: ServeProcess) -> None:
    # Each client sends its headers, then holds its body back: a server that read it would
    # hold its one io thread, and the reads below would time out.
    slow = {}
    for path in ["/v1/subscriptions", "/v1/hooks/github", "/v1/nowhere"]:
        client = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
        client.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            "Content-Type: application/json\r\n\r\n".encode()
        )
        slow[path] = client
    auth = {"Authorization": f"Bearer {ADMIN}"}
    for _ in range(5):
        assert guarded.get(SEARCH, headers=auth, timeout=5).status_code == 200
        assert guarded.get("/v1/status", headers=auth, timeout=5).status_code == 200
    statuses = {}
    for path, client in slow.items():
        with client:
            client.sendall(b"{}        ")
            statuses[path] = client.recv(65536).split(b" ", 2)[1]
    assert statuses == {
        "/v1/subscriptions": b"401",
        "/v1/hooks/github": b"404",
        "/v1/nowhere": b"404",
    }


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl for an HTTP/2 client")
def test_an_http2_body_without_length_or_chunking_is_read(guarded: ServeProcess) -> None:
    doc = json.dumps({"url": "http://127.0.0.1:9/hook", "environments": ["production"]})
    out = subprocess.run(
        [
            "curl", "-s", "--http2-prior-knowledge", "-T", "-", "-X", "POST",
            "-H", f"Authorization: Bearer {ADMIN}", "-H", "Content-Type: application/json",
            "-w", "\n%{http_version} %{http_code}",
            guarded.url + "/v1/subscriptions",
        ],
        input=doc.encode(), capture_output=True, timeout=30, check=True,
    ).stdout.decode()  # fmt: skip
    body, _, versions = out.rpartition("\n")
    assert versions == "2 201", out
    assert json.loads(body)["url"] == "http://127.0.0.1:9/hook"
