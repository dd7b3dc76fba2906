"""The dashboard's routes in the OpenAPI document: HTML pages, listed so that the drift test
keeps them and the routes in step, and so that API clients see them for what they are."""

from __future__ import annotations

from typing import Any

__all__ = ["PATHS"]

_TAGS = ["dashboard"]
_HTML = {"text/html": {"schema": {"type": "string"}}}
_COOKIE_NOTE = (
    " A page of the dashboard: HTML for a browser, logged in with the session cookie of "
    "POST /ui/login (or a bearer token). Not part of the JSON API: read the /v1 routes instead."
)


def _page(summary: str, operation: str, parameters: list[dict[str, Any]] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "description": summary + "." + _COOKIE_NOTE,
            "operationId": operation,
            "tags": _TAGS,
            "parameters": parameters or [],
            "responses": {
                "200": {"description": "The page", "content": _HTML},
                "303": {"description": "Not logged in: to /ui/login"},
            },
        }
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string"}}


_FORM_POST = {
    "tags": _TAGS,
    "security": [],
    "responses": {
        "303": {"description": "Done: to the next page"},
        "400": {"description": "The form's CSRF token is missing", "content": _HTML},
        "403": {"description": "A CSRF token of another session, or another Origin"},
        "415": {"description": "Not a form body", "content": _HTML},
    },
}

PATHS: dict[str, Any] = {
    "/ui/": _page(
        "The dashboard's overview: served revision, poll, rejected commits", "uiOverview"
    ),
    "/ui/config/{env}/{service}": _page(
        "One merged config with each value's file:line, what it overrode, and the layers",
        "uiConfig",
        [_query("ref", "An earlier revision: a commit, branch or tag")],
    ),
    "/ui/revisions": _page("The newest revisions, published or rejected", "uiRevisions"),
    "/ui/diff": _page(
        "The effective changes between two revisions",
        "uiDiff",
        [_query("from", "The older revision"), _query("to", "The newer one (default: served)")],
    ),
    "/ui/subscriptions": _page("Subscriptions and their deliveries", "uiSubscriptions"),
    "/ui/releases": _page("Pins and rollouts", "uiReleases"),
    "/ui/audit": _page("The audit log", "uiAudit"),
    "/ui/login": {
        **_page("The login form: one field, a token", "uiLoginForm"),
        "post": {
            **_FORM_POST,
            "summary": "Log in with a token: sets the session cookie (HttpOnly, SameSite=Strict)",
            "operationId": "uiLogin",
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["token", "csrf"],
                            "properties": {"token": {"type": "string"}, "csrf": {"type": "string"}},
                        }
                    }
                }
            },
        },
    },
    "/ui/logout": {
        "post": {
            **_FORM_POST,
            "summary": "Log out: removes the session cookie",
            "operationId": "uiLogout",
        }
    },
    "/ui/change": {
        **_page("The change form: KEY=VALUE lines for one config", "uiChangeForm"),
        "post": {
            **_FORM_POST,
            "summary": "Preview (action=preview: a dry run) or commit (action=commit) a change "
            "through POST /v1/changes; the reply or the refusal, on the form",
            "operationId": "uiChange",
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["csrf", "config", "base"],
                            "properties": {
                                name: {"type": "string"}
                                for name in (
                                    "csrf",
                                    "config",
                                    "base",
                                    "set",
                                    "unset",
                                    "layer",
                                    "message",
                                    "action",
                                )
                            },
                        }
                    }
                }
            },
        },
    },
    "/ui/static/{filename}": {
        "get": {
            "summary": "The dashboard's stylesheet and script",
            "operationId": "uiStatic",
            "tags": _TAGS,
            "security": [],
            "responses": {"200": {"description": "The file"}, "404": {"description": "None"}},
        }
    },
}
