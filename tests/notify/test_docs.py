"""The reference receiver of the README, run as written against a real server."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from gitconf.bootstrap import Server
from gitconf.testing.server import free_port
from tests.notify.conftest import deliver_until, publish, subscribe

DOC = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[..., str]]:
    """Serve a WSGI app over real HTTP on 127.0.0.1 (werkzeug's server: tests only)."""
    servers: list[BaseWSGIServer] = []

    def start(app: Any, port: int = 0) -> str:
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def reference_receiver() -> str:
    """The first Python block of the README's Notifications section."""
    section = DOC.read_text().split("\n## Notifications\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Notifications section has no Python block"
    return match.group(1)


def test_the_reference_receiver_verifies_and_fetches(
    notify_server: Callable[..., Server],
    repo: Path,
    serve_wsgi: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    # fetch_url must reach the server: that is what public_url is for.
    server = notify_server(public_url=f"http://127.0.0.1:{port}")
    base = serve_wsgi(server.wsgi, port)
    client = server.app.test_client()
    secret = subscribe(client, "http://127.0.0.1:9/placeholder")["secret"]  # a secret to use
    monkeypatch.setenv("GITCONF_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(compile(reference_receiver(), str(DOC), "exec"), namespace)
    url = serve_wsgi(namespace["app"]) + "/hooks/config"
    subscribe(client, url, secret=secret, environments=["staging"], services=["payments"])

    publish(server, repo, {"base/payments.yaml": "db: {host: db2, port: 5432}\n"})
    fetch = f"{base}/v1/config/staging/payments"
    deliver_until(server, lambda: fetch in namespace["configs"])
    assert namespace["configs"][fetch]["db"]["host"] == "db2"
    assert namespace["etags"][fetch] == client.get("/v1/config/staging/payments").headers["ETag"]
    assert len(namespace["handled"]) == 1

    forged = (
        namespace["app"]
        .test_client()
        .post(
            "/hooks/config",
            data=b"{}",
            headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
    )
    assert forged.status_code == 401
