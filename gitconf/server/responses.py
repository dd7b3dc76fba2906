"""Responses the Flask views build: JSON documents, and prepared replies."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

__all__ = ["json_response"]


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return Response(body, status=status, headers=headers, content_type="application/json")
