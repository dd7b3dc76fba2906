"""gitconf inside granian's RSGI interface: reads, long polls and streams on the event loop,
the rest of the API on gitconf's threads, bodies read asynchronously.

Most run a real `gitconf serve` with one request thread, so anything that held it (a long
poll, a slow body) would stall the API calls made meanwhile: each call's timeout is the check.
"""

from __future__ import annotations

import asyncio
import json
import re
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
from gitconf.server.rsgi import DEFAULT_BODY_LIMIT, GitconfRSGI
from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.hooks.conftest import CONFIG_FILES
from tests.hooks.payloads import hooks_settings, provider_of, signed_push

SEARCH = "/v1/config/staging/search"


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
    with ServeProcess(repo, tmp_path / "state", extra_args=["--threads", "1"]) as server:
        etag = server.get(SEARCH).headers["ETag"]
        threads, answers = long_polls(server, etag, 6)
        wait_until(
            lambda: "gitconf_long_polls_waiting 6.0" in server.get("/metrics").text,
            what="six long polls waiting",
        )
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


class Proto:
    """Stands in for granian's RSGI protocol object: records the one response given."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.responses: list[tuple[int, dict[str, str], bytes]] = []

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.responses.append((status, dict(headers), body))

    async def client_disconnect(self) -> None:
        await asyncio.Event().wait()

    def __aiter__(self) -> Any:
        async def chunks() -> Any:
            if self.body:
                yield self.body

        return chunks()


class Headers(dict):  # type: ignore[type-arg]
    def items(self) -> Any:  # type: ignore[override]
        return list(super().items())


class Scope:
    """Stands in for granian's RSGI scope."""

    proto = "http"
    http_version = "1.1"
    scheme = "http"
    server = "127.0.0.1:8080"
    client = "127.0.0.1:50000"
    authority = None

    def __init__(self, method: str, path: str, **headers: str) -> None:
        self.method, self.path, self.query_string = method, path, ""
        self.headers = Headers({"host": "127.0.0.1:8080", **headers})


def host_of(server: Any, app: Any, **options: Any) -> GitconfRSGI:
    fast = FastReads(server.reader, server.metrics, app, server.deps.guard)
    return GitconfRSGI(fast, server.long_polls, server.watch, **{"threads": 1, **options})


def test_an_app_that_raises_gets_a_json_500(server: Any) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    host = host_of(server, broken)
    proto = Proto()
    asyncio.run(host.__rsgi__(Scope("GET", "/v1/status"), proto))
    host.pool.shutdown()
    [(status, headers, body)] = proto.responses
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert b'"internal"' in body


def test_a_full_pool_answers_503_at_once(server: Any) -> None:
    release = threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(10)
        start_response("204 No Content", [])
        return []

    host = host_of(server, slow, queue=1)

    async def three() -> list[Proto]:
        protos = [Proto(), Proto(), Proto()]
        tasks = [
            asyncio.ensure_future(host.__rsgi__(Scope("GET", "/v1/status"), p)) for p in protos
        ]
        await asyncio.sleep(0)
        await asyncio.wait_for(_until(lambda: protos[2].responses), 10)
        assert protos[2].responses[0][0] == 503  # refused at once, the others still running
        assert not protos[0].responses
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return protos

    running, queued, refused = asyncio.run(three())
    _, headers, body = refused.responses[0]
    assert headers["Retry-After"] == "1"
    assert b'"busy"' in body
    assert running.responses[0][0] == queued.responses[0][0] == 204
    host.pool.shutdown()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_every_route_gets_its_body_and_bodies_refused_from_headers_are_not_read(
    server: Any,
) -> None:
    def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.input"].read()]

    host = host_of(server, echo, body_limits={"/v1/hooks/": 2 * DEFAULT_BODY_LIMIT})
    past_default, past_hooks = str(DEFAULT_BODY_LIMIT + 1), str(2 * DEFAULT_BODY_LIMIT + 1)
    cases = [
        # (method, path, headers, body the app got)
        ("POST", "/v1/anything", {}, b"0123456789ABCDEF"),
        ("PUT", "/v1/anything", {}, b"0123456789ABCDEF"),
        ("DELETE", "/v1/anything", {}, b"0123456789ABCDEF"),
        # Past the limit by Content-Length alone: not read (the route answers 413 from it).
        ("POST", "/v1/anything", {"content-length": past_default}, b""),
        ("POST", "/v1/hooks/github", {"content-length": past_default}, b"0123456789ABCDEF"),
        ("POST", "/v1/hooks/github", {"content-length": past_hooks}, b""),
        # What the app refuses from the headers (gitconf.server.guard) is not read.
        ("POST", "/v1/hooks/github", {"origin": "https://evil.example"}, b""),
        ("POST", "/v1/hooks/github", {"host": "evil.example:8080"}, b""),
    ]
    for method, path, headers, got in cases:
        proto = Proto(b"0123456789ABCDEF")
        asyncio.run(host.__rsgi__(Scope(method, path, **headers), proto))
        [(_, _, body)] = proto.responses
        assert body == got, (method, path, headers)
    host.pool.shutdown()


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
        repo, tmp_path / "state", config=config, extra_args=["--threads", "1"]
    ) as server:
        yield server


