"""A small WSGI dispatch in front of Flask for the hot read, GET /v1/config/<env>/<service>.

It answers with the same ConfigReader as the Flask view (same auth, ETag/304 and errors),
skipping Flask's routing and request objects, which cost more than the lookup itself.
Anything else, including reads with ?ref= or ?wait=, goes to the Flask app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from gitconf.metrics import Metrics
from gitconf.server.errors import ApiError, error_body
from gitconf.server.reads import ConfigReader, negotiate

__all__ = ["FastReads"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_PREFIX = "/v1/config/"
_ROUTE = "/v1/config/<env>/<service>"
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_SIMPLE_QUERIES = {"": None, "format=json": "json", "format=yaml": "yaml", "format=env": "env"}


class FastReads:
    """WSGI middleware: serve plain config reads directly, pass everything else on."""

    def __init__(self, reader: ConfigReader, metrics: Metrics, app: WSGIApp) -> None:
        self.reader = reader
        self.app = app
        self._counters: dict[int, Any] = {}
        self._metrics = metrics

    def _count(self, status: int) -> None:
        counter = self._counters.get(status)
        if counter is None:
            counter = self._counters[status] = self._metrics.requests.labels(_ROUTE, str(status))
        counter.inc()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        query: str = environ.get("QUERY_STRING", "")
        if (
            not path.startswith(_PREFIX)
            or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or query not in _SIMPLE_QUERIES
        ):
            return self.app(environ, start_response)
        env, sep, service = path[len(_PREFIX) :].partition("/")
        if not sep or not env or not service or "/" in service:
            return self.app(environ, start_response)
        try:
            fmt = negotiate(_SIMPLE_QUERIES[query], environ.get("HTTP_ACCEPT"))
            reply = self.reader.config(
                env,
                service,
                fmt=fmt,
                if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
                authorization=environ.get("HTTP_AUTHORIZATION"),
            )
            status, headers, body = reply
        except ApiError as exc:
            status = exc.status
            body = error_body(exc.code, exc.message, **exc.extra)
            headers = [
                *exc.headers.items(),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ]
        self._count(status)
        start_response(_STATUS[status], headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [body]
