"""Consumers on real brokers for tests and benchmarks: a RabbitMQ queue, a JetStream stream.

Each one uses names of its own (a uuid), so tests can share a broker, and deletes what it
made when closed. They need the clients of `gitconf[amqp]` and `gitconf[nats]`.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import nats
import pika
from nats.aio.msg import Msg

__all__ = ["JetStream", "NatsSubscriber", "Rabbit", "Received", "unique"]

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Received(NamedTuple):
    """One message as a consumer got it."""

    id: str | None  # AMQP message_id, NATS Nats-Msg-Id
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]  # AMQP: content_type, delivery_mode, ...; NATS: subject
    at: float  # time.perf_counter() when it was taken off the broker


class Rabbit:
    """A topic exchange declared as Spring Cloud Stream's binder does (durable topic), and an
    exclusive queue bound to it with `#`, as each Spring app's anonymous queue is."""

    def __init__(self, url: str, exchange: str | None = None, *, declare: bool = True) -> None:
        self.url = url
        self.exchange = exchange or unique("gitconf-test")
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.queue: str | None = None
        self.received: list[Received] = []
        if declare:
            self.declare()

    def declare(self) -> None:
        """Declare the exchange (durable topic) and bind a queue to it with `#`."""
        self.channel.exchange_declare(
            self.exchange, exchange_type="topic", durable=True, auto_delete=False
        )
        self.bind()

    def bind(self) -> None:
        """An exclusive queue bound with `#` to the exchange (which must exist)."""
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, self.exchange, "#")

    def drain(self) -> list[Received]:
        """Take every message waiting in the queue; all received so far."""
        assert self.queue is not None
        while True:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.received
            self.received.append(
                Received(
                    props.message_id,
                    body,
                    dict(props.headers or {}),
                    {
                        "content_type": props.content_type,
                        "delivery_mode": props.delivery_mode,
                        "app_id": props.app_id,
                        "routing_key": method.routing_key,
                        "exchange": method.exchange,
                    },
                    time.perf_counter(),
                )
            )

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Messages until count distinct ids arrived; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while len({r.id for r in self.drain()}) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.received)} message(s) on {self.exchange!r}, expected {count}"
                )
            self.connection.process_data_events(time_limit=0.01)
        return self.received

    def close(self) -> None:
        """Delete the exchange (the queue goes with the connection)."""
        try:
            self.channel.exchange_delete(self.exchange)
        finally:
            self.connection.close()


class _Loop:
    """An event loop on a thread, for the asyncio NATS client from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class JetStream:
    """A JetStream stream of its own that captures one subject of its own."""

    def __init__(self, url: str, subject: str | None = None, *, create: bool = True) -> None:
        self.url = url
        self.subject = subject or unique("gitconf.test").replace("-", ".")
        self.stream = unique("GITCONF_TEST").replace("-", "_")
        self._loop = _Loop()
        self._nc = self._loop.run(nats.connect(url))
        self._js = self._nc.jetstream()
        self.created = False
        if create:
            self.create()

    def create(self) -> None:
        """Make the stream (a duplicate window of 2 minutes, JetStream's default)."""
        self._loop.run(self._js.add_stream(name=self.stream, subjects=[self.subject]))
        self.created = True

    def count(self) -> int:
        """Messages stored in the stream."""
        info = self._loop.run(self._js.stream_info(self.stream))
        return int(info.state.messages)

    def messages(self) -> list[Received]:
        """Every message in the stream, in order."""
        out = []
        for seq in range(1, self.count() + 1):
            msg = self._loop.run(self._js.get_msg(self.stream, seq))
            headers = dict(msg.headers or {})
            out.append(
                Received(
                    headers.get("Nats-Msg-Id"),
                    msg.data or b"",
                    headers,
                    {"subject": msg.subject, "seq": msg.seq},
                    time.perf_counter(),
                )
            )
        return out

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once the stream holds count; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.count()} message(s) in {self.stream}, expected {count}"
                )
            time.sleep(0.01)
        return self.messages()

    def close(self) -> None:
        """Delete the stream and disconnect."""
        try:
            if self.created:
                self._loop.run(self._js.delete_stream(self.stream))
            self._loop.run(self._nc.close())
        finally:
            self._loop.stop()


class NatsSubscriber:
    """A plain NATS subscription to a subject, collecting what arrives."""

    def __init__(self, url: str, subject: str | None = None) -> None:
        self.subject = subject or unique("gitconf.test").replace("-", ".")
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self._loop = _Loop()
        self._nc = self._loop.run(nats.connect(url))
        self._loop.run(self._subscribe(self._on_message))

    async def _subscribe(self, callback: Callable[[Msg], Awaitable[None]]) -> None:
        await self._nc.subscribe(self.subject, cb=callback)
        await self._nc.flush()

    async def _on_message(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        with self.arrived:
            self.received.append(
                Received(
                    headers.get("Nats-Msg-Id"),
                    msg.data,
                    headers,
                    {"subject": msg.subject},
                    time.perf_counter(),
                )
            )
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once count arrived; AssertionError after timeout."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} message(s), expected {count}")
            return list(self.received)

    def close(self) -> None:
        """Disconnect."""
        try:
            self._loop.run(self._nc.close())
        finally:
            self._loop.stop()
