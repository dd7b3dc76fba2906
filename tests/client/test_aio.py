"""AsyncConfigClient against a real `gitconf serve` on 127.0.0.1 (each test runs its own loop)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gitconf.client import AsyncConfigClient, Backoff, Change, ConfigUnavailable
from gitconf.testing import commit_all
from gitconf.testing.server import ServeProcess
from tests.client.conftest import Relay, Served

FAST = Backoff(first=0.05, cap=0.3)


async def until(condition: object, timeout: float = 15.0) -> None:
    """Await condition() being truthy, within timeout."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await asyncio.sleep(0.02)


def test_get_watch_and_close(shared: Served, relay: Relay, tmp_path: Path) -> None:
    async def scenario() -> None:
        changes: list[Change] = []

        async def callback(change: Change) -> None:
            changes.append(change)
            if len(changes) == 1:
                raise RuntimeError("a bug in the callback")

        async with AsyncConfigClient(
            relay.url, "staging", "search", cache_dir=str(tmp_path / "c"), backoff=FAST
        ) as client:
            before = await client.get()
            assert before == {"region": "us-east-1", "shards": ["s1", "s2"]}
            assert await client.get() == before
            client.watch(callback, wait=0.3)
            await until(lambda: len(relay.requests()) >= 4)
            assert changes == []
            sha = commit_all(
                shared.repo, "s3", {"environments/staging/search.yaml": "shards: [s3]\n"}
            )
            await until(lambda: changes)
            assert changes[0].old == before and changes[0].changed == ("shards",)
            assert changes[0].revision == sha
            commit_all(shared.repo, "s4", {"environments/staging/search.yaml": "shards: [s4]\n"})
            await until(lambda: len(changes) == 2)  # the raising callback did not stop it
            client.watch(lambda change: None)  # a second callback, on the same task
            commit_all(shared.repo, "s5", {"environments/staging/search.yaml": "shards: [s5]\n"})
            await until(lambda: len(changes) == 3)
        async with AsyncConfigClient(relay.url, "staging", "search") as client:
            client.watch(lambda change: None, wait=60)
            await until(lambda: any("wait=60" in r["request-line"] for r in relay.requests()))
            started = time.monotonic()
        assert time.monotonic() - started < 1.0  # __aexit__ closed it during a long poll
        heads = relay.requests()
        assert heads[1]["if-none-match"] and all(h["x-gitconf-instance"] for h in heads)

    asyncio.run(scenario())


def test_stale_cache_and_recovery(served: Served, tmp_path: Path) -> None:
    server = served.server
    cache = str(tmp_path / "c")

    async def scenario() -> None:
        changes: list[Change] = []
        async with AsyncConfigClient(
            server.url, "production", "payments", cache_dir=cache, backoff=FAST
        ) as client:
            config = await client.get()
            client.watch(changes.append, wait=5)
            server.kill()
            assert await client.get() == config and client.stale
            async with AsyncConfigClient(server.url, "staging", "search", cache_dir=cache) as other:
                with pytest.raises(ConfigUnavailable, match="no cached copy"):
                    await other.get()
            restarted = await asyncio.to_thread(
                ServeProcess(served.repo, server.state_dir, port=server.port).start
            )
            try:
                commit_all(served.repo, "port", {"base/payments.yaml": "db: {port: 6432}\n"})
                await until(lambda: changes)
                assert "db.port" in changes[0].changed and client.stale is False
            finally:
                await asyncio.to_thread(restarted.stop)

    asyncio.run(scenario())
