"""The OpenAPI 3.1 path of the change API, for the server's /openapi.json."""

from __future__ import annotations

from typing import Any

from gitconf.package_data import own_schema

__all__ = ["PATHS"]

_ERROR: dict[str, Any] = {"$ref": "#/components/responses/Error"}


def _request() -> dict[str, Any]:
    """gitconf's own schemas/change.schema.json: the one the route checks bodies against."""
    return {k: v for k, v in own_schema("change").items() if k not in ("$schema", "$id")}


_REPLY: dict[str, Any] = {
    "type": "object",
    "required": ["change", "commit", "base", "parent", "branch", "url", "files", "diff"],
    "properties": {
        "change": {"type": "string", "description": "The change id (chg_…), also the commit's Gitconf-Change-Id trailer."},
        "commit": {"type": ["string", "null"], "description": "The pushed commit (null for a dry run)."},
        "base": {"type": "string", "description": "The full sha of the request's base."},
        "parent": {"type": "string", "description": "The branch head the change was applied to."},
        "branch": {"type": "string", "description": "The branch pushed: the tracked one, or gitconf/change-<id> in branch mode."},
        "url": {"type": ["string", "null"], "description": "Where to review the branch (changes.review_url), in branch mode."},
        "files": {"type": "array", "items": {"type": "string"}, "description": "The layer files the change edits."},
        "diff": {"type": "array", "items": {"type": "object"}, "description": "The effective changes per config, as GET /v1/diff gives them (only configs the token may read; secrets masked)."},
        "dry_run": {"type": "boolean"},
    },
}  # fmt: skip

PATHS: dict[str, Any] = {
    "/v1/changes": {
        "post": {
            "operationId": "createChange",
            "tags": ["changes"],
            "summary": "Change config values: edit the layer files, validate, commit and push",
            "description": (
                "Needs `write:<env>/<service>` for every edit. The edits are applied to the "
                "branch head keeping each file's comments, order and quoting, compiled like a "
                "pushed commit, and pushed as one commit (author: the token; trailers "
                "Gitconf-Change-Id and Gitconf-Base). The server polls at once. See "
                "docs/changes.md."
            ),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _request()}},
            },
            "responses": {
                "200": {
                    "description": "dry_run, or a change that changes nothing: what it would do",
                    "content": {"application/json": {"schema": _REPLY}},
                },
                "201": {
                    "description": "Committed and pushed",
                    "content": {"application/json": {"schema": _REPLY}},
                },
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
                "404": {**_ERROR, "description": "unknown_config: an environment or service the branch lacks"},
                "409": {**_ERROR, "description": "encrypted_layer, base_invalid, push_conflict (lost the push race too often), push_refused"},
                "412": {**_ERROR, "description": "stale_base: a file the change edits changed since base (`files`, `head`)"},
                "413": _ERROR,
                "415": _ERROR,
                "422": {**_ERROR, "description": "invalid_change (the compile's problems), bad_edit, bad_layer, unknown_base"},
                "428": {**_ERROR, "description": "base_required"},
                "502": {**_ERROR, "description": "remote_unavailable: the fetch or the push failed"},
                "503": _ERROR,
            },
        }
    }
}  # fmt: skip
