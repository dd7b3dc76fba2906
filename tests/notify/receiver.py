"""A real webhook receiver on 127.0.0.1 for tests and the benchmark: records, then answers.

`respond(n, request)` scripts the answer to the n-th request (0-based): a Reply, DROP to
close the connection without an answer, or a threading.Event to wait on first (a slow or
hanging subscriber) followed by the default 204.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook

from gitconf.package_data import own_schema

__all__ = ["DROP", "Received", "Receiver", "Reply", "fail_first", "verify"]

CLOUDEVENTS_REQUIRED = ("id", "source", "specversion", "type")


class Reply(NamedTuple):
    """An answer: status, headers, body."""

    status: int = 204
    headers: Mapping[str, str] = MappingProxyType({})
    body: bytes = b""


DROP = Reply(-1)
OK = Reply(204)


class Received(NamedTuple):
    """One request as it arrived, and the status it was answered with (-1: dropped)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        """The JSON body."""
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


Responder = Callable[[int, Received], "Reply | threading.Event"]


BOOM = Reply(500, {}, b"boom")


def fail_first(n: int, reply: Reply = BOOM) -> Responder:
    """Answer the first n requests with reply, then 204."""
    return lambda i, _req: reply if i < n else OK


class Receiver:
    """A threaded HTTP/1.1 server with keep-alive; every request is kept in `received`."""

    def __init__(self, respond: Responder | None = None, *, record_bodies: bool = True) -> None:
        self.respond: Responder = respond or (lambda _i, _r: OK)
        self.record_bodies = record_bodies
        self.received: list[Received] = []
        self.count = 0
        self.ok = 0  # requests answered with a 2xx
        self._lock = threading.Lock()
        self._released: list[threading.Event] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    index = receiver.count
                    receiver.count += 1
                pending = Received("POST", self.path, headers, body, 0)
                answer = receiver.respond(index, pending)
                if isinstance(answer, threading.Event):
                    receiver._released.append(answer)
                    answer.wait(30)
                    answer = OK
                receiver._record(pending._replace(status=answer.status))
                if answer.status < 0:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _record(self, received: Received) -> None:
        if not self.record_bodies:
            received = received._replace(body=received.body[:0])
        with self._lock:
            self.received.append(received)
            self.ok += 200 <= received.status < 300

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> Receiver:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop."""
        for event in self._released:
            event.set()
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def verify(received: Received, secret: str) -> dict[str, Any]:
    """Check one delivery as a subscriber would; the event.

    The signature with the real `standardwebhooks` library, the body against the CloudEvents
    1.0 required attributes and gitconf's schemas/event.schema.json.
    """
    assert received.headers["content-type"] == "application/cloudevents+json"
    event: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    for attribute in CLOUDEVENTS_REQUIRED:
        assert isinstance(event.get(attribute), str) and event[attribute], attribute
    assert event["specversion"] == "1.0"
    assert received.headers["webhook-id"] == event["id"]
    Draft202012Validator(own_schema("event")).validate(event)
    return event
