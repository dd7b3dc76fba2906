"""AmqpBroker on a real RabbitMQ: confirms, persistence, the exchange Spring made, outages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest

from gitconf.brokers import cloudevents, spring_bus
from gitconf.brokers.amqp import AmqpBroker
from gitconf.brokers.message import BrokerUnavailable, Message
from gitconf.testing.brokers import Rabbit, unique
from gitconf.testing.proxy import TcpProxy
from gitconf.testing.server import free_port
from tests.brokers.test_cloudevents import EVENT
from tests.brokers.test_spring_bus import EVENT_ID, GOLDEN


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[Rabbit]:
    consumer = Rabbit(amqp_url)
    yield consumer
    consumer.close()


def broker(url: str, exchange: str, **options: object) -> AmqpBroker:
    options = {"routing_key": exchange, "timeout": 3.0, "name": "bus", **options}
    return AmqpBroker(url, exchange=exchange, **options)  # type: ignore[arg-type]


def test_a_spring_bus_event_reaches_a_queue_bound_with_hash_persistent_and_confirmed(
    amqp_url: str, rabbit: Rabbit
) -> None:
    # The consumer declared the exchange as Spring Cloud Stream does: gitconf's passive
    # declare finds it, and no 406 PRECONDITION_FAILED closes anything.
    sender = broker(amqp_url, rabbit.exchange)
    try:
        sender.send(spring_bus.message(EVENT_ID, GOLDEN))
    finally:
        sender.close()
    (got,) = rabbit.wait_for(1)
    assert got.id == EVENT_ID
    assert got.body == GOLDEN
    assert got.properties == {
        "content_type": "application/json",
        "delivery_mode": 2,
        "app_id": "gitconf",
        "routing_key": rabbit.exchange,
        "exchange": rabbit.exchange,
    }
    assert got.headers == {}


def test_a_missing_exchange_is_declared_a_durable_topic_exchange(amqp_url: str) -> None:
    exchange = unique("gitconf-test")
    sender = broker(amqp_url, exchange)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        sender.send(Message("evt_1", b"{}"))
        channel = connection.channel()
        channel.exchange_declare(exchange, passive=True)  # it exists now
        # The same arguments as Spring's binder are accepted; anything else is a 406.
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        for kind, durable in (("fanout", True), ("topic", False)):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                connection.channel().exchange_declare(exchange, exchange_type=kind, durable=durable)
            assert refused.value.reply_code == 406
    finally:
        sender.close()
        connection.channel().exchange_delete(exchange)
        connection.close()


def test_a_cloudevent_carries_its_attributes_as_cloudevents_headers(
    amqp_url: str, rabbit: Rabbit
) -> None:
    sender = broker(amqp_url, rabbit.exchange, routing_key="io.gitconf.config.changed")
    try:
        sender.send(cloudevents.message(EVENT))
    finally:
        sender.close()
    (got,) = rabbit.wait_for(1)
    assert json.loads(got.body) == EVENT["data"]
    assert got.properties["content_type"] == "application/json"
    assert got.properties["routing_key"] == "io.gitconf.config.changed"
    assert got.headers["cloudEvents:type"] == "io.gitconf.config.changed"
    assert got.headers["cloudEvents:subject"] == "production/payments"
    assert got.headers["cloudEvents:id"] == got.id == EVENT["id"]


def test_a_broker_that_is_down_is_a_retriable_error_that_never_shows_the_password(
    amqp_url: str,
) -> None:
    port = free_port()
    sender = AmqpBroker(
        f"amqp://gitconf:hunter2-secret@127.0.0.1:{port}/",
        exchange="springCloudBus",
        routing_key="springCloudBus",
        timeout=2.0,
        name="bus",
    )
    try:
        with pytest.raises(BrokerUnavailable) as down:
            sender.send(Message("evt_1", b"{}"))
    finally:
        sender.close()
    assert str(down.value).startswith(
        f"broker 'bus' (amqp://127.0.0.1:{port}/, exchange 'springCloudBus'): "
        "ConnectionRefusedError"
    )
    assert "hunter2" not in str(down.value)


def test_a_refused_login_is_a_retriable_error_that_never_shows_the_password(
    amqp_url: str,
) -> None:
    parts = urlsplit(amqp_url)
    wrong = f"amqp://gitconf-nobody:hunter2-secret@{parts.hostname}:{parts.port or 5672}/"
    sender = AmqpBroker(wrong, exchange="x", routing_key="x", timeout=3.0, name="bus")
    try:
        with pytest.raises(BrokerUnavailable) as refused:
            sender.send(Message("evt_1", b"{}"))
    finally:
        sender.close()
    assert "ACCESS_REFUSED" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_a_cut_connection_fails_the_send_and_the_next_send_reconnects(
    amqp_url: str, rabbit: Rabbit
) -> None:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    via = amqp_url.replace(
        parts.netloc, f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    )
    sender = broker(via, rabbit.exchange)
    try:
        sender.send(Message("evt_1", b"{}"))
        proxy.cut()
        with pytest.raises(BrokerUnavailable):
            sender.send(Message("evt_2", b"{}"))
        proxy.restore()
        sender.send(Message("evt_2", b"{}"))
    finally:
        sender.close()
        proxy.close()
    assert sorted({r.id for r in rabbit.wait_for(2)}) == ["evt_1", "evt_2"]
