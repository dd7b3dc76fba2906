"""HTTP errors as JSON: {"error": {"code": ..., "message": ...}} with the right status."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ApiError", "error_body", "error_parts", "internal_error"]


class ApiError(Exception):
    """An error response: status, a stable code, a message that says what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        actor: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        # The name of the token refused (for the audit log; never in the body).
        self.actor = actor
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> bytes:
    """The JSON bytes of an error."""
    return (json.dumps({"error": {"code": code, "message": message, **extra}}) + "\n").encode()


def error_parts(exc: ApiError) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers (the error's own, then JSON's type and the length) and body of an
    error, for the paths that answer without Flask."""
    body = error_body(exc.code, exc.message, **exc.extra)
    headers = [
        *exc.headers.items(),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    return exc.status, headers, body


def internal_error() -> ApiError:
    """The 500 of an unexpected error: what went wrong goes to the log, not to the caller."""
    return ApiError(500, "internal", "an unexpected error occurred; see the server log")
