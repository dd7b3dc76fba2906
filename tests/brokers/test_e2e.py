"""Issue 18's done-when: 50 commits with a real `gitconf serve`, the brokers cut off midway
(and gitconf killed with -9 while they are), end with every change set delivered once per
broker, counted by message id, in the order of the commits.

The brokers are the machine's RabbitMQ and NATS, reached through TCP proxies the test cuts
and restores: stopping the system's services would disturb other tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gitconf.testing import commit_all, make_repo
from gitconf.testing.brokers import JetStream, Rabbit, Received
from gitconf.testing.proxy import TcpProxy
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES

COMMITS = 50
CUT_AT, KILL_AT, RESTORE_AT = 15, 25, 35


def proxy_to(url: str, default_port: int) -> tuple[TcpProxy, str]:
    """A proxy to the broker of url, and the URL that goes through it."""
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    auth = f"{parts.username}:{parts.password}@" if parts.username else ""
    return proxy, parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}").geturl()


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[Rabbit]:
    consumer = Rabbit(amqp_url)
    yield consumer
    consumer.close()


@pytest.fixture
def stream(nats_url: str) -> Iterator[JetStream]:
    made = JetStream(nats_url)
    yield made
    made.close()


def delivered(server: ServeProcess, sub_id: str) -> list[dict[str, Any]]:
    """The broker's deliveries, oldest first."""
    reply = server.get(f"/v1/subscriptions/{sub_id}/deliveries?limit=1000")
    assert reply.status_code == 200, reply.text
    return list(reversed(reply.json()["deliveries"]))


def all_delivered(server: ServeProcess, sub_id: str) -> list[dict[str, Any]] | None:
    """The broker's deliveries once there is one per commit and all were delivered."""
    found = delivered(server, sub_id)
    done = len(found) == COMMITS and all(d["state"] == "delivered" for d in found)
    return found if done else None


def settled(server: ServeProcess) -> list[dict[str, Any]] | None:
    """The brokers of /v1/status once it counts every delivery delivered (it counts the
    outbox at most once a second)."""
    brokers: list[dict[str, Any]] = server.get("/v1/status").json()["notifications"]["brokers"]
    done = all(b["pending"] == 0 and b["delivered"] == COMMITS for b in brokers)
    return brokers if done else None


def first_of_each(received: list[Received]) -> list[str]:
    """Message ids in the order they first arrived (a broker may hold a repeat)."""
    seen: dict[str, None] = {}
    for message in received:
        assert message.id is not None
        seen.setdefault(message.id, None)
    return list(seen)


@pytest.mark.slow
def test_50_commits_with_the_brokers_cut_and_gitconf_killed_midway_lose_nothing(
    tmp_path: Path, amqp_url: str, nats_url: str, rabbit: Rabbit, stream: JetStream
) -> None:
    amqp_proxy, amqp_via = proxy_to(amqp_url, 5672)
    nats_proxy, nats_via = proxy_to(nats_url, 4222)
    settings = {
        "delivery": {"timeout": 2, "first_backoff": 0.05, "max_backoff": 0.3},
        "brokers": [
            {
                "name": "bus",
                "kind": "amqp",
                "format": "spring-bus",
                "url_env": "BUS_URL",
                "exchange": rabbit.exchange,
                "services": ["search"],
            },
            {
                "name": "events",
                "kind": "nats",
                "format": "cloudevents",
                "url": nats_via,
                "subject": stream.subject,
                "environments": ["staging"],
                "services": ["search"],
            },
        ],
    }
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump(settings))
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    server = ServeProcess(
        repo, tmp_path / "state", config=config, poll_interval=0.05, env={"BUS_URL": amqp_via}
    )
    shas: list[str] = []
    try:
        server.start()
        for n in range(1, COMMITS + 1):
            if n == CUT_AT:
                amqp_proxy.cut()
                nats_proxy.cut()
            if n == KILL_AT:
                server.kill()  # deliveries pending, some of them mid-retry
                server.start()
            if n == RESTORE_AT:
                amqp_proxy.restore()
                nats_proxy.restore()
            # Each commit changes search in every environment: one change set per commit.
            sha = commit_all(repo, f"shards {n}", {"base/search.yaml": f"shards: [s{n}]\n"})
            wait_until(
                lambda sha=sha: (
                    server.get("/v1/config/staging/search").headers.get("X-Gitconf-Revision") == sha
                ),
                what=f"commit {n} served",
            )
            shas.append(sha)

        bus = wait_until(lambda: all_delivered(server, "brk_bus"), 30, what="brk_bus delivered")
        events = wait_until(
            lambda: all_delivered(server, "brk_events"), 30, what="brk_events delivered"
        )
        brokers = wait_until(lambda: settled(server), 5, what="/v1/status: all delivered")
    finally:
        server.stop()
        amqp_proxy.close()
        nats_proxy.close()

    # One event per commit and broker, for each commit, in the order of the commits.
    assert [d["revision"] for d in bus] == shas
    assert [d["revision"] for d in events] == shas
    assert all(d["service"] == "search" for d in bus + events)
    # Some of them failed while the brokers were cut, and were retried.
    assert any(len(d["attempts"]) > 1 for d in bus)
    assert any(len(d["attempts"]) > 1 for d in events)

    # RabbitMQ: every delivered event arrived, first in the order of the commits. RabbitMQ
    # does not de-duplicate; a repeat (a publish whose confirm the cut lost) has the same id.
    received = rabbit.wait_for(COMMITS)
    assert first_of_each(received) == [d["id"] for d in bus]
    assert {json.loads(m.body)["destinationService"] for m in received} == {"search:**"}

    # JetStream: stored exactly once each (Nats-Msg-Id), in the order of the commits.
    stored = stream.wait_for(COMMITS)
    assert stream.count() == COMMITS
    assert [m.id for m in stored] == [d["id"] for d in events]
    assert [json.loads(m.body)["revision"] for m in stored] == shas

    assert [(b["name"], b["delivered"], b["dead"], b["last_error"]) for b in brokers] == [
        ("bus", COMMITS, 0, None),
        ("events", COMMITS, 0, None),
    ]
