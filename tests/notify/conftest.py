"""Servers with fast delivery settings, real receivers on 127.0.0.1, and helpers to drive them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitconf.bootstrap import Server
from gitconf.notify.notifier import Notifier
from gitconf.testing import commit_all
from gitconf.testing.server import wait_until
from tests.notify.receiver import Receiver, Responder

# Fast retries, so a test of several failures takes a fraction of a second.
FAST = {"timeout": 2, "first_backoff": 0.05, "max_backoff": 0.2, "max_age": 60, "concurrency": 4}


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def factory(respond: Responder | None = None) -> Receiver:
        receiver = Receiver(respond).start()
        made.append(receiver)
        return receiver

    yield factory
    for receiver in made:
        receiver.stop()


@pytest.fixture
def notify_server(
    repo: Path, make_server: Callable[..., Server]
) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def factory(environ: dict[str, str] | None = None, **options: Any) -> Server:
        options["delivery"] = {**FAST, **options.get("delivery", {})}
        server = make_server(repo, environ, **options)
        assert server.poller.run_once() == "published"
        made.append(server)
        return server

    yield factory
    for server in made:
        notifier_of(server).stop()


@pytest.fixture
def server(notify_server: Callable[..., Server]) -> Server:
    return notify_server()


@pytest.fixture
def client(server: Server) -> Any:
    return server.app.test_client()


def notifier_of(server: Server) -> Notifier:
    """The server's notifier."""
    found: Notifier = server.notifier
    return found


def subscribe(client: Any, url: str, **body: Any) -> dict[str, Any]:
    """POST a subscription; its 201 body."""
    response = client.post("/v1/subscriptions", json={"url": url, **body})
    assert response.status_code == 201, response.get_json()
    doc: dict[str, Any] = response.get_json()
    return doc


def publish(server: Server, repo: Path, files: dict[str, str | bytes | None]) -> str:
    """Commit files and poll once; the new revision."""
    sha = commit_all(repo, "change", files)
    assert server.poller.run_once() == "published"
    return sha


def deliver_until(server: Server, condition: Callable[[], Any], timeout: float = 10) -> Any:
    """Run the worker in this thread until condition holds."""
    worker = notifier_of(server).worker

    def step() -> Any:
        worker.deliver_due()
        return condition()

    return wait_until(step, timeout, interval=0.01, what=condition)


def deliveries(client: Any, sub_id: str) -> list[dict[str, Any]]:
    """The subscription's deliveries from the API."""
    response = client.get(f"/v1/subscriptions/{sub_id}/deliveries")
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.get_json()["deliveries"]
    return found
