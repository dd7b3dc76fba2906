"""Brokers as subscribers of the outbox, from a real Server to the machine's RabbitMQ and NATS.

One event per changed service for Spring Cloud Bus, one per changed config for CloudEvents;
durable, retried in order while the broker is down, visible in /v1/status and /metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gitconf.bootstrap import Server
from gitconf.brokers.spec import from_settings
from gitconf.clock import utcnow
from gitconf.settings import load_settings
from gitconf.store.deliveries import Attempt
from gitconf.testing.brokers import JetStream, Rabbit
from gitconf.testing.proxy import TcpProxy
from gitconf.testing.server import wait_until
from tests.brokers.conftest import amqp_url, nats_url  # noqa: F401 - fixtures
from tests.notify.conftest import FAST, deliver_until, deliveries, notifier_of, publish

NEW_HOST = {"base/payments.yaml": "db:\n  host: db2.internal\n  port: 5432\n  pool: {max: 10}\n"}


def shards(n: int) -> dict[str, str | bytes | None]:
    return {"base/search.yaml": f"shards: [{', '.join(f's{i}' for i in range(n))}]\n"}


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[Rabbit]:  # noqa: F811
    consumer = Rabbit(amqp_url)
    yield consumer
    consumer.close()


@pytest.fixture
def stream(nats_url: str) -> Iterator[JetStream]:  # noqa: F811
    made = JetStream(nats_url)
    yield made
    made.close()


def spring_bus(url: str, exchange: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "bus",
        "kind": "amqp",
        "format": "spring-bus",
        "url": url,
        "exchange": exchange,
        **extra,
    }


def test_spring_bus_gets_one_refresh_per_changed_service_in_any_environment(
    notify_server: Callable[..., Server],
    repo: Path,
    rabbit: Rabbit,
    amqp_url: str,  # noqa: F811
) -> None:
    server = notify_server(brokers=[spring_bus(amqp_url, rabbit.exchange)])
    client = server.app.test_client()
    # base/payments.yaml: payments changes in staging, production and production-eu.
    sha = publish(server, repo, {**NEW_HOST, **shards(3)})
    deliver_until(server, lambda: len(rabbit.drain()) == 2)
    bodies = sorted(
        (json.loads(r.body) for r in rabbit.received), key=lambda e: e["destinationService"]
    )
    assert [e["destinationService"] for e in bodies] == ["payments:**", "search:**"]
    replica = server.replica.id
    assert {e["originService"] for e in bodies} == {f"gitconf:{replica}"}
    assert {e["type"] for e in bodies} == {"RefreshRemoteApplicationEvent"}
    found = deliveries(client, "brk_bus")
    assert sorted((d["environment"], d["service"], d["revision"], d["state"]) for d in found) == [
        (None, "payments", sha, "delivered"),
        (None, "search", sha, "delivered"),
    ]
    assert {r.id for r in rabbit.received} == {d["id"] for d in found}
    assert all(r.properties["content_type"] == "application/json" for r in rabbit.received)


def test_cloudevents_on_jetstream_get_one_event_per_changed_config(
    notify_server: Callable[..., Server],
    repo: Path,
    stream: JetStream,
    nats_url: str,  # noqa: F811
) -> None:
    broker = {
        "name": "events",
        "kind": "nats",
        "format": "cloudevents",
        "url": nats_url,
        "subject": stream.subject,
        "environments": ["production*"],
    }
    server = notify_server(brokers=[broker])
    sha = publish(server, repo, NEW_HOST)
    got = deliver_until(server, lambda: len(stream.messages()) == 2 and stream.messages())
    assert sorted(m.headers["ce-subject"] for m in got) == [
        "production-eu/payments",
        "production/payments",
    ]
    for message in got:
        data = json.loads(message.body)
        assert (data["revision"], data["service"]) == (sha, "payments")
        assert message.headers["ce-id"] == message.id
        assert message.headers["ce-type"] == "io.gitconf.config.changed"


def test_a_broker_that_is_down_gets_every_change_set_in_order_once_it_is_back(
    notify_server: Callable[..., Server],
    repo: Path,
    rabbit: Rabbit,
    amqp_url: str,  # noqa: F811
) -> None:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    via = amqp_url.replace(
        parts.netloc, f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    )
    try:
        server = notify_server(brokers=[spring_bus(via, rabbit.exchange, services=["search"])])
        client = server.app.test_client()
        proxy.cut()
        shas = [publish(server, repo, shards(n)) for n in (3, 4, 5)]
        deliver_until(server, lambda: any(d["attempts"] for d in deliveries(client, "brk_bus")))
        status = client.get("/v1/status").get_json()
        (section,) = status["notifications"]["brokers"]
        assert section["pending"] == 3 and section["url"] == f"amqp://127.0.0.1:{proxy.port}/"
        assert section["last_error"].startswith(f"broker 'bus' (amqp://127.0.0.1:{proxy.port}/")
        assert parts.password not in json.dumps(status)
        (problem,) = [p for p in status["problems"] if p.get("broker") == "bus"]
        assert problem["code"] == "broker_unavailable"
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'gitconf_broker_pending{broker="bus"} 3.0' in metrics
        assert 'gitconf_broker_messages_total{broker="bus",outcome="retried"}' in metrics

        proxy.restore()
        deliver_until(server, lambda: len(rabbit.drain()) == 3)
        found = sorted(deliveries(client, "brk_bus"), key=lambda d: shas.index(d["revision"]))
        # Every change set, none superseded, sent in the order they were queued.
        assert [d["state"] for d in found] == ["delivered"] * 3
        assert [r.id for r in rabbit.received] == [d["id"] for d in found]
        status = client.get("/v1/status").get_json()
        assert status["notifications"]["brokers"][0]["last_error"] is None
        assert not [p for p in status["problems"] if p.get("broker") == "bus"]
    finally:
        proxy.close()


def test_a_broker_is_listed_with_the_subscriptions_and_cannot_be_deleted_over_the_api(
    notify_server: Callable[..., Server],
) -> None:
    broker = {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "BUS_URL"}
    server = notify_server(
        {"BUS_URL": "amqp://gitconf:hunter2@rabbit.internal:5672/prod"}, brokers=[broker]
    )
    client = server.app.test_client()
    (sub,) = client.get("/v1/subscriptions").get_json()["subscriptions"]
    assert (sub["id"], sub["origin"], sub["name"], sub["url"]) == (
        "brk_bus",
        "broker",
        "bus",
        "amqp://rabbit.internal:5672/prod",
    )
    assert sub["declared_at"] == "server.yaml brokers[0] ('bus')"
    deleted = client.delete("/v1/subscriptions/brk_bus")
    assert deleted.status_code == 409
    assert deleted.get_json()["error"]["code"] == "declared_in_settings"
    assert "hunter2" not in client.get("/v1/status").get_data(as_text=True)


def test_an_unset_url_variable_is_a_problem_and_the_deliveries_wait_with_it(
    notify_server: Callable[..., Server], repo: Path
) -> None:
    broker = {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "BUS_URL"}
    server = notify_server(brokers=[broker])
    client = server.app.test_client()
    publish(server, repo, shards(3))
    deliver_until(server, lambda: deliveries(client, "brk_bus")[0]["attempts"])
    (found,) = deliveries(client, "brk_bus")
    expected = (
        "server.yaml brokers[0] ('bus'): url_env 'BUS_URL' is not set in the server's "
        "environment; set it to the broker's URL and restart gitconf serve"
    )
    assert (found["state"], found["last_error"]) == ("pending", expected)
    (problem,) = client.get("/v1/status").get_json()["problems"]
    assert (problem["code"], problem["message"]) == (
        "broker_config",
        f"{expected}; its deliveries wait",
    )


def test_a_broker_removed_from_the_settings_is_retired_at_start_with_what_it_had_not_received(
    notify_server: Callable[..., Server], make_server: Callable[..., Server], repo: Path
) -> None:
    broker = {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "BUS_URL"}
    first = notify_server(brokers=[broker])
    publish(first, repo, shards(3))
    first.stop()
    second = make_server(repo, delivery=FAST)  # the same state dir, no brokers: any more
    second.start()
    client = second.app.test_client()
    assert client.get("/v1/subscriptions").get_json()["subscriptions"] == []
    assert [d["state"] for d in notifier_of(second).outbox.deliveries("brk_bus")] == ["cancelled"]


@pytest.mark.parametrize(
    ("doc", "heading"),
    [
        ("docs/notifications.md", "## 8. Brokers: RabbitMQ and NATS"),
        ("docs/spring-migration.md", "## Refresh on push: Spring Cloud Bus"),
    ],
)
def test_the_brokers_settings_of_the_docs_are_valid_settings(doc: str, heading: str) -> None:
    text = (Path(__file__).resolve().parents[2] / doc).read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, f"{doc}: no yaml block under {heading!r}"
    settings = load_settings({"repo": "x", **yaml.safe_load(block.group(1))}, environ={})
    assert [s.name for s in from_settings(settings.brokers)] != []


def test_a_lane_waiting_on_an_older_retry_sleeps_until_it_is_due_instead_of_spinning(
    notify_server: Callable[..., Server], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "BUS_URL"}
    server = notify_server(brokers=[broker])
    notifier = notifier_of(server)
    publish(server, repo, shards(3))
    publish(server, repo, shards(4))
    outbox = notifier.outbox
    # The older delivery waits for a retry a minute away; the newer one is due, but may not
    # go before it.
    (older,) = outbox.claim("brk_bus", "test", utcnow(), 1, 30, in_order=True)
    outbox.record(
        older,
        Attempt(utcnow(), None, 1.0, "down"),
        "retry",
        next_at=utcnow() + dt.timedelta(seconds=60),
    )
    claims = []
    claim = outbox.claim

    def counted(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[0])
        return claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "claim", counted)
    notifier.worker.start()
    wait_until(lambda: claims, what="a first claim")
    time.sleep(0.5)  # what is measured is how often the lane claims meanwhile: not a wait
    assert len(claims) == 1, f"{len(claims)} claims in 0.5 s: the lane spins"
    assert [d["state"] for d in deliveries(server.app.test_client(), "brk_bus")] == ["pending"] * 2
