"""Request bodies of the JSON routes: their content type.

A JSON route takes `Content-Type: application/json` only. A web page can send `text/plain`,
`application/x-www-form-urlencoded` or `multipart/form-data` to any site without asking first
(a CORS "simple" request); it cannot send `application/json` without a preflight, which
gitconf never grants. (Git host webhooks are not JSON routes: they take what their providers
send, and a signature proves who sent it.)
"""

from __future__ import annotations

from gitconf.server.errors import ApiError

__all__ = ["JSON_TYPE", "require_json"]

JSON_TYPE = "application/json"


def require_json(content_type: str | None, what: str) -> None:
    """415 unless content_type is application/json (parameters such as charset allowed)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON_TYPE:
        return
    got = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"{what} takes a JSON body sent with Content-Type: {JSON_TYPE}; the request had {got}",
    )