def body_routes(server: ServeProcess) -> list[str]:
    """A path of every route of the app that takes a body (POST, PUT, PATCH, DELETE)."""
    from gitconf.bootstrap import build
    from gitconf.settings import load_settings

    built = build(load_settings({"repo": server.repo, "state_dir": str(server.state_dir) + "-x"}))
    try:
        paths = set()
        for rule in built.app.url_map.iter_rules():
            if rule.methods and rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
                paths.add(re.sub(r"<[^>]+>", "x", rule.rule))
        return sorted(paths)
    finally:
        built.stop()


def test_slow_bodies_hold_no_thread_on_any_route(guarded: ServeProcess) -> None:
    # Each client sends its headers, then holds its body back: a server that read it on a
    # request thread would hold its one thread, and the API calls below would time out.
    slow = {}
    routes = body_routes(guarded)
    assert "/v1/subscriptions" in routes and "/v1/hooks/x" in routes
    for path in [*routes, "/v1/hooks/github", "/v1/nowhere"]:
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
    # Each got its body and answered for itself (none a 500 or a 408).
    assert statuses["/v1/subscriptions"] == b"401"
    assert statuses["/v1/hooks/github"] == b"404"
    assert statuses["/v1/nowhere"] == b"404"
    assert all(status not in (b"500", b"408", b"503") for status in statuses.values()), statuses


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


def test_a_publish_wakes_only_the_long_polls_whose_config_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state") as server:
        payments = "/v1/config/production/payments"
        search_etag = server.get(SEARCH).headers["ETag"]
        pay_etag = server.get(payments).headers["ETag"]
        answers: dict[str, requests.Response] = {}

        def poll(path: str, etag: str) -> None:
            answers[path] = server.get(
                f"{path}?wait=30", headers={"If-None-Match": etag}, timeout=60
            )

        threads = [
            threading.Thread(target=poll, args=(SEARCH, search_etag)),
            threading.Thread(target=poll, args=(payments, pay_etag)),
        ]
        for thread in threads:
            thread.start()
        wait_until(
            lambda: "gitconf_long_polls_waiting 2.0" in server.get("/metrics").text,
            what="two long polls waiting",
        )
        commit_all(repo, "search only", {"base/search.yaml": "shards: [s7]\n"})
        threads[0].join(30)
        assert answers[SEARCH].status_code == 200
        assert answers[SEARCH].json()["shards"] == ["s7"]
        assert payments not in answers  # its config did not change: still waiting
        assert "gitconf_long_polls_waiting 1.0" in server.get("/metrics").text
        assert server.stop(timeout=20) == 0  # and a stop answers it at once
        threads[1].join(10)
        assert answers[payments].status_code == 304


def test_past_max_waiters_a_long_poll_is_503_at_once_and_the_rest_is_answered(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state", extra_args=["--max-waiters", "3"]) as server:
        etag = server.get(SEARCH).headers["ETag"]
        threads, answers = long_polls(server, etag, 3)
        wait_until(
            lambda: "gitconf_long_polls_waiting 3.0" in server.get("/metrics").text,
            what="three long polls waiting",
        )
        refused = server.get(f"{SEARCH}?wait=30", headers={"If-None-Match": etag}, timeout=5)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "too_many_waiters"
        assert refused.headers["Retry-After"] == "1"
        assert server.get(SEARCH, timeout=5).status_code == 200
        assert server.get("/readyz", timeout=5).status_code == 200
        assert server.get("/v1/status", timeout=5).status_code == 200
        commit_all(repo, "wake", {"base/search.yaml": "shards: [s8]\n"})
        for thread in threads:
            thread.join(30)
        assert [a.status_code for a in answers] == [200] * 3


def test_a_long_poll_whose_client_went_away_frees_its_place(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state") as server:
        etag = server.get(SEARCH).headers["ETag"]
        client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        client.sendall(
            f"GET {SEARCH}?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"If-None-Match: {etag}\r\n\r\n".encode()
        )
        wait_until(
            lambda: "gitconf_long_polls_waiting 1.0" in server.get("/metrics").text,
            what="the long poll waiting",
        )
        client.close()
        wait_until(
            lambda: "gitconf_long_polls_waiting 0.0" in server.get("/metrics").text,
            what="the long poll to end with its client",
        )
