"""A real `gitconf serve` for the client tests, and a relay that records what clients send."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from gitconf.testing import make_repo
from gitconf.testing.server import ServeProcess
from tests.conftest import BASE_FILES


class Served(NamedTuple):
    repo: Path
    server: ServeProcess


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server of its own, for a test that kills it."""
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state", poll_interval=0.2) as server:
        yield Served(repo, server)


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the tests that leave it running. Each test that commits changes a config
    no other test reads: staging/payments (test_sync), staging/search (test_aio),
    production-eu/search (test_tls); production/payments never changes."""
    tmp = tmp_path_factory.mktemp("shared")
    repo = make_repo(tmp / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp / "state", poll_interval=0.2) as server:
        yield Served(repo, server)


class Relay:
    """Forwards 127.0.0.1:<port> to a server and keeps the head of every request it relays."""

    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.tls = tls
        self.heads: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        # Each connection's sockets are closed by this thread alone, once both directions are
        # done: a socket closed while another thread still reads it would free its file
        # descriptor number for the next connection while the old reader goes on using it.
        if self.tls is not None:
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except OSError:  # a client that refused our certificate
                client.close()
                return
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
        back.start()
        with contextlib.suppress(OSError):
            self._forward(client, upstream)
        with contextlib.suppress(OSError):  # the client left: so does the request upstream
            upstream.shutdown(socket.SHUT_RDWR)
        back.join()
        client.close()
        upstream.close()

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        while data := client.recv(65536):
            upstream.sendall(data)
            buffer += data
            while b"\r\n\r\n" in buffer:  # GETs only: a head, no body
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                line, *fields = head.decode("latin-1").split("\r\n")
                doc = {"request-line": line}
                doc.update((k.lower(), v.strip()) for k, _, v in (f.partition(":") for f in fields))
                with self.lock:
                    self.heads.append(doc)

    @staticmethod
    def _pipe(upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                client.sendall(data)
        with contextlib.suppress(OSError):  # the server answered and closed: end the client's
            client.shutdown(socket.SHUT_RDWR)  # side too (this wakes _forward's recv)

    def requests(self) -> list[dict[str, str]]:
        with self.lock:
            return list(self.heads)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() of _accept
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture
def relay(shared: Served) -> Iterator[Relay]:
    relay = Relay(shared.server.port)
    yield relay
    relay.close()
