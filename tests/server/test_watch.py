"""GET /v1/watch against a real server: events, filters, scopes, Last-Event-ID, shutdown."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

import gitconf.server.watch as watch_module
from gitconf.server.auth import Principal
from gitconf.server.errors import ApiError
from gitconf.server.watch import Watch, parse_globs
from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES

READER = "r" * 32
ADMIN = "a" * 32


class Stream:
    """An open /v1/watch, read on a thread of its own into a queue of parsed blocks."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.response = requests.get(url, headers=headers or {}, stream=True, timeout=30)
        self.blocks: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._thread.start()

    def _read(self) -> None:
        block: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if block:
                        self.blocks.put(block)
                    block = {}
                elif line.startswith(":"):
                    block.setdefault("comments", []).append(line[1:].strip())
                else:
                    name, _, value = line.partition(": ")
                    block[name] = value
        except (requests.RequestException, OSError, AttributeError):
            pass  # closed by close()
        self.blocks.put({"closed": True})

    def next_event(self, timeout: float = 20) -> dict[str, Any]:
        """The next block that is an event (comments-only blocks are skipped)."""
        while True:
            block = self.blocks.get(timeout=timeout)
            if "event" in block or "closed" in block:
                return block

    def close(self) -> None:
        # Closing the response would wait for the reader thread's read: end the socket.
        connection = self.response.raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)
        self.response.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServeProcess, Path]]:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "tokens": [
                    {"name": "staging-reader", "token": READER, "scopes": ["read:staging"]},
                    {"name": "admin", "token": ADMIN, "scopes": ["admin"]},
                ]
            }
        )
    )
    with ServeProcess(repo, tmp_path / "state", config=config) as server:
        yield server, repo


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_each_changed_config_is_one_event_and_last_event_id_resumes(
    served: tuple[ServeProcess, Path],
) -> None:
    server, repo = served
    before = server.get("/readyz").json()["revision"]
    stream = Stream(f"{server.url}/v1/watch?services=payments", auth(ADMIN))
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    sha = commit_all(
        repo, "pool", {"environments/production/payments.yaml": "db: {pool: {max: 7}}\n"}
    )
    first, second = stream.next_event(), stream.next_event()
    assert {first["event"], second["event"]} == {"config.changed"}
    assert first["id"] == second["id"] == sha
    data = [json.loads(first["data"]), json.loads(second["data"])]
    assert {(d["environment"], d["service"]) for d in data} == {
        ("production", "payments"),
        ("production-eu", "payments"),
    }
    for doc in data:
        assert doc["revision"] == sha and doc["previous_revision"] == before
        assert doc["changed"] == doc["changed_keys"] == ["db.pool.max"]
        assert (
            doc["etag"]
            == server.get(f"/v1/config/{doc['environment']}/payments", headers=auth(ADMIN)).headers[
                "ETag"
            ]
        )
        assert doc["fetch_url"].endswith(f"/v1/config/{doc['environment']}/payments")
    # A change to a service the stream does not watch sends nothing.
    later = commit_all(repo, "search", {"base/search.yaml": "shards: [s5]\n"})
    wait_until(lambda: server.get("/readyz").json()["revision"] == later, what="published")
    assert stream.blocks.empty() or "event" not in stream.blocks.queue[0]
    stream.close()

    # Resuming from the first revision replays what was published since, and only that.
    resumed = Stream(f"{server.url}/v1/watch", {**auth(ADMIN), "Last-Event-ID": before})
    replayed = [resumed.next_event(), resumed.next_event(), resumed.next_event()]
    assert [e["id"] for e in replayed] == [sha, sha, later]
    assert json.loads(replayed[2]["data"])["service"] == "search"
    resumed.close()
    # From the served revision: nothing to replay. From an unknown one: resync.
    current = Stream(f"{server.url}/v1/watch", {**auth(ADMIN), "Last-Event-ID": later})
    unknown = Stream(f"{server.url}/v1/watch", {**auth(ADMIN), "Last-Event-ID": "f" * 40})
    resync = unknown.next_event()
    assert resync["event"] == "resync"
    assert json.loads(resync["data"]) == {"revision": later}
    assert current.blocks.empty() or "event" not in current.blocks.queue[0]
    current.close()
    unknown.close()


