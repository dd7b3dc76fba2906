"""How gitconf sits in granian: its public RSGI interface, on granian's event loop.

- A plain config read (`GET /v1/config/<env>/<service>`) is answered on the loop from bytes
  prepared at publish (gitconf.server.fast), without entering Flask.
- A long poll (`?wait=` with If-None-Match) is an await on the loop (gitconf.server.waits),
  and `GET /v1/watch` a stream on it (gitconf.server.watch): they hold no thread, so one
  server holds `max_waiters` of them.
- Everything else runs through the Flask app on a pool of `threads` threads. Its request body
  is read first, on the loop, asynchronously and bounded (a client sending it slowly holds no
  thread, and every route gets its body: no route has to be declared as taking one).

Only granian's public RSGI names are used: `__rsgi__(scope, protocol)`, `__rsgi_init__`,
`__rsgi_del__`, the protocol's `response_bytes`, `response_stream`, `client_disconnect` and
async iteration over the body.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from gitconf.release.bucket import instance_name
from gitconf.server.auth import may_not_read
from gitconf.server.errors import ApiError, error_parts, internal_error
from gitconf.server.fast import MEMO, FastReads
from gitconf.server.formats import negotiate
from gitconf.server.waits import LongPolls
from gitconf.server.watch import Watch, parse_globs

__all__ = ["DEFAULT_BODY_LIMIT", "GitconfRSGI", "wsgi_environ"]

log = logging.getLogger(__name__)

DEFAULT_BODY_LIMIT = 1024 * 1024  # bytes read of a body; a route refuses larger ones (413)
BODY_TIMEOUT = 30.0  # seconds a client may take to send a body
MAX_BODY_READERS = 256  # bodies read at once; past it, 503
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CONFIG = "/v1/config/"
_BUSY = error_parts(
    ApiError(
        503,
        "busy",
        "too many requests are in progress; retry shortly",
        headers={"Retry-After": "1"},
    )
)
_BODY_TOO_SLOW = error_parts(
    ApiError(408, "body_timeout", f"the request body did not arrive within {BODY_TIMEOUT:g} s")
)
_INTERNAL_ERROR = error_parts(internal_error())
_BASE_ENVIRON: dict[str, Any] = {
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "gitconf (granian RSGI)",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}
_HEADER_NAMES: dict[str, str] = {}


def _wsgi_path(path: str) -> str:
    # RSGI hands the decoded path; WSGI wants its UTF-8 bytes as latin-1 (PEP 3333).
    return path if path.isascii() else path.encode("utf-8", "surrogateescape").decode("latin-1")


def wsgi_environ(scope: Any, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an RSGI request whose body has been read."""
    server_host, _, server_port = str(scope.server).rpartition(":")
    client_host, _, client_port = str(scope.client).rpartition(":")
    environ = dict(_BASE_ENVIRON)
    environ.update(
        REQUEST_METHOD=scope.method,
        PATH_INFO=_wsgi_path(scope.path),
        QUERY_STRING=scope.query_string,
        SERVER_NAME=server_host.strip("[]"),
        SERVER_PORT=server_port,
        SERVER_PROTOCOL=f"HTTP/{scope.http_version}",
        REMOTE_ADDR=client_host.strip("[]"),
        REMOTE_PORT=client_port,
    )
    environ["wsgi.url_scheme"] = scope.scheme
    environ["wsgi.input"] = io.BytesIO(body)
    for name, value in scope.headers.items():
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            if len(_HEADER_NAMES) < 1024:
                _HEADER_NAMES[name] = key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if "HTTP_HOST" not in environ and scope.authority:
        environ["HTTP_HOST"] = scope.authority  # HTTP/2 sends :authority, not Host
    return environ


