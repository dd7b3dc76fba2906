"""ConfigClient against a real `gitconf serve` on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
import yaml

from gitconf import __version__
from gitconf.client import Backoff, Change, ConfigClient, ConfigUnavailable
from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.client.conftest import Relay, Served
from tests.conftest import BASE_FILES

FAST = Backoff(first=0.05, cap=0.3)
PAYMENTS = {"region": "us-east-1", "db": {"host": "db.internal", "port": 5432, "pool": {"max": 50}}}


def test_get_caches_atomically_and_revalidates(relay: Relay, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with ConfigClient(relay.url, "production", "payments", cache_dir=str(cache)) as client:
        assert client.get() == PAYMENTS
        assert client.stale is False
        revision = client.revision
        assert revision and len(revision) == 40
        [cached] = list(cache.iterdir())
        assert cached.name == "production@payments.json"
        assert stat.S_IMODE(cached.stat().st_mode) == 0o600
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        assert client.get() == PAYMENTS
    first, second = relay.requests()
    assert first["request-line"] == "GET /v1/config/production/payments HTTP/1.1"
    assert "if-none-match" not in first
    assert second["if-none-match"] == client.etag
    for head in (first, second):
        assert head["user-agent"] == f"gitconf-client/{__version__}"
        assert head["x-gitconf-instance"] == f"{socket.gethostname()}-{os.getpid()}"
    # A new client (a restarted service) revalidates its disk copy instead of downloading it.
    with ConfigClient(relay.url, "production", "payments", cache_dir=str(cache)) as client:
        assert client.get() == PAYMENTS
    assert relay.requests()[-1]["if-none-match"] == client.etag


def test_server_down_serves_the_cached_copy_as_stale(served: Served, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    url = served.server.url
    with ConfigClient(url, "production", "payments", cache_dir=cache) as client:
        assert client.get() == PAYMENTS
        served.server.kill()
        assert client.get() == PAYMENTS
        assert client.stale is True
    # A process started while the server is down reads the disk copy.
    with ConfigClient(url, "production", "payments", cache_dir=cache) as client:
        assert client.get() == PAYMENTS
        assert client.stale is True
    client = ConfigClient(url, "staging", "payments", cache_dir=cache)
    with client, pytest.raises(ConfigUnavailable) as caught:
        client.get()
    message = str(caught.value)
    assert message.startswith(f"{url}/v1/config/staging/payments: the config cannot be read: ")
    assert "Connection refused" in message or "ConnectionError" in message
    assert f"no cached copy in {cache!r}" in message


def test_refusals_are_errors_not_fallbacks(shared: Served) -> None:
    client = ConfigClient(shared.server.url, "production", "paymnts")
    with client, pytest.raises(ConfigUnavailable) as caught:
        client.get()
    assert "HTTP 404: unknown service 'paymnts'; known: payments, search" in str(caught.value)


def test_tokens_are_sent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump({"tokens": [{"name": "p", "token_env": "T", "scopes": ["read:production"]}]})
    )
    with ServeProcess(repo, tmp_path / "state", config=config, env={"T": "tok-123"}) as server:
        with ConfigClient(server.url, "production", "payments", token="tok-123") as client:
            assert client.get() == PAYMENTS
        client = ConfigClient(server.url, "production", "payments")
        with client, pytest.raises(ConfigUnavailable, match="HTTP 401"):
            client.get()


def test_watch_reports_each_change_once_and_survives_a_raising_callback(
    shared: Served, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    changes: list[Change] = []

    def callback(change: Change) -> None:
        changes.append(change)
        if len(changes) == 1:
            raise RuntimeError("a bug in the service's callback")

    with ConfigClient(relay.url, "staging", "payments", backoff=FAST) as client:
        before = client.get()
        client.watch(callback, wait=0.3)
        # Several long polls end in a 304 without any callback.
        wait_until(lambda: len(relay.requests()) >= 3, what="long polls that time out")
        assert changes == []
        staging = "environments/staging/payments.yaml"
        sha = commit_all(shared.repo, "pool", {staging: "db: {pool: {max: 60}}\n"})
        wait_until(lambda: changes, what="the first change")
        [change] = changes
        assert change.old == before
        assert change.new["db"]["pool"]["max"] == 60
        assert change.changed == ("db.pool.max",)
        assert change.revision == sha
        wait_until(lambda: "a watch callback raised; the watch goes on" in caplog.text)
        sha2 = commit_all(shared.repo, "host", {staging: "db: {pool: {max: 60}, host: h2}\n"})
        wait_until(lambda: len(changes) == 2, what="the second change")
        assert changes[1].changed == ("db.host",) and changes[1].revision == sha2
        assert client.get() == changes[1].new
        polls = [r for r in relay.requests() if "wait=0.3" in r["request-line"]]
        assert polls and all(r["x-gitconf-instance"] and r["user-agent"] for r in polls)


def test_close_returns_promptly_during_a_long_poll(relay: Relay) -> None:
    before = set(threading.enumerate())
    client = ConfigClient(relay.url, "production", "payments")
    client.get()
    client.watch(lambda change: None, wait=60)
    [watcher] = [t for t in set(threading.enumerate()) - before if t.name.startswith("gitconf")]
    wait_until(lambda: any("wait=60" in r["request-line"] for r in relay.requests()))
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 1.0
    assert not watcher.is_alive()


def test_the_watch_recovers_when_the_server_is_killed_and_restarted(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gitconf.client")
    server = served.server
    changes: list[Change] = []
    client = ConfigClient(
        server.url, "staging", "search", cache_dir=str(tmp_path / "c"), backoff=FAST
    )
    client.get()
    client.watch(changes.append, wait=5)
    server.kill()
    wait_until(lambda: client.stale, what="the watch to notice the outage")
    assert client.get() == {"region": "us-east-1", "shards": ["s1", "s2"]}
    assert client.stale
    restarted = ServeProcess(served.repo, server.state_dir, port=server.port).start()
    try:
        sha = commit_all(served.repo, "shards", {"base/search.yaml": "shards: [s9]\n"})
        wait_until(lambda: changes, what="the change after the restart")
        assert changes[0].changed == ("shards",) and changes[0].revision == sha
        assert client.stale is False
        assert "the watch reaches the server again" in caplog.text
    finally:
        client.close()
        restarted.stop()