def test_a_stream_carries_only_what_its_token_may_read(served: tuple[ServeProcess, Path]) -> None:
    server, repo = served
    assert server.get("/v1/watch").status_code == 401
    refused = server.get("/v1/watch?environments=production", headers=auth(READER))
    assert refused.status_code == 403
    assert "staging-reader" in refused.json()["error"]["message"]
    stream = Stream(f"{server.url}/v1/watch", auth(READER))
    sha = commit_all(repo, "all", {"base/_all.yaml": "region: ap-south-1\n"})
    event = stream.next_event()
    assert event["id"] == sha
    seen = [json.loads(event["data"])]
    while not stream.blocks.empty():
        block = stream.blocks.get()
        if "data" in block:
            seen.append(json.loads(block["data"]))
    assert {d["environment"] for d in seen} == {"staging"}
    stream.close()


def test_bad_globs_are_400() -> None:
    assert parse_globs(None, "environments") == ("*",)
    assert parse_globs("production*, staging", "environments") == ("production*", "staging")
    for bad in [",", "x" * 300, "a\nb", ",".join(["a"] * 65)]:
        with pytest.raises(ApiError) as raised:
            parse_globs(bad, "services")
        assert raised.value.status == 400


def test_stopping_the_server_ends_its_streams_at_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    server = ServeProcess(repo, tmp_path / "state").start()
    try:
        stream = Stream(f"{server.url}/v1/watch")
        wait_until(
            lambda: "gitconf_watch_streams 1.0" in server.get("/metrics").text, what="the stream"
        )
        assert server.stop(timeout=20) == 0, server.log()
        assert stream.next_event(timeout=10) == {"closed": True}
    finally:
        server.kill()


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


def test_an_idle_stream_sends_a_comment_every_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "HEARTBEAT", 0.05)
    watch = Watch("http://127.0.0.1:1", 10, lambda: None)
    transport = Transport()

    async def run() -> None:
        watch.bind(asyncio.get_running_loop())
        task = asyncio.ensure_future(
            watch.serve(Principal("t", ("admin",)), ("*",), ("*",), None, lambda s, h: transport)
        )
        while sum(b == b": keep-alive\n\n" for b in transport.sent) < 2:
            await asyncio.sleep(0.01)
        watch._close_all()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    assert transport.sent[0].startswith(b"retry: 2000\n")
    assert watch.streams == 0


def test_a_stream_of_named_configs_gets_what_glob_matching_gives() -> None:
    # Streams of plain names look their configs up in the batch instead of matching every
    # event (a fleet of one-config streams in a publish of every config); the same events,
    # in the same order, as the glob path, and still only what the token may read.
    from gitconf.server.watch import Batch, Event, _Stream

    envs, services = ["dev", "prod", "prod-eu"], [f"svc-{i}" for i in range(40)]
    events = tuple(
        Event(e, s, f"id: x\nevent: config.changed\ndata: {e}/{s}\n\n".encode())
        for s in services
        for e in envs
    )
    batch = Batch("rev", None, events)
    reader = Principal("r", ("read:prod*",))
    cases = [(("prod",), ("svc-3",)), (("prod", "dev"), ("svc-7", "svc-1", "nope")), (("prod-eu",), ("svc-39", "svc-0"))]  # fmt: skip
    for environments, names in cases:
        named = _Stream(reader, environments, names)
        assert named.configs is not None
        globbed = _Stream(reader, environments, names)
        globbed.configs = None  # the matching path
        got = batch.for_stream(named)
        assert got == Batch("rev", None, events).for_stream(globbed)
        assert b"dev/" not in got  # read:prod* only
    assert _Stream(reader, ("prod*",), ("svc-1",)).configs is None
