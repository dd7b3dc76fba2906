"""The Flask app factory: one blueprint per API area, dependencies passed in, no import-time work."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from gitconf.audit import new_request_id, valid_request_id
from gitconf.server.deps import Deps
from gitconf.server.errors import ApiError, internal_error
from gitconf.server.responses import error_response

__all__ = ["create_app"]

log = logging.getLogger(__name__)
# One line per request the app answers (not the plain config reads the event loop answers
# from memory: those are counted in /metrics), with its request id, as the audit log has it.
access = logging.getLogger("gitconf.access")


def create_app(dependencies: Deps, blueprints: Iterable[Blueprint] | None = None) -> Flask:
    """A Flask app serving the HTTP API over the given dependencies."""
    from gitconf.server import config_api, ops

    app = Flask("gitconf", static_folder=None)  # no /static: gitconf serves no files
    app.extensions["gitconf"] = dependencies
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for blueprint in [config_api.make_blueprint(), ops.make_blueprint(), *(blueprints or ())]:
        app.register_blueprint(blueprint)

    @app.before_request
    def _request_id() -> None:
        g.request_id = valid_request_id(request.headers.get("X-Request-Id")) or new_request_id()
        g.started = time.perf_counter()

    @app.before_request
    def _guard() -> None:
        # Before routing, so an unknown path or a 405 is refused alike (gitconf.server.guard).
        refused = dependencies.guard.refusal(request.environ)
        if refused is not None:
            raise refused

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        if exc.status in (401, 403):
            from gitconf.server import audit_api

            try:
                audit_api.refused(exc)
            except Exception:
                log.exception("auditing a refused token failed")
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {}
        if exc.code == 405 and exc.response is None:
            valid = getattr(exc, "valid_methods", None)
            if valid:
                headers["Allow"] = ", ".join(valid)
        return error_response(
            ApiError(exc.code or 500, code, exc.description or exc.name or "error", headers)
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _api_error(internal_error())

    @app.after_request
    def _count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        dependencies.metrics.requests.labels(rule, str(response.status_code)).inc()
        rid = g.get("request_id")
        if rid is not None:
            response.headers["X-Request-Id"] = rid
            if access.isEnabledFor(logging.INFO):
                took = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
                access.info(
                    '%s "%s %s" %d %.1fms request_id=%s',
                    request.remote_addr or "-",
                    request.method,
                    request.full_path.rstrip("?"),
                    response.status_code,
                    took,
                    rid,
                )
        return response

    return app
