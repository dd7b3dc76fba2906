"""RabbitMQ (AMQP 0-9-1) with pika: a durable topic exchange, persistent messages, confirms.

pika's BlockingConnection belongs to the thread that uses it and must be serviced now and
then to keep its heartbeats going, so each AmqpBroker has one thread of its own that owns
the connection: it publishes what send() hands it and services the connection while idle;
send() waits (at most `timeout`) for the broker's publisher confirm.

The exchange is looked up first (a passive declare) and declared only if it is missing, as
a durable topic exchange: Spring Cloud Stream's RabbitMQ binder makes `springCloudBus`
exactly so (topic, durable, not auto-delete) and binds each app's queue with `#`, and a
declare with other arguments would close the channel with 406 PRECONDITION_FAILED.

Messages are published without `mandatory`: an exchange with no queue bound (no app
running) drops them, which for a refresh is right; the broker still confirms.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from gitconf.brokers import cloudevents
from gitconf.brokers.message import BrokerUnavailable, Message
from gitconf.brokers.spec import redact

__all__ = ["AmqpBroker"]

log = logging.getLogger(__name__)
# pika logs each failed connect as half a dozen ERROR lines and a traceback; gitconf records
# the failure of each attempt itself, once, in the delivery's attempts and /v1/status.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.CRITICAL)

IDLE_TICK = 1.0  # seconds between services of an idle connection (heartbeats)
PERSISTENT = 2  # AMQP delivery mode: written to disk by a durable queue


class _Job:
    """One message handed to the connection's thread, and what became of it."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.done = threading.Event()
        self.error: BrokerUnavailable | None = None
        self.abandoned = False  # send() gave up waiting: do not publish it late


class AmqpBroker:
    """Publishes to one exchange of one RabbitMQ broker."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str,
        routing_key: str,
        timeout: float = 10.0,
        name: str = "amqp",
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.timeout = timeout
        self.name = name
        self.where = f"broker {name!r} ({redact(url)}, exchange {exchange!r})"
        self._secrets = _passwords(url)
        try:
            params = pika.URLParameters(url)
        except Exception as exc:  # pika says ValueError or KeyError for bad query options
            raise ValueError(f"{self.where}: its URL is not usable: {self._scrub(exc)}") from None
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout
        params.blocked_connection_timeout = timeout
        if "heartbeat" not in _query(url):
            params.heartbeat = 30  # a connection lost without a FIN is noticed within ~60 s
        params.client_properties = {"connection_name": f"gitconf broker {name}"}
        self._params = params
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"gitconf-amqp-{name}", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Publish; return once the broker confirmed, else raise BrokerUnavailable."""
        if self._closed:
            raise BrokerUnavailable(f"{self.where}: closed (gitconf is stopping)")
        job = _Job(message)
        self._jobs.put(job)
        # Connecting and publishing each have the timeout; a little more covers both.
        if not job.done.wait(2 * self.timeout + 1):
            job.abandoned = True
            raise BrokerUnavailable(
                f"{self.where}: no publisher confirm within {2 * self.timeout + 1:g}s"
            )
        if job.error is not None:
            raise job.error

    def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join(self.timeout + 5)

    # -- the connection's thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_TICK if self._connection else None)
            except queue.Empty:
                self._service()
                continue
            if job is None:
                break
            if job.abandoned:
                continue
            job.error = self._publish(job.message)
            job.done.set()
        self._disconnect()

    def _service(self) -> None:
        """Answer heartbeats on an idle connection; forget it if the broker closed it."""
        if self._connection is None:
            return
        try:
            self._connection.process_data_events(time_limit=0)
        except Exception as exc:
            log.info("%s: connection lost while idle: %s", self.where, self._describe(exc))
            self._disconnect()

    def _publish(self, message: Message) -> BrokerUnavailable | None:
        """Publish one message; what went wrong, if anything."""
        properties = pika.BasicProperties(
            content_type=message.content_type,
            delivery_mode=PERSISTENT,
            message_id=message.id,
            app_id="gitconf",
            timestamp=int(time.time()),
            headers=cloudevents.amqp_headers(message) or None,
        )
        # A connection that looked open may be one the broker already dropped: then one
        # more try on a new connection. A publish whose confirm was lost may so arrive
        # twice, with the same message_id (at least once).
        for fresh in (self._connection is None, True):
            try:
                channel = self._open()
                channel.basic_publish(
                    self.exchange, self.routing_key, message.body, properties=properties
                )
                return None
            except pika.exceptions.NackError:
                return BrokerUnavailable(
                    f"{self.where}: the broker refused message {message.id} (a nack: it could "
                    "not write it); see the broker's log"
                )
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._disconnect()
                if fresh:
                    return BrokerUnavailable(f"{self.where}: {self._describe(exc)}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> BlockingChannel:
        """The channel, connecting and finding (or declaring) the exchange first if need be."""
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._disconnect()
        connection = BlockingConnection(self._params)
        try:
            channel = connection.channel()
            try:
                channel.exchange_declare(self.exchange, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                channel = connection.channel()
                channel.exchange_declare(
                    self.exchange, exchange_type="topic", durable=True, auto_delete=False
                )
                log.info("%s: declared the durable topic exchange", self.where)
            channel.confirm_delivery()
        except BaseException:
            _close_quietly(connection)
            raise
        self._connection, self._channel = connection, channel
        return channel

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)

    def _describe(self, exc: BaseException) -> str:
        """What went wrong, from the innermost cause pika wraps, never with the password."""
        return self._scrub(_innermost(exc))

    def _scrub(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _innermost(exc: BaseException) -> BaseException:
    """The socket error under pika's connection-workflow wrappers."""
    seen: Any = exc
    for _ in range(5):
        inner = getattr(seen, "exceptions", None)  # AMQPConnectionWorkflowFailed
        if inner:
            seen = inner[-1]
            continue
        wrapped = getattr(seen, "exception", None)  # AMQPConnector...Error(exception)
        if isinstance(wrapped, BaseException):
            seen = wrapped
            continue
        args = getattr(seen, "args", ())
        if args and isinstance(args[0], BaseException):  # AMQPConnectionError(cause)
            seen = args[0]
            continue
        break
    return seen


def _passwords(url: str) -> tuple[str, ...]:
    """The URL's password as written and decoded, to scrub from any message."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    return (password, unquote(password)) if password else ()


def _query(url: str) -> str:
    try:
        return urlsplit(url).query
    except ValueError:
        return ""


def _close_quietly(connection: BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception as exc:  # closing a connection that is already dead
        log.debug("closing an AMQP connection: %s", exc)
