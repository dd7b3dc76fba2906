"""Response formats: which one a request asks for, and If-None-Match against an ETag."""

from __future__ import annotations

from gitconf.server.errors import ApiError

__all__ = ["FORMATS", "etag_matches", "negotiate"]

FORMATS = {"json", "yaml", "env"}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_JSON_TYPES = ("application/json", "application/*", "*/*")


def negotiate(query_format: str | None, accept: str | None) -> str:
    """The response format from ?format= or the Accept header; JSON by default."""
    if query_format is not None:
        if query_format not in FORMATS:
            raise ApiError(
                400, "bad_format", f"format {query_format!r} is not one of json, yaml, env"
            )
        return query_format
    if not accept:
        return "json"
    if ";" not in accept:  # no q-values (nearly every client): YAML if it is named at all
        return "yaml" if any(t in accept for t in _YAML_TYPES) else "json"
    return _weighed(accept)


def _weighed(accept: str) -> str:
    """YAML when a YAML type has the highest q-value of the types gitconf serves (as without
    q-values, a tie goes to YAML); a type with q=0 is refused by the client, not asked for."""
    best_yaml = best_other = -1.0
    for part in accept.split(","):
        media, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        media = media.strip().lower()
        if media in _YAML_TYPES:
            best_yaml = max(best_yaml, q)
        elif media in _JSON_TYPES:
            best_other = max(best_other, q)  # types gitconf cannot serve (text/html) do not count
    return "yaml" if best_yaml >= 0 and best_yaml >= best_other else "json"


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names etag (weak comparison, as RFC 9110 asks for it)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))
