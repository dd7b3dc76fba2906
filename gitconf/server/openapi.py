"""The OpenAPI 3.1 document of gitconf's HTTP API (parts with their own plugin add their paths)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitconf import __version__

__all__ = ["CORE_PATHS", "document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{name}"}


ENV = {"name": "env", "in": "path", "required": True, "schema": {"type": "string"}}
SERVICE = {"name": "service", "in": "path", "required": True, "schema": {"type": "string"}}
REF = {
    "name": "ref",
    "in": "query",
    "description": "Serve an earlier revision: a commit, branch or tag.",
    "schema": {"type": "string"},
}
FORMAT = {
    "name": "format",
    "in": "query",
    "description": "Response format; also chosen by `Accept: application/yaml`.",
    "schema": {"enum": ["json", "yaml", "env"], "default": "json"},
}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}

ERRORS = {
    "400": _ref("responses/Error"),
    "401": _ref("responses/Error"),
    "403": _ref("responses/Error"),
    "404": _ref("responses/Error"),
    "503": _ref("responses/Error"),
}
CONFIG_HEADERS = {
    "ETag": {"description": "Strong ETag: a hash of the body.", "schema": {"type": "string"}},
    "X-Gitconf-Revision": {"description": "The commit served.", "schema": {"type": "string"}},
}
CONFIG_CONTENT = {
    "application/json": {"schema": {"type": "object"}},
    "application/yaml": {"schema": {"type": "string"}},
    "text/plain": {"schema": {"type": "string", "description": "KEY=value lines"}},
}


def _json_ok(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": dict(schema or {"type": "object"})}},
    }


CORE_PATHS: dict[str, Any] = {
    "/v1/config/{env}/{service}": {
        "get": {
            "summary": "The merged config of a service in an environment",
            "operationId": "getConfig",
            "parameters": [
                ENV,
                SERVICE,
                FORMAT,
                REF,
                {
                    "name": "wait",
                    "in": "query",
                    "description": "With If-None-Match: hold the request up to this many seconds "
                    "until the config changes (long poll); 304 when it does not.",
                    "schema": {"type": "number", "minimum": 0},
                },
                IF_NONE_MATCH,
            ],
            "responses": {
                "200": {
                    "description": "The config.",
                    "headers": CONFIG_HEADERS,
                    "content": CONFIG_CONTENT,
                },
                "304": {"description": "Not modified.", "headers": CONFIG_HEADERS},
                "422": _ref("responses/Error"),
                **ERRORS,
            },
        }
    },
    "/v1/config/{env}": {
        "get": {
            "summary": "Every service of an environment in one document",
            "operationId": "getEnvironmentConfig",
            "parameters": [ENV, FORMAT, REF, IF_NONE_MATCH],
            "responses": {
                "200": {
                    "description": "{environment, revision, services: {name: config}}",
                    "content": CONFIG_CONTENT,
                },
                "304": {"description": "Not modified."},
                **ERRORS,
            },
        }
    },
    "/v1/config/{env}/{service}/explain": {
        "get": {
            "summary": "Where every leaf of a config was set, and what it overrode",
            "operationId": "explainConfig",
            "parameters": [ENV, SERVICE, REF],
            "responses": {
                "200": _json_ok(
                    "Provenance",
                    {
                        "type": "object",
                        "properties": {
                            "layers": {"type": "array", "items": {"type": "string"}},
                            "leaves": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "key": {"type": "string"},
                                        "value": {},
                                        "source": {
                                            "type": "string",
                                            "description": "path:line:col",
                                        },
                                        "overrides": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    },
                ),
                **ERRORS,
            },
        }
    },
    "/v1/environments": {
        "get": {
            "summary": "The environments the caller may read, with their services",
            "operationId": "listEnvironments",
            "parameters": [REF],
            "responses": {"200": _json_ok("Environments"), **ERRORS},
        }
    },
    "/v1/status": {
        "get": {
            "summary": "Served revision, last poll and its result, last error, rejected revisions",
            "operationId": "getStatus",
            "responses": {"200": _json_ok("Status"), **ERRORS},
        }
    },
    "/v1/revisions": {
        "get": {
            "summary": "Revisions seen on the tracked branch, newest first",
            "operationId": "listRevisions",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }
            ],
            "responses": {"200": _json_ok("Revisions"), **ERRORS},
        }
    },
    "/v1/diff": {
        "get": {
            "summary": "Effective changes between two revisions, key by key",
            "operationId": "diffRevisions",
            "parameters": [
                {"name": "from", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "to", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": _json_ok("Changes"), "422": _ref("responses/Error"), **ERRORS},
        }
    },
    "/v1/watch": {
        "get": {
            "summary": "Config changes as server-sent events",
            "description": (
                "One `config.changed` event per config whose body changed, `id` the revision, "
                "`data` the webhook notification's data object with `changed` beside "
                "`changed_keys`; a comment every 15 s; `Last-Event-ID` replays what was "
                "published since that revision, or sends one `resync` event. Only the "
                "environments the token may read. Counts against max_waiters."
            ),
            "operationId": "watch",
            "parameters": [
                {
                    "name": "environments",
                    "in": "query",
                    "description": "Comma-separated environment globs (default `*`).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "services",
                    "in": "query",
                    "description": "Comma-separated service globs (default `*`).",
                    "schema": {"type": "string"},
                },
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "An event stream, open until the client or the server ends it",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **ERRORS,
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "The process is alive",
            "operationId": "healthz",
            "security": [],
            "responses": {"200": _json_ok("Alive")},
        }
    },
    "/readyz": {
        "get": {
            "summary": "A revision is loaded",
            "operationId": "readyz",
            "security": [],
            "responses": {"200": _json_ok("Ready"), "503": _json_ok("Not ready")},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {"200": _json_ok("OpenAPI 3.1")},
        }
    },
}


def document(base_url: str, extra_paths: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The OpenAPI document, with the paths of installed parts merged in."""
    paths = dict(CORE_PATHS)
    for extra in extra_paths:
        paths.update(extra)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitconf",
            "version": __version__,
            "description": "Configuration from Git, validated, merged and served.",
        },
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from the server settings; scopes admin or read:<env glob>. "
                    "Not required when the server has no tokens (loopback only; a request "
                    "for a Host that is not a loopback name or address is then 421).",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }
