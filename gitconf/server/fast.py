"""The hot read, GET /v1/config/<env>/<service>, answered without Flask.

It answers exactly as the Flask view does (same auth, ETag/304, headers and errors): a read it
has seen before for the served revision is a dict lookup of a ready reply; any other read goes
once through the same ConfigReader as the Flask view, which also makes every error. Requests
it does not own (other routes, ?ref=, ?wait=, other methods) are left to the Flask app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple

from gitconf.metrics import Metrics
from gitconf.release.bucket import instance_name
from gitconf.served import ServedRevision
from gitconf.server.errors import ApiError, error_parts
from gitconf.server.formats import etag_matches, negotiate
from gitconf.server.guard import Guard
from gitconf.server.reads import ConfigReader, Reply

__all__ = ["STATUS_LINES", "FastReads"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_PREFIX = "/v1/config/"
_PREFIX_LEN = len(_PREFIX)
_ROUTE = "/v1/config/<env>/<service>"
STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_SIMPLE_QUERIES = {"": None, "format=json": "json", "format=yaml": "yaml", "format=env": "env"}
# Ready replies and granted reads kept per served revision; past these, reads still work,
# through ConfigReader, so a client inventing headers cannot grow memory.
_MAX_ENTRIES = 20_000
_MAX_GRANTS = 10_000
_MAX_HOSTS = 256  # loopback Host values seen (names, addresses and ports vary)
_MAX_MEMO_BYTES = 64 * 1024 * 1024  # bytes of remembered replies of other routes
_WSGI_HEADERS = {
    "x-gitconf-instance": "HTTP_X_GITCONF_INSTANCE",
    "host": "HTTP_HOST",
    "accept": "HTTP_ACCEPT",
    "authorization": "HTTP_AUTHORIZATION",
    "if-none-match": "HTTP_IF_NONE_MATCH",
}
# Set in the WSGI environ by a view whose 200 depends only on the request's path, query,
# Accept and Authorization and on the served revision (the Spring routes): the host then
# answers the same request from memory until the next publish.
MEMO = "gitconf.memo"


class _Entry(NamedTuple):
    """A config read resolved for the served revision: its replies, made once."""

    env: str
    service: str
    etag: str
    ok: Reply
    not_modified: Reply
    head_ok: Reply


class _Cache(NamedTuple):
    served: ServedRevision | None
    # (path, query, Accept) -> entry
    entries: dict[tuple[str, str, str | None], _Entry]
    # (Authorization, environment, service) a token was found to grant, for the tokens as
    # they were at auth_generation (a rotated or expired token starts them afresh).
    grants: set[tuple[str | None, str, str]]
    # (path, query, Accept, Authorization) -> a reply of another route remembered (MEMO)
    memo: dict[tuple[str, str, str | None, str | None], _Entry]
    memo_bytes: list[int]
    auth_generation: int


def _entry(env: str, service: str, ok: Reply) -> _Entry:
    """The replies of one read made from its 200: the 304 keeps the headers but the body's."""
    kept = [(k, v) for k, v in ok.headers if k not in ("Content-Type", "Content-Length")]
    etag = dict(ok.headers)["ETag"]
    return _Entry(env, service, etag, ok, Reply(304, kept, b""), Reply(200, ok.headers, b""))


def _owned(path: str, query: str) -> tuple[str, str] | None:
    """(environment, service) of a read this path answers; None for any other request."""
    if not path.startswith(_PREFIX) or query not in _SIMPLE_QUERIES:
        return None
    env, sep, service = path[_PREFIX_LEN:].partition("/")
    if not sep or not env or not service or "/" in service:
        return None
    return env, service


