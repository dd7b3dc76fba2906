"""The OpenAPI 3.1 paths of the Spring Cloud Config compatible routes, for /openapi.json."""

from __future__ import annotations

from typing import Any

from gitconf.spring.names import DOCUMENT_FORMATS

__all__ = ["PATHS"]

_ERROR = {"$ref": "#/components/responses/Error"}
_ERRORS = {"401": _ERROR, "403": _ERROR, "404": _ERROR, "422": _ERROR, "503": _ERROR}
_AUTH = (
    " Auth as elsewhere (`Authorization: Bearer <token>`, scopes by environment); Spring "
    "clients' `Basic` credentials are read with the password (or, without one, the user "
    "name) as the token, and empty ones (`Basic Og==`) as no credentials."
)


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}  # fmt: skip


SERVICE = _path(
    "service",
    "The service (Spring: the application name). One with no config is answered as Spring "
    "answers it: 200 with no property sources (an empty document).",
)
PROFILES = _path(
    "profiles",
    "An environment (Spring: the profile), or several by comma, merged in order, the last "
    "winning. Profiles that are not environments are ignored (and named in "
    "`X-Gitconf-Ignored-Profiles`) as long as one is. `default` (what Spring Boot asks for "
    "when no profile is active) is the environment `spring.default_environment` of the "
    "server settings, else the base layers alone (base/_all and base/<service>).",
)
LABEL = _path(
    "label",
    "A tag, commit, or the tracked branch (Spring: the label); `(_)` stands for `/`. When the "
    "tracked branch is `main` or `master`, both labels reach it.",
)
HEADERS = {
    "ETag": {"description": "Strong ETag: a hash of the body.", "schema": {"type": "string"}},
    "X-Gitconf-Revision": {"description": "The commit served.", "schema": {"type": "string"}},
}

_VALUE = {"description": 'A leaf of the merged config; null and [] are served as "".'}
ENVIRONMENT = {
    "type": "object",
    "required": ["name", "profiles", "label", "version", "state", "propertySources"],
    "properties": {
        "name": {"type": "string", "description": "The service requested."},
        "profiles": {"type": "array", "items": {"type": "string"}},
        "label": {"type": ["string", "null"], "description": "The label requested, or null."},
        "version": {"type": "string", "description": "The commit sha."},
        "state": {"type": "null"},
        "propertySources": {
            "type": "array",
            "description": "One per environment, highest precedence (the last profile) first.",
            "items": {
                "type": "object",
                "required": ["name", "source"],
                "properties": {
                    "name": {
                        "type": "string",
                        "description": "`gitconf:<env>/<service>@<commit sha>`; "
                        "`gitconf:_base/<service>@<commit sha>` for the base layers.",
                    },
                    "source": {
                        "type": "object",
                        "description": "The merged config flattened Spring's way: `a.b.c`, "
                        "`servers[0]`, `labels[key.with.dots]`.",
                        "additionalProperties": _VALUE,
                    },
                },
            },
        },
    },
}
ENVIRONMENT_V2 = {
    **ENVIRONMENT,
    "description": "As application/json, with each value as {value, origin}: the "
    "`file:line:col` in the config repository that set it.",
}


def _environment(operation: str, summary: str, labelled: bool) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "tags": ["spring"],
            "summary": summary,
            "description": "Spring Cloud Config's Environment, for Spring Boot and other Spring "
            "clients: gitconf's fully merged config as one property source per environment, so "
            "`!delete` and `!replace` hold exactly." + _AUTH,
            "parameters": [SERVICE, PROFILES, *([LABEL] if labelled else [])],
            "responses": {
                "200": {
                    "description": "The Environment",
                    "headers": HEADERS,
                    "content": {
                        "application/json": {"schema": ENVIRONMENT},
                        "application/vnd.spring-cloud.config-server.v2+json": {
                            "schema": ENVIRONMENT_V2
                        },
                    },
                },
                "304": {"description": "Not modified (If-None-Match)"},
                "400": _ERROR,
                **_ERRORS,
            },
        }
    }


def _document(ext: str, labelled: bool) -> dict[str, Any]:
    media = (
        {"application/json": {"schema": {"type": "object"}}}
        if ext == "json"
        else {"text/plain": {"schema": {"type": "string"}}}
    )
    shape = {
        "json": "nested JSON",
        "yaml": "nested YAML",
        "properties": "`key: value` lines with Spring property names",
    }[DOCUMENT_FORMATS[ext]]
    return {
        "get": {
            "x-route": "/{label}/{document}" if labelled else "/{document}",
            "operationId": f"springDocument{ext.capitalize()}{'AtLabel' if labelled else ''}",
            "tags": ["spring"],
            "summary": f"The merged config as {shape}",
            "description": "`<service>-<env>` is split at whichever hyphen names a known "
            "service and environment (`api-production-eu` is api in production-eu); a name "
            "that reads two ways is a 400 that names both readings. Several environments by "
            "comma merge in order, the last winning." + _AUTH,
            "parameters": [
                *([LABEL] if labelled else []),
                _path("service", "The service."),
                _path("profiles", "An environment, or several by comma."),
            ],
            "responses": {
                "200": {"description": "The document", "headers": HEADERS, "content": media},
                "304": {"description": "Not modified (If-None-Match)"},
                "400": _ERROR,
                **_ERRORS,
            },
        }
    }


PATHS: dict[str, Any] = {
    "/{service}/{profiles}": _environment(
        "springEnvironment", "Spring Environment of a service at the served revision", False
    ),
    "/{service}/{profiles}/{label}": _environment(
        "springEnvironmentAtLabel", "Spring Environment of a service at a label", True
    ),
    **{f"/{{service}}-{{profiles}}.{ext}": _document(ext, False) for ext in DOCUMENT_FORMATS},
    **{
        f"/{{label}}/{{service}}-{{profiles}}.{ext}": _document(ext, True)
        for ext in DOCUMENT_FORMATS
    },
}
