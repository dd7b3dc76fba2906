"""How gitconf sits in granian: plain config reads answered on granian's own thread, the rest
of the API on gitconf's request threads.

Granian runs a WSGI app on a pool of "blocking threads", and every request holds one until its
response is complete. A long poll or a compile for `?ref=` must not hold the threads the hot
reads need, yet more threads make the hot reads slower: each request then hands the GIL to
another thread. So gitconf takes granian's request callback itself (granian's WSGI wrapper is
replaced in the worker, see `install`): a plain read is answered at once from prepared bytes; any
other request has its body read on granian's thread (granian's request body can only be read
before the callback returns) and is then run through the Flask app on a thread of gitconf's own
pool, which answers through granian's response handle when done. Granian's pool stays at
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitconf.server.errors import error_body
from gitconf.server.fast import FastReads

__all__ = ["GranianDispatch", "granian_supported", "install"]

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

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
_INTERNAL_ERROR = error_body("internal", "an unexpected error occurred; see the server log")


class GranianDispatch:
    """granian's request callback for gitconf: `dispatch(proto, scope)`."""

    def __init__(self, fast: FastReads, app: WSGIApp, threads: int, max_body: int) -> None:
        self.fast = fast
        self.app = app
        self.max_body = max_body
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="gitconf-request")

    def __call__(self, proto: Any, scope: dict[str, Any]) -> None:
        reply = self.fast.answer(scope)
        if reply is not None:
            proto.response_bytes(reply.status, reply.headers, reply.body)
            return
        environ = _BASE_ENVIRON | scope
        if scope.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in scope:
            # Read here: granian drops the body when this call returns. At most one byte past
            # the limit, for the app to answer 413; a declared length past it is not read.
            declared = scope.get("CONTENT_LENGTH")
            too_long = declared is not None and declared.isdigit() and int(declared) > self.max_body
            body = b"" if too_long else scope["wsgi.input"].read(self.max_body + 1)
            environ["wsgi.input"] = io.BytesIO(body)
        else:
            environ["wsgi.input"] = io.BytesIO(b"")
        self.pool.submit(self._run, proto, environ)

    def _run(self, proto: Any, environ: dict[str, Any]) -> None:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return None

        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers = started
            proto.response_bytes(int(status[:3]), headers, body)
        except Exception:
            log.exception(
                "unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            proto.response_bytes(
                500,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_INTERNAL_ERROR))),
                ],
                _INTERNAL_ERROR,
            )

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
                threading.Thread(target=on_signal, name="gitconf-stopping").start()
                if callable(chained):
                    chained(number, frame)

            signal.signal(signum, handler)
        return worker_signal

    granian_signals.set_sync_signals = set_sync_signals
    _granian_server_module()._wsgi_call_wrap = wrap
    return True
