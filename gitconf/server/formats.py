"""Response formats: which one a request asks for, and If-None-Match against an ETag."""

from __future__ import annotations

from gitconf.server.errors import ApiError

__all__ = ["FORMATS", "etag_matches", "negotiate"]

FORMATS = {"json", "yaml", "env"}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def negotiate(query_format: str | None, accept: str | None) -> str:
    """The response format from ?format= or the Accept header; JSON by default."""
    if query_format is not None:
        if query_format not in FORMATS:
            raise ApiError(
                400, "bad_format", f"format {query_format!r} is not one of json, yaml, env"
            )
        return query_format
    if accept and any(t in accept for t in _YAML_TYPES):
        return "yaml"
    return "json"


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names etag (weak comparison, as RFC 9110 asks for it)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))
