"""The OpenAPI 3.1 paths of the Git host webhooks, for the server's /openapi.json."""

from __future__ import annotations

from typing import Any

from gitconf.hooks.providers import PROVIDERS

__all__ = ["PATHS"]

_ERROR: dict[str, Any] = {"$ref": "#/components/schemas/Error"}


def _error(description: str, codes: list[str]) -> dict[str, Any]:
    return {
        "description": f"{description} (error codes: {', '.join(codes)})",
        "content": {"application/json": {"schema": _ERROR}},
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


PATHS: dict[str, Any] = {
    "/v1/hooks/{provider}": {
        "post": {
            "operationId": "receiveHook",
            "tags": ["hooks"],
            "summary": "A Git host's push webhook: a push to the tracked branch polls at once",
            "description": (
                "Authenticated by the provider's signature, not by a bearer token. Each "
                "provider is on when `hooks.<provider>` in the server settings holds a secret "
                "(`secret` or `secret_env`); otherwise it answers 404. Checks, in order: "
                "provider on (404), secret readable (503), body size (413), signature (401), "
                "Standard Webhooks id not seen before (409), JSON (400). A push to the tracked "
                "branch answers 202 and wakes the poller (a burst of hooks makes one poll; "
                "a hook during a poll makes exactly one more). A tag, another branch, a "
                "deletion of the branch or another event type is acknowledged with 200. "
                "Signatures: github `X-Hub-Signature-256: sha256=<hex>`; gitlab "
                "`X-Gitlab-Token: <secret>`, or Standard Webhooks headers when the secret is a "
                "`whsec_` signing token; gitea `X-Gitea-Signature` (or `X-Forgejo-Signature`, "
                "`X-Gogs-Signature`): bare hex; bitbucket `X-Hub-Signature: sha256=<hex>`; "
                "generic: Standard Webhooks (`webhook-id`, `webhook-timestamp` within 5 "
                "minutes, `webhook-signature: v1,<base64>`), HMAC-SHA256 over "
                "`id.timestamp.body` keyed with the base64 key after `whsec_`."
            ),
            "security": [],
            "parameters": [
                {
                    "name": "provider",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(PROVIDERS)},
                },
                _header("X-Hub-Signature-256", "github: sha256=<hex HMAC-SHA256 of the body>"),
                _header("X-GitHub-Event", "github: push or ping; other events are ignored"),
                _header("X-Gitlab-Token", "gitlab: the secret token, verbatim"),
                _header("X-Gitlab-Event", "gitlab: Push Hook, Tag Push Hook, System Hook"),
                _header("X-Gitea-Signature", "gitea: hex HMAC-SHA256 of the body, no prefix"),
                _header("X-Forgejo-Signature", "forgejo: as X-Gitea-Signature"),
                _header("X-Gogs-Signature", "gogs: as X-Gitea-Signature"),
                _header("X-Gitea-Event", "gitea, forgejo, gogs: push; others are ignored"),
                _header("X-Hub-Signature", "bitbucket: sha256=<hex HMAC-SHA256 of the body>"),
                _header(
                    "X-Event-Key",
                    "bitbucket: repo:push (Cloud), repo:refs_changed (Data Center), "
                    "diagnostics:ping",
                ),
                _header("webhook-id", "generic (and gitlab signing token): the message id"),
                _header("webhook-timestamp", "generic: Unix seconds, within 5 minutes of now"),
                _header("webhook-signature", "generic: space-separated v1,<base64> entries"),
            ],
            "requestBody": {
                "required": True,
                "description": (
                    "The host's push event, as JSON (GitHub's and Gitea's form encoding, "
                    "payload=<json>, is accepted too); at most hooks.max_body bytes (5 MiB). "
                    "generic: {ref, before, after}; without ref, a request to poll."
                ),
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "ref": {"type": "string", "examples": ["refs/heads/main"]},
                                "before": {"type": "string"},
                                "after": {"type": "string"},
                            },
                        }
                    },
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["payload"],
                            "properties": {"payload": {"type": "string"}},
                        }
                    },
                },
            },
            "responses": {
                "202": {
                    "description": "A push to the tracked branch (or to a branch of "
                    "spring.labels): a poll runs now.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["accepted", "ref", "after"],
                                "properties": {
                                    "accepted": {"const": True},
                                    "ref": {"type": ["string", "null"]},
                                    "after": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                "200": {
                    "description": "Acknowledged and ignored (another ref, a tag, a "
                    "deletion, another event type), or a ping.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["ignored"],
                                        "properties": {"ignored": {"type": "string"}},
                                    },
                                    {
                                        "type": "object",
                                        "required": ["ping"],
                                        "properties": {
                                            "ping": {"const": "ok"},
                                            "message": {"type": "string"},
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
                "400": _error(
                    "Not JSON, or a push without its ref", ["malformed_body", "malformed_payload"]
                ),
                "401": _error("Signature missing, empty, wrong or stale", ["bad_signature"]),
                "404": _error(
                    "The provider has no secret configured: it is off", ["hook_disabled"]
                ),
                "405": _error("Only POST", ["method_not_allowed"]),
                "409": _error("A Standard Webhooks webhook-id already accepted", ["replayed"]),
                "413": _error("The body is over hooks.max_body", ["body_too_large"]),
                "503": _error(
                    "The provider's secret_env is not set, or its secret is not whsec_<base64>",
                    ["hook_secret_missing", "hook_secret_invalid"],
                ),
            },
        }
    }
}
