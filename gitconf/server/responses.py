"""Responses the Flask views build: JSON documents, and prepared replies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response

from gitconf.server.errors import ApiError, error_parts

__all__ = ["error_response", "json_response", "revision_headers", "store_down"]


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return Response(body, status=status, headers=headers, content_type="application/json")


def error_response(exc: ApiError) -> Response:
    """The JSON error response of an ApiError (the same bytes as the paths without Flask)."""
    status, headers, body = error_parts(exc)
    return Response(body, status=status, headers=headers)


def revision_headers(etag: str, revision: str) -> list[tuple[str, str]]:
    """The validators and caching headers of every config body gitconf serves."""
    return [
        ("ETag", etag),
        ("X-Gitconf-Revision", revision),
        ("Cache-Control", "no-cache"),
        ("Vary", "Accept, Authorization"),
    ]


def store_down(what: str) -> Callable[[Exception], Response]:
    """An error handler for a blueprint whose store (SQLAlchemy) is locked, full or
    unreachable: 503, what was unavailable and what the database said."""

    def handler(exc: Exception) -> Response:
        message = str(exc).splitlines()[0]
        return error_response(
            ApiError(
                503,
                "store_unavailable",
                f"the {what} store is unavailable: {message}",
                headers={"Retry-After": "5"},
            )
        )

    return handler
