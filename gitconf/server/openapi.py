"""The OpenAPI 3.1 document of gitconf's HTTP API.

Paths, methods and path parameters come from the routes the server serves; descriptions,
query parameters and schemas are written by hand, here and in each feature's openapi module.
`drift()` says where the two disagree (a test keeps it empty).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gitconf import __version__

__all__ = ["CORE_PATHS", "HOST_ROUTES", "document", "drift", "flask_routes", "paths_of"]


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
INSTANCE = {
    "name": "X-Gitconf-Instance",
    "in": "header",
    "description": "A stable name of the calling instance: during a rollout of the environment "
    "(gitconf.yaml `rollouts:`), it decides whether the candidate is served (docs/releases.md).",
    "schema": {"type": "string"},
}

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


Route = tuple[str, frozenset[str]]  # an OpenAPI-templated path and the methods it serves
# Routes the HTTP host answers itself, not the Flask app (gitconf.server.rsgi).
HOST_ROUTES: list[Route] = [("/v1/watch", frozenset({"GET"}))]

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
                INSTANCE,
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
                INSTANCE,
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


_TEMPLATE = re.compile(r"\{([^}]+)\}")


def flask_routes(app: Any) -> list[Route]:
    """The paths and methods a Flask app serves (`<int:n>` as `{n}`), without /static."""
    routes = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.append((path, frozenset(rule.methods or ())))
    return routes


def _merged(routes: Iterable[Route]) -> dict[str, frozenset[str]]:
    """Methods by path (one path may have a rule per method)."""
    merged: dict[str, frozenset[str]] = {}
    for path, methods in routes:
        merged[path] = merged.get(path, frozenset()) | methods
    return merged


def _documented(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for part in docs:
        for path, ops in part.items():
            found.setdefault(path, {}).update(ops)
    return found


def _route_of(path: str, ops: Mapping[str, Any]) -> str:
    """The route a documented path is served by: itself, or the operations' x-route (the
    Spring documents are one route, `/{document}`, documented once per extension)."""
    for op in ops.values():
        if isinstance(op, Mapping) and "x-route" in op:
            return str(op["x-route"])
    return path


def drift(routes: Iterable[Route], docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the routes serve that is not documented, and what is documented but not served."""
    served = {path: methods - {"HEAD", "OPTIONS"} for path, methods in _merged(routes).items()}
    problems = []
    covered: set[tuple[str, str]] = set()
    for path, ops in _documented(docs).items():
        route = _route_of(path, ops)
        methods = served.get(route)
        if methods is None:
            problems.append(f"{path} is documented, but no route serves it")
            continue
        for method in ops:
            if method.upper() not in methods:
                problems.append(f"{method.upper()} {path} is documented, but not served")
            covered.add((route, method.upper()))
    for path, methods in served.items():
        for method in sorted(methods):
            if (path, method) not in covered:
                problems.append(f"{method} {path} is served, but not documented")
    return problems


def _head(get: Mapping[str, Any]) -> dict[str, Any]:
    responses = {
        code: {k: v for k, v in response.items() if k != "content"}
        if isinstance(response, Mapping)
        else response
        for code, response in get.get("responses", {}).items()
    }
    return {
        "summary": f"{get.get('summary', 'GET')}: the headers only",
        "operationId": f"{get.get('operationId', 'get')}Head",
        **({"tags": get["tags"]} if "tags" in get else {}),
        "parameters": get.get("parameters", []),
        "responses": responses,
    }


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _TEMPLATE.findall(path)
    ]


def _options(path: str, methods: Iterable[str]) -> dict[str, Any]:
    return {
        "summary": "The methods this path allows",
        "security": [],
        "parameters": _path_parameters(path),
        "responses": {
            "200": {
                "description": "No body; `Allow` lists " + ", ".join(sorted(methods)),
                "headers": {"Allow": {"schema": {"type": "string"}}},
            }
        },
    }


def paths_of(routes: Iterable[Route], docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """OpenAPI paths: the routes' paths, methods and path parameters, with the hand-written
    descriptions, parameters and schemas of docs; HEAD and OPTIONS as Flask answers them."""
    served = _merged(routes)
    paths: dict[str, Any] = {}
    for path, ops in _documented(docs).items():
        methods = served.get(_route_of(path, ops))
        if methods is None:
            continue
        entry: dict[str, Any] = {}
        for method, op in ops.items():
            if method.upper() not in methods:
                continue
            op = {k: v for k, v in op.items() if k != "x-route"}
            parameters = list(op.get("parameters", []))
            named = {(p.get("in"), p.get("name")) for p in parameters if isinstance(p, Mapping)}
            for name in reversed(_TEMPLATE.findall(path)):
                if ("path", name) not in named:
                    parameters.insert(
                        0,
                        {
                            "name": name,
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    )
            op["parameters"] = parameters
            entry[method] = op
        if "get" in entry and "HEAD" in methods:
            entry["head"] = _head(entry["get"])
        if "OPTIONS" in methods:
            entry["options"] = _options(path, methods)
        paths[path] = entry
    return paths


def document(
    base_url: str, routes: Iterable[Route], docs: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The OpenAPI document of the routes a server serves, described by docs (CORE_PATHS and
    the features' paths)."""
    paths = paths_of(routes, [CORE_PATHS, *docs])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitconf",
            "version": __version__,
            "description": "Configuration from Git, validated, merged and served. A method "
            "that a path does not list is answered 405 with an Allow header and a JSON error; "
            'errors are JSON everywhere: {"error": {"code", "message"}}.',
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
