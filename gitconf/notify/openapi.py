"""The OpenAPI 3.1 paths of webhook subscriptions, for the server's /openapi.json."""

from __future__ import annotations

from typing import Any

from gitconf.package_data import own_schema

__all__ = ["PATHS"]

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {
    "name": "sub_id",
    "in": "path",
    "required": True,
    "description": "A subscription id: sub_… for one made over the API, git_<name> for one "
    "declared in gitconf.yaml.",
    "schema": {"type": "string"},
}
_GLOBS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "minItems": 1,
    "description": "Glob patterns (fnmatch: *, ?, [..]); default every one.",
}
_EVENTS = {
    "type": "array",
    "items": {"enum": ["io.gitconf.config.changed", "io.gitconf.revision.rejected"]},
    "minItems": 1,
    "uniqueItems": True,
}
_STATE = {"enum": ["pending", "delivered", "dead", "gone", "superseded", "cancelled"]}


def _create() -> dict[str, Any]:
    """The request body of POST /v1/subscriptions: gitconf's own schemas/subscription.schema.json
    (the one the route checks bodies against), so the two cannot differ."""
    schema = {k: v for k, v in own_schema("subscription").items() if k not in ("$schema", "$id")}
    schema.setdefault("description", "gitconf's schemas/subscription.schema.json.")
    return schema


CREATE = _create()

SUBSCRIPTION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "origin": {
            "enum": ["api", "manifest", "broker"],
            "description": "broker: one of server.yaml's brokers: (docs/notifications.md, 8).",
        },
        "name": {"type": ["string", "null"]},
        "url": {"type": "string", "description": "A broker's: without its user and password."},
        "environments": _GLOBS,
        "services": _GLOBS,
        "events": _EVENTS,
        "include_config": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "disabled_at": {
            "type": ["string", "null"],
            "description": "Set when the target answered 410 Gone.",
        },
        "disabled_reason": {"type": ["string", "null"]},
        "secret_env": {"type": ["string", "null"], "description": "Manifest subscriptions only."},
        "declared_at": {
            "type": ["string", "null"],
            "description": "Manifest subscriptions: gitconf.yaml:line:col; brokers: their entry.",
        },
        "deliveries": {
            "type": "object",
            "description": "How many deliveries are in each state.",
            "additionalProperties": {"type": "integer"},
        },
    },
}

DELIVERY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The event id, also the webhook-id header."},
        "type": {"enum": ["io.gitconf.config.changed", "io.gitconf.revision.rejected"]},
        "environment": {"type": ["string", "null"]},
        "service": {"type": ["string", "null"]},
        "revision": {"type": "string"},
        "previous_revision": {"type": ["string", "null"]},
        "state": _STATE,
        "created_at": {"type": "string", "format": "date-time"},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        "superseded_by": {"type": ["string", "null"]},
        "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "at": {"type": "string", "format": "date-time"},
                    "status_code": {"type": ["integer", "null"]},
                    "latency_ms": {"type": "number"},
                    "error": {"type": ["string", "null"]},
                },
            },
        },
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ADMIN = "Needs the admin scope when tokens are configured."

PATHS: dict[str, Any] = {
    "/v1/subscriptions": {
        "post": {
            "summary": "Register a webhook subscriber",
            "description": "Checks the URL (http or https; link-local and cloud-metadata "
            "addresses refused, then the subscribers allow/deny CIDRs). The secret is returned "
            "in this response only. " + _ADMIN,
            "operationId": "createSubscription",
            "tags": ["notifications"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": CREATE}}},
            "responses": {
                "201": {
                    **_json(
                        "Created: the subscription and its secret.",
                        {
                            "allOf": [
                                SUBSCRIPTION,
                                {"properties": {"secret": {"type": "string"}}},
                            ]
                        },
                    ),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
                "413": _ERROR,
                "415": _ERROR,
                "503": _ERROR,
            },
        },
        "get": {
            "summary": "Every subscription, from the API and from gitconf.yaml",
            "description": _ADMIN,
            "operationId": "listSubscriptions",
            "tags": ["notifications"],
            "responses": {
                "200": _json(
                    "The subscriptions.",
                    {
                        "type": "object",
                        "properties": {"subscriptions": {"type": "array", "items": SUBSCRIPTION}},
                    },
                ),
                "401": _ERROR,
                "403": _ERROR,
            },
        },
    },
    "/v1/subscriptions/{sub_id}": {
        "get": {
            "summary": "One subscription",
            "description": _ADMIN,
            "operationId": "getSubscription",
            "tags": ["notifications"],
            "parameters": [_ID],
            "responses": {
                "200": _json("The subscription.", SUBSCRIPTION),
                "401": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        },
        "delete": {
            "summary": "Delete a subscription; its pending deliveries are cancelled",
            "description": "One declared in gitconf.yaml is removed there instead (409). " + _ADMIN,
            "operationId": "deleteSubscription",
            "tags": ["notifications"],
            "parameters": [_ID],
            "responses": {
                "204": {"description": "Deleted."},
                "401": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
            },
        },
    },
    "/v1/subscriptions/{sub_id}/deliveries": {
        "get": {
            "summary": "A subscription's deliveries, newest first, with every attempt",
            "description": _ADMIN,
            "operationId": "listDeliveries",
            "tags": ["notifications"],
            "parameters": [
                _ID,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
                {"name": "state", "in": "query", "schema": _STATE},
            ],
            "responses": {
                "200": _json(
                    "The deliveries.",
                    {
                        "type": "object",
                        "properties": {
                            "subscription": {"type": "string"},
                            "deliveries": {"type": "array", "items": DELIVERY},
                        },
                    },
                ),
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        }
    },
}

# Every subscription route reads or writes the store: 503 store_unavailable while it is down.
_STORE_DOWN = {
    "description": "store_unavailable: the store (SQLite or PostgreSQL) cannot be reached or is "
    "locked; retry after Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
for _ops in PATHS.values():
    for _op in _ops.values():
        _op["responses"]["503"] = _STORE_DOWN
