"""ConfigClient: read a service's config from gitconf, with a disk fallback and a watch thread.

`get()` goes through requests (keep-alive, TLS). The watch's long poll runs on a socket of its
own instead, because a request in flight in requests cannot be interrupted from another
thread: `close()` shuts that socket down, so it returns at once even in the middle of a poll.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import requests

from gitconf.client.changes import Change
from gitconf.client.protocol import (
    MAX_RESPONSE,
    ClientError,
    Endpoint,
    ProtocolError,
    Response,
    ServerError,
    encode_request,
    parse_response,
    request_headers,
)
from gitconf.client.state import ClientOptions, WatchState, describe

__all__ = ["ConfigClient"]

log = logging.getLogger("gitconf.client")

Callback = Callable[[Change], object]


class _Closed(Exception):
    """The client was closed while a request was starting."""


class _Line:
    """The long poll's connection, which another thread may cut."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._cut = False

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            if self._cut:
                raise _Closed
            self._sock = sock

    def exchange(
        self,
        endpoint: Endpoint,
        context: Any,
        request: bytes,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """Send request and read the whole response, the server closing the connection."""
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=connect_timeout)
        try:
            self._hold(sock)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
                self._hold(sock)
            sock.settimeout(read_timeout)
            sock.sendall(request)
            chunks: list[bytes] = []
            size = 0
            while chunk := sock.recv(65536):
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise ProtocolError(f"the response passed {MAX_RESPONSE} bytes")
                chunks.append(chunk)
        finally:
            with self._lock:
                self._sock = None
            sock.close()
        with self._lock:
            if self._cut:
                raise _Closed
        return parse_response(b"".join(chunks))

    def cut(self) -> None:
        """End the exchange in progress, if any, and refuse new ones."""
        with self._lock:
            self._cut = True
            if self._sock is not None:
                # Not connected yet, or already closed: the exchange ends either way.
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)


class ConfigClient(ClientOptions):
    """One (environment, service)'s config from a gitconf server.

    `get()` revalidates with If-None-Match; when the server cannot be reached or answers
    5xx, it returns the last copy (memory, else `cache_dir`) and sets `stale`. `watch()`
    calls callbacks with each change. Thread-safe; `close()` (or `with`) stops the watch.
    """

    def _setup(self) -> None:
        self._session = requests.Session()
        # No proxies, netrc or REQUESTS_CA_BUNDLE from the environment: get() and the watch
        # must reach the server the same way, and the watch's socket connects directly.
        self._session.trust_env = False
        self._session.verify = (self.ca_bundle or True) if self.verify else False
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._line = _Line()
        self._thread: threading.Thread | None = None

    def get(self) -> Any:
        """The config; the cached copy (stale) if the server is down; else ConfigUnavailable."""
        headers = request_headers(self.token, self.instance, self.holder.validator())
        try:
            reply = self._session.get(
                self.url, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return self.holder.fallback(describe(exc))
        response = Response(
            reply.status_code, {k.lower(): v for k, v in reply.headers.items()}, reply.content
        )
        try:
            self.holder.answered(response)
        except (ServerError, ProtocolError) as exc:
            return self.holder.fallback(describe(exc))
        except ClientError as exc:
            raise self.holder.refused(exc) from None
        return self.holder.held()

    def watch(self, callback: Callback, *, wait: float = 60.0) -> None:
        """Call callback(change) on each change, from a background long poll (wait: seconds).

        Changes are reported against the copy held when the watch starts. A callback that
        raises is logged; the watch goes on. Errors back off (full jitter) and recover.
        """
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError(f"{self.url}: this client is closed")
            self._callbacks.append(callback)
            if self._thread is not None:
                return
            state = WatchState(self.holder, self.token, self.instance, wait, self.backoff)
            self._thread = threading.Thread(
                target=self._run,
                args=(state,),
                name=f"gitconf-watch {self.environment}/{self.service}",
                daemon=True,
            )
            self._thread.start()

    def _run(self, state: WatchState) -> None:
        while not self._stop.is_set():
            target, headers, wait = state.request()
            request = encode_request(self.endpoint, target, headers)
            try:
                response = self._line.exchange(
                    self.endpoint, self._context, request, self.timeout, self.timeout + (wait or 0)
                )
            except _Closed:
                return
            except (OSError, ProtocolError) as exc:
                if self._stop.is_set():
                    return
                delay = state.on_error(exc)
            else:
                change, delay = state.on_response(response)
                if change is not None and not self._stop.is_set():
                    self._deliver(change)
            if delay:
                self._stop.wait(delay)

    def _deliver(self, change: Change) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(change)
            except Exception:
                log.exception("%s: a watch callback raised; the watch goes on", self.url)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the watch (cutting a long poll in progress) and release connections."""
        self._stop.set()
        self._line.cut()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._session.close()

    def __enter__(self) -> ConfigClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
