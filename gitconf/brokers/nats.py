"""NATS with nats-py: JetStream when a stream captures the subject, plain NATS otherwise.

nats-py is asyncio: each NatsBroker runs a private event loop on a thread of its own, and
send() hands it one publish at a time and waits for the answer.

- A stream captures the subject: `js.publish` with a `Nats-Msg-Id` header (the event id),
  done when the stream's ack comes back. JetStream drops a second message with the same id
  within the stream's duplicate window, so a publish retried after a lost ack is stored once.
- No stream does: a plain publish, done once a flush (PING/PONG) shows the server has it.

Which it is, is looked up when connecting and again every STREAM_RECHECK seconds, so a
stream made later is used from then on. The client does not keep reconnecting by itself: a
failed publish closes the connection, the delivery is retried with the outbox's backoff,
and the next try connects again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from urllib.parse import unquote, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from gitconf.brokers import cloudevents
from gitconf.brokers.message import BrokerUnavailable, Message
from gitconf.brokers.spec import redact

__all__ = ["NatsBroker"]

log = logging.getLogger(__name__)

STREAM_RECHECK = 30.0  # seconds between looks for a stream that captures the subject
_NO_STREAM = (
    nats.js.errors.NotFoundError,  # JetStream is on, and no stream has the subject
    nats.js.errors.ServiceUnavailableError,  # the server has JetStream off
    nats.errors.NoRespondersError,  # ... or does not know of it
)
_FAILURES = (nats.errors.Error, asyncio.TimeoutError, OSError)


class NatsBroker:
    """Publishes to one subject of one NATS server (or cluster)."""

    def __init__(
        self,
        url: str,
        *,
        subject: str,
        timeout: float = 10.0,
        name: str = "nats",
        stream_recheck: float = STREAM_RECHECK,
    ) -> None:
        self.url = url
        self.stream_recheck = stream_recheck
        self.subject = subject
        self.timeout = timeout
        self.name = name
        self.where = f"broker {name!r} ({redact(url)}, subject {subject!r})"
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        self._secrets = (password, unquote(password)) if password else ()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stream: str | None = None
        self._looked_at: float | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"gitconf-nats-{name}", daemon=True
        )
        self._thread.start()

    @property
    def stream(self) -> str | None:
        """The JetStream stream that captured the last message, None for plain NATS."""
        return self._stream

    def send(self, message: Message) -> None:
        """Publish; return once JetStream acked it (or the server has it), else raise."""
        if self._closed:
            raise BrokerUnavailable(f"{self.where}: closed (gitconf is stopping)")
        future = asyncio.run_coroutine_threadsafe(self._send(message), self._loop)
        try:
            future.result(2 * self.timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BrokerUnavailable(
                f"{self.where}: no answer within {2 * self.timeout + 1:g}s"
            ) from None
        except concurrent.futures.CancelledError:  # close() ended the loop's tasks
            raise BrokerUnavailable(f"{self.where}: closed (gitconf is stopping)") from None

    def close(self) -> None:
        """Close the connection and stop the event loop's thread."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(self.timeout)
        except Exception as exc:
            log.debug("%s: closing: %s", self.where, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the event loop ---------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        headers = {**cloudevents.nats_headers(message), "Nats-Msg-Id": message.id}
        try:
            nc, js = await self._connected()
            if self._looked_at is None or time.monotonic() - self._looked_at >= self.stream_recheck:
                await self._look_up_stream(js)
            if self._stream is not None:
                await js.publish(self.subject, message.body, timeout=self.timeout, headers=headers)
            else:
                await nc.publish(self.subject, message.body, headers=headers)
                await nc.flush(timeout=math.ceil(self.timeout))
        except _FAILURES as exc:
            await self._disconnect()
            raise BrokerUnavailable(f"{self.where}: {self._describe(exc)}") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # send() gave up waiting and cancelled this publish itself
            # nats-py cancelled a future of its own under the publish: it dropped the
            # connection. That is a failure to retry, not a cancellation to pass on.
            await self._disconnect()
            raise BrokerUnavailable(
                f"{self.where}: the client dropped the connection during the publish"
            ) from None

    async def _connected(self) -> tuple[Client, JetStreamContext]:
        if self._nc is not None and self._js is not None and self._nc.is_connected:
            return self._nc, self._js
        await self._disconnect()
        self._nc = await nats.connect(
            self.url,
            name=f"gitconf broker {self.name}",
            connect_timeout=max(1, round(self.timeout)),
            # One try, at once: a first connect fails fast (NoServersError), and a connection
            # lost is either back at once or closed, for the outbox to retry with backoff.
            # (allow_reconnect=False makes nats-py retry a first connect forever.)
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
        )
        self._js = self._nc.jetstream(timeout=self.timeout)
        self._looked_at = None
        return self._nc, self._js

    async def _look_up_stream(self, js: JetStreamContext) -> None:
        try:
            stream: str | None = await js.find_stream_name_by_subject(self.subject)
        except _NO_STREAM:
            stream = None
        if stream != self._stream:
            log.info(
                "%s: %s",
                self.where,
                f"JetStream stream {stream!r} captures it" if stream else "plain NATS (no stream)",
            )
        self._stream = stream
        self._looked_at = time.monotonic()

    async def _shutdown(self) -> None:
        """Close, and let the client's own tasks (a reconnect in progress) end too."""
        await self._disconnect()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception as exc:  # closing a connection that is already dead
                log.debug("%s: closing: %s", self.where, exc)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("%s: %s", self.where, self._describe(exc))

    async def _on_disconnected(self) -> None:
        log.debug("%s: disconnected", self.where)

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
