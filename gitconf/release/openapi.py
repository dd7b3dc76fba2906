"""The OpenAPI 3.1 paths of the pin routes, for the server's /openapi.json."""

from __future__ import annotations

from typing import Any

from gitconf.release.api import _PIN_SCHEMA, _UNPIN_SCHEMA

__all__ = ["PATHS", "ROLLOUT_PATHS"]

_ERROR: dict[str, Any] = {"$ref": "#/components/responses/Error"}
_ENV = {"name": "env", "in": "path", "required": True, "schema": {"type": "string"}}
_PIN: dict[str, Any] = {
    "type": "object",
    "required": ["environment", "pinned", "served_revision", "head"],
    "properties": {
        "environment": {"type": "string"},
        "pinned": {"type": "boolean"},
        "served_revision": {"type": ["string", "null"], "description": "What the environment is served from now."},
        "head": {"type": ["string", "null"], "description": "The branch head the other environments serve."},
        "revision": {"type": "string", "description": "The pinned revision."},
        "reason": {"type": "string"},
        "pinned_by": {"type": "string", "description": "The token name that pinned it."},
        "pinned_at": {"type": "string", "format": "date-time"},
    },
}  # fmt: skip


def _ok(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _PIN}}}


PATHS: dict[str, Any] = {
    "/v1/environments/{env}/pin": {
        "get": {
            "operationId": "getPin",
            "tags": ["releases"],
            "summary": "Whether an environment is pinned, to which revision and why",
            "parameters": [_ENV],
            "responses": {"200": _ok("the pin, or pinned: false"), "401": _ERROR, "403": _ERROR, "404": _ERROR},
        },
        "put": {
            "operationId": "pinEnvironment",
            "tags": ["releases"],
            "summary": "Serve an environment from an earlier published revision until unpinned (scope release:<env>)",
            "parameters": [_ENV],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _PIN_SCHEMA}}},
            "responses": {
                "200": _ok("pinned, and served by this replica"),
                "400": _ERROR, "401": _ERROR, "403": _ERROR,
                "404": _ERROR, "409": _ERROR, "413": _ERROR, "415": _ERROR, "422": _ERROR, "503": _ERROR,
            },
        },
        "delete": {
            "operationId": "unpinEnvironment",
            "tags": ["releases"],
            "summary": "Serve an environment from the branch head again (scope release:<env>)",
            "parameters": [_ENV],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _UNPIN_SCHEMA}}},
            "responses": {
                "200": _ok("unpinned"),
                "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "415": _ERROR, "422": _ERROR,
            },
        },
    }
}  # fmt: skip

_ROLLOUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "environment": {"type": "string"},
        "id": {"type": "string", "description": "The rollout's id: what instances are hashed with."},
        "state": {"enum": ["running", "paused", "promoted", "aborted"]},
        "percent": {"type": "integer", "description": "The share of identified instances served the candidate."},
        "step": {"type": "integer"},
        "steps": {"type": "array", "items": {"type": "integer"}},
        "bake": {"type": "number"},
        "stable": {"type": "string"},
        "candidate": {"type": "string"},
        "replaced_candidates": {"type": "array", "items": {"type": "string"}},
        "next_step_at": {"type": ["string", "null"], "format": "date-time"},
        "instances": {
            "type": "array",
            "items": {"type": "object", "properties": {
                "instance": {"type": "string"}, "revision": {"type": "string"},
                "replica": {"type": ["string", "null"]}, "seen_at": {"type": "string", "format": "date-time"}}},
        },
        "instances_truncated": {"type": "boolean", "description": "More instances were seen than the 10,000 listed (the first by name)."},
    },
}  # fmt: skip

ROLLOUT_PATHS: dict[str, Any] = {
    "/v1/rollouts/{env}": {
        "get": {
            "operationId": "getRollout",
            "tags": ["releases"],
            "summary": "An environment's rollout: state, percent, and every instance seen with the revision it was served",
            "parameters": [_ENV],
            "responses": {
                "200": {"description": "the rollout", "content": {"application/json": {"schema": _ROLLOUT}}},
                "401": _ERROR, "403": _ERROR, "404": _ERROR,
            },
        }
    },
    "/v1/rollouts/{env}/{action}": {
        "post": {
            "operationId": "actOnRollout",
            "tags": ["releases"],
            "summary": "promote (the next step now), pause, resume or abort a rollout (scope release:<env>)",
            "parameters": [
                _ENV,
                {"name": "action", "in": "path", "required": True,
                 "schema": {"enum": ["promote", "pause", "resume", "abort"]}},
            ],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _UNPIN_SCHEMA}}},
            "responses": {
                "200": {"description": "the rollout after the action", "content": {"application/json": {"schema": _ROLLOUT}}},
                "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR, "415": _ERROR,
            },
        }
    },
}  # fmt: skip
