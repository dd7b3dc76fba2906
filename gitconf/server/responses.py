"""Responses the Flask views build: JSON documents, and prepared replies."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from gitconf.server.errors import ApiError, error_parts

__all__ = ["error_response", "json_response", "revision_headers"]


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
