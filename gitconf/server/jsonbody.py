"""Request bodies of the JSON routes: their content type, size and nesting, then the parse.

A JSON route takes `Content-Type: application/json` only. A web page can send `text/plain`,
`application/x-www-form-urlencoded` or `multipart/form-data` to any site without asking first
(a CORS "simple" request); it cannot send `application/json` without a preflight, which
gitconf never grants. (Git host webhooks are not JSON routes: they take what their providers
send, and a signature proves who sent it.)

Nesting is bounded before the parse: json.loads recurses once per level, so a body of a few
thousand brackets would otherwise end in a RecursionError (a 500) or worse.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Request
from jsonschema import Draft202012Validator, ValidationError

from gitconf.core.model import format_path
from gitconf.server.errors import ApiError

__all__ = ["JSON_TYPE", "check_body", "nesting_exceeds", "read_json", "read_object", "require_json"]

JSON_TYPE = "application/json"
# A JSON string, escapes included (unrolled, so it matches in linear time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


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


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects more than limit levels deep.

    Brackets inside strings are not counted. Malformed text is counted as it stands (the
    parse that follows says what is wrong with it).
    """
    depth = 0
    for byte in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def read_json(req: Request, *, what: str, limit: int, max_depth: int, shape: str) -> Any:
    """The parsed JSON body of a request to a JSON route.

    415 unless it is application/json, 413 past limit bytes, 400 when it nests deeper than
    max_depth (shape says what the route takes instead) or is not JSON.
    """
    require_json(req.content_type, what)
    too_large = ApiError(413, "too_large", f"{what} takes at most {limit} bytes of JSON")
    if (req.content_length or 0) > limit:
        raise too_large
    data = req.stream.read(limit + 1)  # a chunked body has no Content-Length to check
    if len(data) > limit:
        raise too_large
    if nesting_exceeds(data, max_depth):
        raise ApiError(
            400,
            "too_deep",
            f"the body nests arrays and objects more than {max_depth} levels deep; {shape}",
        )
    try:
        return json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


def _field(error: ValidationError) -> str | None:
    """The body field a schema error is about (the missing or unknown one, for those)."""
    path = format_path(tuple(error.absolute_path))
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        path = format_path((*error.absolute_path, missing[0])) if missing else path
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = [k for k in error.instance if k not in known]
        path = format_path((*error.absolute_path, extra[0])) if extra else path
    return path or None


def check_body(doc: Any, validator: Draft202012Validator, code: str, note: str) -> None:
    """400 with code naming the first field (in document order) that the schema refuses."""
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        field = _field(error)
        raise ApiError(400, code, f"{field}: {error.message} ({note})", field=field)


def read_object(
    req: Request, *, what: str, limit: int, max_depth: int, shape: str, code: str, example: str
) -> dict[str, Any]:
    """read_json for a route that takes a JSON object: 400 with code for any other value."""
    doc = read_json(req, what=what, limit=limit, max_depth=max_depth, shape=shape)
    if not isinstance(doc, dict):
        raise ApiError(400, code, f"the body must be a JSON object such as {example}")
    return doc