class GitconfRSGI:
    """granian's RSGI application for one gitconf server."""

    def __init__(
        self,
        fast: FastReads,
        long_polls: LongPolls,
        watch: Watch,
        *,
        threads: int,
        queue: int | None = None,
        body_limits: Mapping[str, int] | None = None,
        on_signal: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.fast = fast
        self.app = fast.app
        self.reader = fast.reader
        self.long_polls = long_polls
        self.watch = watch
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="gitconf-request")
        # Requests running in or waiting for the pool: past this, 503 at once. The queue takes a
        # burst (a fleet of Spring clients asking at once after a publish, before their reply
        # is remembered) without holding a thread.
        self.max_pending = threads + (max(64, 4 * threads) if queue is None else queue)
        self.pending = 0
        self.reading = 0  # bodies being read now
        # Path prefixes whose bodies may be larger than DEFAULT_BODY_LIMIT (the hooks').
        self.body_limits = dict(body_limits or {})
        self._on_signal = on_signal
        self._on_stop = on_stop
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- granian's hooks ------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian in the worker before the first request."""
        self._loop = loop
        self.long_polls.bind(loop)
        self.watch.bind(loop)
        if self._on_signal is not None:
            chain_stop_signals(self._on_signal)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian when the worker stops, after the requests in flight ended."""
        self.pool.shutdown(wait=True)
        if self._on_stop is not None:
            self._on_stop()

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        """One request."""
        if scope.proto != "http":
            return
        headers = scope.headers
        method = scope.method
        path = scope.path
        if not path.isascii():
            path = _wsgi_path(path)
        query = scope.query_string
        reply = self.fast.lookup(method, path, query, headers.get, scope.authority)
        if reply is not None:
            proto.response_bytes(reply.status, reply.headers, reply.body)
            return
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "HTTP_ACCEPT": headers.get("accept"),
            "HTTP_AUTHORIZATION": headers.get("authorization"),
            "HTTP_IF_NONE_MATCH": headers.get("if-none-match"),
            "HTTP_HOST": headers.get("host") or scope.authority,
            "HTTP_X_GITCONF_INSTANCE": instance_name(headers.get("x-gitconf-instance")),
        }
        try:
            if method == "GET" or method == "HEAD":
                if path.startswith(_CONFIG) and "wait=" in query:
                    if await self._long_poll(environ, proto, method == "HEAD"):
                        return
                elif path == "/v1/watch" and method == "GET":
                    await self._watch(environ, headers, proto)
                    return
            await self._through_app(scope, proto, environ, path)
        except ApiError as exc:
            status, reply_headers, body = error_parts(exc)
            if status in (401, 403) and self.fast.on_refused is not None:
                rid = self.fast.on_refused(exc, method, path, headers.get("authorization"))
                reply_headers.append(("X-Request-Id", rid))
            self.fast.count(status)
            proto.response_bytes(status, reply_headers, b"" if method == "HEAD" else body)

    # -- long polls and streams -----------------------------------------------------

    async def _long_poll(self, environ: dict[str, Any], proto: Any, head: bool) -> bool:
        """Answer a long poll on the loop; False if it is a read the Flask app answers."""
        env, sep, service = environ["PATH_INFO"][len(_CONFIG) :].partition("/")
        args = parse_qs(environ["QUERY_STRING"], keep_blank_values=True)
        if not sep or not env or not service or "/" in service or "ref" in args:
            return False  # explain, whole environments, ?ref= (which compiles): Flask's
        if any(len(values) > 1 for values in args.values()) or args.keys() - {"wait", "format"}:
            return False
        self._refuse(environ)
        fmt = negotiate(args["format"][0] if "format" in args else None, environ["HTTP_ACCEPT"])

        def begin() -> Any:
            return self.reader.begin(
                env,
                service,
                fmt=fmt,
                wait=args["wait"][0],
                if_none_match=environ["HTTP_IF_NONE_MATCH"],
                authorization=environ["HTTP_AUTHORIZATION"],
                instance=environ["HTTP_X_GITCONF_INSTANCE"],
            )

        reply = await self.long_polls.serve(begin, proto.client_disconnect)
        if reply is None:  # the client went away: nothing to answer
            return True
        self.fast.count(reply.status)
        proto.response_bytes(reply.status, reply.headers, b"" if head else reply.body)
        return True

    async def _watch(self, environ: dict[str, Any], headers: Any, proto: Any) -> None:
        self._refuse(environ)
        principal = self.reader.principal(environ["HTTP_AUTHORIZATION"])
        args = parse_qs(environ["QUERY_STRING"], keep_blank_values=True)
        unknown = args.keys() - {"environments", "services"}
        if unknown:
            raise ApiError(
                400,
                "bad_query",
                f"unknown parameter {sorted(unknown)[0]!r}; give environments= and services=",
            )
        envs = parse_globs(",".join(args.get("environments", [])), "environments")
        services = parse_globs(",".join(args.get("services", [])), "services")
        plain = [g for g in envs if not any(c in g for c in "*?[")]
        for env in plain:
            if not principal.can_read(env):
                raise may_not_read(principal, env)
        self.fast.count(200)
        await self.watch.serve(
            principal,
            envs,
            services,
            headers.get("last-event-id"),
            proto.response_stream,
            instance=instance_name(headers.get("x-gitconf-instance")),
        )

    def _refuse(self, environ: Mapping[str, Any]) -> None:
        refused = self.fast.guard.refusal(environ)
        if refused is not None:
            raise refused

    # -- the Flask app ------------------------------------------------------------------

    async def _through_app(
        self, scope: Any, proto: Any, environ: dict[str, Any], path: str
    ) -> None:
        full = wsgi_environ(scope, b"")
        # A body the app refuses from the headers alone (gitconf.server.guard) is not waited
        # for. Bodies being read hold no thread; how many may be read at once is bounded.
        if scope.method in _BODY_METHODS and self.fast.guard.refusal(full) is None:
            if self.reading >= MAX_BODY_READERS:
                proto.response_bytes(*_BUSY)
                return
            self.reading += 1
            try:
                body = await self._body(proto, path, scope.headers.get("content-length"))
            except TimeoutError:
                proto.response_bytes(*_BODY_TOO_SLOW)
                return
            finally:
                self.reading -= 1
            full["wsgi.input"] = io.BytesIO(body)
        if self.pending >= self.max_pending:
            proto.response_bytes(*_BUSY)
            return
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            status, headers, data = await loop.run_in_executor(self.pool, self._call, full)
            proto.response_bytes(status, headers, data)
            if full.get(MEMO):
                self.fast.memorize(full, status, headers, data)
        finally:
            self.pending -= 1

    async def _body(self, proto: Any, path: str, declared: str | None) -> bytes:
        """The body, at most the route's limit + 1 bytes (the route answers 413 past it)."""
        limit = DEFAULT_BODY_LIMIT
        for prefix, value in self.body_limits.items():
            if path.startswith(prefix):
                limit = max(limit, value)
        if declared and declared.isdigit() and int(declared) > limit:
            return b""  # refused from Content-Length alone
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in proto:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
        return b"".join(chunks)

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run the WSGI app in a pool thread; its whole reply."""
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
            result: Iterable[bytes] = self.app(environ, start_response)
            try:
                body = b"".join([*written, *result])
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers = started
            return int(status[:3]), headers, body
        except BaseException:
            log.exception(
                "unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            status, headers, body = _INTERNAL_ERROR
            return status, headers, body


def chain_stop_signals(on_signal: Callable[[], None]) -> None:
    """Call on_signal (in a thread of its own) on SIGTERM and SIGINT, then what was there.

    granian stops a worker by letting the requests in flight finish; long polls and streams
    would keep it waiting, so on_signal ends them. granian's own handling keeps working: it
    is woken through the event loop's signal file descriptor, which a Python-level handler
    installed over it does not replace. Call in the worker's main thread.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        chained = signal.getsignal(signum)

        def handler(number: int, frame: Any, chained: Any = chained) -> None:
            try:
                threading.Thread(target=on_signal, name="gitconf-stopping").start()
            finally:
                if callable(chained):
                    chained(number, frame)

        signal.signal(signum, handler)
