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


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for a module's tests that leave it running; each commits to its own files."""
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
        if self.tls is not None:
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except OSError:  # a client that refused our certificate
                client.close()
                return
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        buffer = b""
        with contextlib.suppress(OSError):  # either side may close first
            self._forward(client, upstream, buffer)

    def _forward(self, client: socket.socket, upstream: socket.socket, buffer: bytes) -> None:
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
        upstream.shutdown(socket.SHUT_WR)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown, not just close: the other thread is blocked in recv on these sockets,
            # and a close alone would not end the connection until that recv returns.
            for sock in (sink, source):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def requests(self) -> list[dict[str, str]]:
        with self.lock:
            return list(self.heads)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relay(shared: Served) -> Iterator[Relay]:
    relay = Relay(shared.server.port)
    yield relay
    relay.close()
