"""gitconf inside granian: reads on granian's threads, everything else on gitconf's own.

These run a real `gitconf serve` with one io thread, so anything that held it (a long poll,
a slow request) would stall the reads made meanwhile: each read's timeout is the check.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gitconf.server.fast import FastReads
from gitconf.server.host import GranianDispatch, granian_supported
from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess
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
        server.get("/v1/status")  # the polls are in before the stop
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


def test_an_app_that_raises_gets_a_json_500(server: Any) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    dispatch = GranianDispatch(FastReads(server.reader, server.metrics, broken), broken, 1, 10)
    proto = Recorder()
    dispatch(proto, {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/status", "QUERY_STRING": ""})
    assert proto.done.wait(10)
    dispatch.stop()
    [(status, headers, body)] = proto.responses
    assert status == 500
    assert ("Content-Type", "application/json") in headers
    assert b'"internal"' in body
