"""HTTP errors as JSON: {"error": {"code": ..., "message": ...}} with the right status."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ApiError", "error_body"]


class ApiError(Exception):
    """An error response: status, a stable code, a message that says what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> bytes:
    """The JSON bytes of an error."""
    return (json.dumps({"error": {"code": code, "message": message, **extra}}) + "\n").encode()