class FastReads:
    """WSGI middleware: serve plain config reads directly, pass everything else on."""

    def __init__(
        self, reader: ConfigReader, metrics: Metrics, app: WSGIApp, guard: Guard | None = None
    ) -> None:
        self.reader = reader
        self._auth = reader.auth
        self.app = app
        self.guard = guard if guard is not None else Guard.of(reader.auth.enabled)
        self._metrics = metrics
        # Without tokens only loopback Host values are answered: the ones found so, so that
        # the check is a set lookup on the hot path (the cache below is not keyed by Host).
        self._loopback_only = self.guard.loopback_only
        self._hosts: set[str] = set()
        self._cache = _Cache(None, {}, set(), {}, [0], -1)
        # Requests counted per thread (by thread id, which a new thread may reuse) without a
        # lock, added to the Prometheus counter on scrape.
        self._tallies: dict[int, dict[int, int]] = {}
        self._synced: dict[int, int] = {}
        self._sync_lock = threading.Lock()
        metrics.before_scrape.append(self.sync_metrics)
        # Told of each read refused for its token (401, 403): the audit log (gitconf.audit),
        # with (error, method, path, Authorization); it answers the request id to send.
        self.on_refused: Callable[[ApiError, str, str, str | None], str] | None = None

    def answer(self, environ: Mapping[str, Any]) -> Reply | None:
        """The reply to a plain config read in a WSGI environ; None for any other request."""

        def header(name: str) -> Any:
            return environ.get(_WSGI_HEADERS[name])

        return self.lookup(
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            header,
        )

    def lookup(
        self,
        method: str,
        path: str,
        query: str,
        header: Callable[[str], str | None],
        authority: str | None = None,
    ) -> Reply | None:
        """The reply to a plain config read; None for any other request.

        header(name) gives a request header by its lower-case name (the RSGI host passes its
        scope's headers.get, so a header is looked up only when needed); authority is
        HTTP/2's :authority, the Host of a request without a Host header.
        """
        if method != "GET" and method != "HEAD":
            return None
        if self._loopback_only:
            host = header("host") or authority
            if host is not None and host not in self._hosts:
                refused = self.guard.misdirected(host)
                if refused is not None:
                    return self._refuse(path, query, refused, method == "HEAD")
                if len(self._hosts) >= _MAX_HOSTS:
                    self._hosts.clear()
                self._hosts.add(host)
        cache = self._cache
        served = self.reader.publisher.served
        generation = self._auth.current()
        if cache.served is not served or cache.auth_generation != generation:
            cache = self._cache = _Cache(served, {}, set(), {}, [0], generation)
        key = (path, query, header("accept"))
        entry = cache.entries.get(key)
        if (
            entry is not None
            and (header("authorization"), entry.env, entry.service) in cache.grants
        ):
            inm = header("if-none-match")
            if inm is None or (inm != entry.etag and not etag_matches(inm, entry.etag)):
                reply = entry.head_ok if method == "HEAD" else entry.ok
            else:
                reply = entry.not_modified
            self._count(reply.status)
            return reply
        if entry is None and cache.memo:
            memo = cache.memo.get((path, query, key[2], header("authorization")))
            if memo is not None:
                inm = header("if-none-match")
                if inm is None or (inm != memo.etag and not etag_matches(inm, memo.etag)):
                    reply = memo.head_ok if method == "HEAD" else memo.ok
                else:
                    reply = memo.not_modified
                self._count(reply.status)
                return reply
        return self._resolve(header, key, cache, method == "HEAD")

    def memorize(
        self,
        environ: Mapping[str, Any],
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        """Remember the 200 of a view that asked for it (MEMO) for the served revision."""
        cache = self._cache
        served = cache.served
        if status != 200 or served is None or served is not self.reader.publisher.served:
            return
        found = dict(headers)
        etag = found.get("ETag")
        if etag is None or found.get("X-Gitconf-Revision") != served.revision:
            return  # made from another revision than the one served now
        if cache.memo_bytes[0] + len(body) > _MAX_MEMO_BYTES or len(cache.memo) >= _MAX_ENTRIES:
            return
        cache.memo_bytes[0] += len(body)
        key = (
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_AUTHORIZATION"),
        )
        cache.memo[key] = _entry("", "", Reply(200, headers, body))

    def _refuse(self, path: str, query: str, exc: ApiError, head: bool) -> Reply | None:
        """A refusal of a read this path owns; None for the others, which Flask refuses."""
        if _owned(path, query) is None:
            return None
        status, headers, body = error_parts(exc)
        self._count(status)
        return Reply(status, headers, b"" if head else body)

    def _resolve(
        self,
        header: Callable[[str], str | None],
        key: tuple[str, str, str | None],
        cache: _Cache,
        head: bool,
    ) -> Reply | None:
        """A read not seen before: through ConfigReader; remember it if it succeeded."""
        path, query, accept = key
        owned = _owned(path, query)
        if owned is None:
            return None
        env, service = owned
        authorization = header("authorization")
        try:
            fmt = negotiate(_SIMPLE_QUERIES[query], accept)
            reply = self.reader.config(
                env,
                service,
                fmt=fmt,
                if_none_match=header("if-none-match"),
                authorization=authorization,
                instance=instance_name(header("x-gitconf-instance")),
            )
        except ApiError as exc:
            reply = Reply(*error_parts(exc))
            if exc.status in (401, 403) and self.on_refused is not None:
                rid = self.on_refused(exc, "HEAD" if head else "GET", path, authorization)
                reply = Reply(reply.status, [*reply.headers, ("X-Request-Id", rid)], reply.body)
        else:
            self._remember(cache, key, env, service, fmt, authorization)
        self._count(reply.status)
        if head:
            return Reply(reply.status, reply.headers, b"")
        return reply

    def _remember(
        self,
        cache: _Cache,
        key: tuple[str, str, str | None],
        env: str,
        service: str,
        fmt: str,
        authorization: str | None,
    ) -> None:
        served = cache.served
        if served is None or not served.has(env, service) or env in served.live:
            return  # in a rollout, the reply depends on X-Gitconf-Instance: not remembered
        if served.has_secrets(env, service):
            # Its reply depends on the token (plaintext or redacted): remembered per token.
            self._remember_for(cache, key, env, service, fmt, authorization)
            return
        body = served.body(env, service, fmt)
        if body is None:
            return
        # Full means someone is inventing headers: start over rather than stop caching.
        if len(cache.grants) >= _MAX_GRANTS:
            cache.grants.clear()
        cache.grants.add((authorization, env, service))
        if len(cache.entries) >= _MAX_ENTRIES:
            cache.entries.clear()
        revision = served.revision_of(env)
        cache.entries[key] = _entry(env, service, self.reader.reply(200, body, revision))

    def _remember_for(
        self,
        cache: _Cache,
        key: tuple[str, str, str | None],
        env: str,
        service: str,
        fmt: str,
        authorization: str | None,
    ) -> None:
        """Remember the 200 a token gets for a config with secrets (in memo, keyed by it)."""
        try:
            ok = self.reader.config(env, service, fmt=fmt, authorization=authorization)
        except ApiError:
            return
        if ok.status != 200 or len(cache.memo) >= _MAX_ENTRIES:
            return
        cache.memo[(*key, authorization)] = _entry(env, service, ok)

    def count(self, status: int) -> None:
        """Count one request answered outside Flask (metrics: route config, by status)."""
        self._count(status)

    def _count(self, status: int) -> None:
        ident = threading.get_ident()
        tally = self._tallies.get(ident)
        if tally is None:
            with self._sync_lock:
                tally = self._tallies.setdefault(ident, {})
        tally[status] = tally.get(status, 0) + 1

    def sync_metrics(self) -> None:
        """Add the reads counted since the last call to gitconf_http_requests_total."""
        with self._sync_lock:
            totals: dict[int, int] = {}
            for tally in list(self._tallies.values()):
                for status, count in list(tally.items()):
                    totals[status] = totals.get(status, 0) + count
            for status, total in totals.items():
                delta = total - self._synced.get(status, 0)
                if delta:
                    self._metrics.requests.labels(_ROUTE, str(status)).inc(delta)
                    self._synced[status] = total

    def _through(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The app's reply, remembered when the view asked for it (MEMO)."""
        started: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return start_response(status, headers, exc_info)

        result = self.app(environ, start)
        if not environ.get(MEMO):
            return result
        body = b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        if started:
            self.memorize(environ, int(started[0][:3]), started[1], body)
        return [body]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        reply = self.answer(environ)
        if reply is None:
            return self._through(environ, start_response)
        start_response(STATUS_LINES[reply.status], reply.headers)
        return [reply.body]
