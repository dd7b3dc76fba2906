"""`GET /v1/audit` (admin), and what views use to audit what they do.

`audited(action, target)` wraps a view: the action is recorded with the caller's token name,
the request id and how it ended (its status, or the refusal's status and code), whether it
succeeded or not. `record(...)` records from inside a view (what it did in detail).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from gitconf.audit import Audit
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.responses import json_response, store_down

__all__ = ["PATHS", "actor", "audited", "make_blueprint", "record", "request_id"]

MAX_LIMIT = 1000
F = TypeVar("F", bound=Callable[..., Any])


def request_id() -> str | None:
    """The current request's id (set by the app before each request)."""
    found: str | None = g.get("request_id")
    return found


def actor(exc: ApiError | None = None) -> str:
    """Who is making the request: the name of the token it presents (never the token), the
    expired token's name, or `-` for none that gitconf knows."""
    if exc is not None and exc.actor:
        return exc.actor
    auth = deps().auth
    header = request.headers.get("Authorization")
    principal = auth.authenticate(header)
    if principal is not None:
        return principal.name
    return auth.expired(header) or "-"


def record(
    action: str,
    target: str,
    result: str,
    *,
    who: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record an action of the current request (nothing if this server keeps no audit)."""
    audit = deps().audit
    if audit is not None:
        audit.record(who or actor(), action, target, result, request_id=request_id(), detail=detail)
        g.audited = True


def audited(action: str, target: Callable[..., str]) -> Callable[[F], F]:
    """Record action on target(**view_args) with the view's outcome: its status, or the
    status and code of the ApiError it raised."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def audited_view(*args: Any, **kwargs: Any) -> Any:
            where = target(**kwargs)
            try:
                response = view(*args, **kwargs)
            except ApiError as exc:
                record(action, where, f"{exc.status} {exc.code}", who=actor(exc))
                raise
            status = getattr(response, "status_code", 200)
            if not g.get("audited"):
                record(action, where, str(status))
            return response

        return audited_view  # type: ignore[return-value]

    return wrap


def refused(exc: ApiError) -> None:
    """Record a request refused for its token (401, 403) that no audited view recorded."""
    if g.get("audited"):
        return
    record("token.refused", f"{request.method} {request.path}", f"{exc.status} {exc.code}",
           who=actor(exc), detail={"message": exc.message})  # fmt: skip


def _since(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400,
            "bad_query",
            f"since: {text!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z",
            field="since",
        ) from None
    # In UTC, as the store keeps times: SQLite compares them as text, zone and all.
    return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _int(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() takes '²', which int() refuses.
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not low <= int(text) <= high:
        raise ApiError(
            400,
            "bad_query",
            f"{name}: {text!r} is not an integer from {low} to {high}",
            field=name,
        )
    return int(text)


def _text(name: str) -> str | None:
    text = request.args.get(name) or None
    if text is not None and (len(text) > 200 or any(ord(c) < 32 or c == "\x7f" for c in text)):
        raise ApiError(
            400, "bad_query", f"{name}: at most 200 characters, none of them control characters",
            field=name,
        )  # fmt: skip
    return text


def list_audit(audit: Audit) -> Response:
    """A page of the audit log, oldest first; `next_cursor` names the next page."""
    d = deps()
    principal = d.reader.principal(request.headers.get("Authorization"))
    if not principal.admin:
        raise ApiError(
            403,
            "forbidden",
            f"token {principal.name!r} lacks the admin scope the audit log needs",
            actor=principal.name,
        )
    unknown = set(request.args) - {"since", "actor", "action", "limit", "cursor"}
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError(
            400,
            "bad_query",
            f"{name}: unknown parameter; give since, actor, action, limit or cursor",
            field=name,
        )
    page = audit.page(
        since=_since(request.args.get("since")),
        actor=_text("actor"),
        action=_text("action"),
        after=_int("cursor", 0, 0, 2**62),
        limit=_int("limit", 100, 1, MAX_LIMIT),
    )
    doc: dict[str, Any] = {"entries": page.rows, "next_cursor": page.next_cursor}
    if audit.error:
        doc["error"] = audit.error
    return json_response(doc)


def make_blueprint(audit: Audit) -> Blueprint:
    """The audit route."""
    bp = Blueprint("audit", __name__)
    bp.register_error_handler(SQLAlchemyError, store_down("audit"))
    bp.add_url_rule("/v1/audit", "list", lambda: list_audit(audit), methods=["GET"])
    return bp


_ERROR: dict[str, Any] = {"$ref": "#/components/responses/Error"}
_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string", "description": "the token's name; `-` for none"},
        "action": {"type": "string"},
        "target": {"type": "string"},
        "result": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "detail": {"type": "object"},
    },
}

PATHS: dict[str, Any] = {
    "/v1/audit": {
        "get": {
            "operationId": "listAudit",
            "tags": ["audit"],
            "summary": "The audit log: every write, who made it and how it ended (admin)",
            "parameters": [
                {"name": n, "in": "query", "schema": {"type": t}, "description": d}
                for n, t, d in (
                    ("since", "string", "ISO 8601 time: entries at or after it"),
                    ("actor", "string", "a token name"),
                    ("action", "string", "an action, or its prefix before a dot (pin)"),
                    ("limit", "integer", "entries per page, 1 to 1000 (100)"),
                    ("cursor", "integer", "next_cursor of the page before"),
                )
            ],
            "responses": {
                "200": {
                    "description": "entries oldest first",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "entries": {"type": "array", "items": _ENTRY},
                                    "next_cursor": {"type": ["integer", "null"]},
                                },
                            }
                        }
                    },
                },
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
            },
        }
    }
}
