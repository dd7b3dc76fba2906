"""How gitconf sits in granian: plain config reads answered on granian's own thread, the rest
of the API on gitconf's request threads.

Granian runs a WSGI app on a pool of "blocking threads", and every request holds one until its
response is complete. A long poll or a compile for `?ref=` must not hold the threads the hot
reads need, yet more threads make the hot reads slower: each request then hands the GIL to
another thread. So gitconf takes granian's request callback itself (granian's WSGI wrapper is
replaced in the worker, see `install`): a plain read is answered at once from prepared bytes; any
other request runs through the Flask app on a thread of gitconf's own pool, which answers
through granian's response handle when done. A request body has to be read on granian's thread
(granian drops a body nobody has started reading when the callback returns, and waits for one
being read), so only routes that take one (BodyRoute) get it read, and only for callers those
routes admit from the headers alone. Granian's pool stays at
`io_threads` (two by default) whatever the long polls and slow requests do.

Granian offers no public interface for this: the callback signature `(proto, scope)` and
`proto.response_bytes(status, headers, body)` are its internals. `install` checks for them and
returns False when they are missing, and the caller then serves through plain WSGI with a
thread per request, as any WSGI server would (slower, but the same answers).
"""

from __future__ import annotations

import io
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from gitconf.server.errors import ApiError, error_parts, internal_error
from gitconf.server.fast import FastReads

__all__ = ["BodyRoute", "GranianDispatch", "granian_supported", "install"]

log = logging.getLogger(__name__)

_BASE_ENVIRON: dict[str, Any] = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "gitconf (granian)",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}
_INTERNAL_ERROR = error_parts(internal_error())
_BUSY = error_parts(
    ApiError(
        503,
        "busy",
        "too many requests are in progress; retry shortly",
        headers={"Retry-After": "1"},
    )
)


class BodyRoute(NamedTuple):
    """A route that takes a request body: only these have one read, and only when admit says
    so from the request's headers (a token, a configured provider). A body is read on an io
    thread, which a client sending it slowly holds, so nobody else gets to send one."""

    method: str
    path: str  # the path, or a prefix ending in "/"
    limit: int  # bytes; one more is read, for the route to answer 413
    admit: Callable[[Mapping[str, Any]], bool]

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is for this route."""
        if method != self.method:
            return False
        return path == self.path or (self.path.endswith("/") and path.startswith(self.path))


class GranianDispatch:
    """granian's request callback for gitconf: `dispatch(proto, scope)`.

    Plain reads are fast's; everything else goes to the app behind it (fast.app).
    """

    def __init__(
        self,
        fast: FastReads,
        threads: int,
        body_routes: Iterable[BodyRoute] = (),
        queue: int | None = None,
    ) -> None:
        self.fast = fast
        self.body_routes = tuple(body_routes)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="gitconf-request")
        # Requests running or waiting for a thread: past this, 503 at once, so a busy pool
        # does not pile up requests (and their bodies) without end.
        self._slots = threading.BoundedSemaphore(threads + (threads if queue is None else queue))

    def __call__(self, proto: Any, scope: dict[str, Any]) -> None:
        reply = self.fast.answer(scope)
        if reply is not None:
            proto.response_bytes(reply.status, reply.headers, reply.body)
            return
        if not self._slots.acquire(blocking=False):
            proto.response_bytes(*_BUSY)
            return
        try:
            environ = _BASE_ENVIRON | scope
            environ["wsgi.input"] = io.BytesIO(self._body(scope))
            self.pool.submit(self._run, proto, environ)
        except BaseException:
            self._slots.release()
            raise

    def _body(self, scope: Mapping[str, Any]) -> bytes:
        """The request body if its route takes one from this caller, else nothing.

        Read here because granian drops a body nobody has started reading when this callback
        returns. Whatever the headers say (an HTTP/2 body may come with neither a length nor
        chunking), at most limit + 1 bytes; a declared length past the limit is not read.
        """
        method, path = scope.get("REQUEST_METHOD", ""), scope.get("PATH_INFO", "")
        for route in self.body_routes:
            if route.matches(method, path):
                # The app refuses these from their headers alone (gitconf.server.guard).
                if not route.admit(scope) or self.fast.guard.refusal(scope) is not None:
                    return b""
                declared = scope.get("CONTENT_LENGTH") or ""
                if declared.isdigit() and int(declared) > route.limit:
                    return b""
                data: bytes = scope["wsgi.input"].read(route.limit + 1)
                return data
        return b""

    def _run(self, proto: Any, environ: dict[str, Any]) -> None:
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            # Nothing is sent before the app returns, so a later call (with exc_info, as
            # PEP 3333 allows) just replaces the status and headers.
            started[:] = [status, headers]
            return written.append

        try:
            result = self.fast.app(environ, start_response)
            try:
                body = b"".join([*written, *result])
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers = started
            proto.response_bytes(int(status[:3]), headers, body)
        except BaseException:
            log.exception(
                "unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            proto.response_bytes(*_INTERNAL_ERROR)
        finally:
            self._slots.release()

    def stop(self) -> None:
        """Finish the requests in progress and stop the pool."""
        self.pool.shutdown(wait=True)


def _granian_server_module() -> Any:
    from granian.server import Server

    return sys.modules[Server.__module__]


def granian_supported() -> bool:
    """Whether this granian has the request callback and signal set-up `install` replaces."""
    try:
        module = _granian_server_module()
        import granian._signals as granian_signals
    except ImportError:
        return False
    return callable(getattr(module, "_wsgi_call_wrap", None)) and callable(
        getattr(granian_signals, "set_sync_signals", None)
    )


def install(dispatch: GranianDispatch, on_signal: Callable[[], None]) -> bool:
    """Make granian's WSGI worker (in this process) call dispatch for every request, and call
    on_signal (in a thread of its own) when the worker is told to stop.

    Granian stops a worker by letting the requests in flight finish first; on_signal is where
    the ones that would wait on (long polls) are ended. Call this in the worker, before granian
    wraps the app it loaded. False if this granian has no such hooks; nothing is changed then.
    """
    if not granian_supported():
        return False
    import granian._signals as granian_signals

    def wrap(_callback: Any, _scope_opts: Any, _access_log_fmt: Any = None) -> GranianDispatch:
        return dispatch

    granian_set_signals = granian_signals.set_sync_signals

    def set_sync_signals() -> Any:
        worker_signal = granian_set_signals()
        for signum in (signal.SIGINT, signal.SIGTERM):
            chained = signal.getsignal(signum)

            def handler(number: int, frame: Any, chained: Any = chained) -> None:
                try:
                    threading.Thread(target=on_signal, name="gitconf-stopping").start()
                finally:
                    if callable(chained):
                        chained(number, frame)

            signal.signal(signum, handler)
        return worker_signal

    granian_signals.set_sync_signals = set_sync_signals
    _granian_server_module()._wsgi_call_wrap = wrap
    return True
