"""Bearer tokens with scopes: `admin`, or `read:<environment glob>`."""

from __future__ import annotations

import fnmatch
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from gitconf.errors import GitconfError
from gitconf.server.errors import ApiError

__all__ = ["ANONYMOUS_ADMIN", "Auth", "Principal", "may_not_read"]


class Principal(NamedTuple):
    """Who made a request and what they may do."""

    name: str
    scopes: tuple[str, ...]

    @property
    def admin(self) -> bool:
        """Whether the admin scope was granted."""
        return "admin" in self.scopes

    def can_read(self, env: str) -> bool:
        """Whether a read scope's glob matches env (admin reads everything)."""
        if self.admin:
            return True
        return any(
            fnmatch.fnmatchcase(env, scope[5:])
            for scope in self.scopes
            if scope.startswith("read:")
        )


# With no tokens configured the server listens on loopback only, and everyone may do anything.
ANONYMOUS_ADMIN = Principal("anonymous", ("admin",))


class Auth:
    """Checks Authorization headers against the configured tokens in constant time."""

    def __init__(
        self, tokens: Iterable[Mapping[str, Any]], environ: Mapping[str, str] | None = None
    ):
        environ = os.environ if environ is None else environ
        self._tokens: list[tuple[bytes, Principal]] = []
        for spec in tokens:
            secret = spec.get("token")
            if secret is None:
                secret = environ.get(spec["token_env"])
                if not secret:
                    raise GitconfError(
                        f"tokens: {spec['name']!r} reads token_env {spec['token_env']!r}, "
                        "which is not set"
                    )
            self._tokens.append((secret.encode(), Principal(spec["name"], tuple(spec["scopes"]))))

    @property
    def enabled(self) -> bool:
        """Whether tokens are required."""
        return bool(self._tokens)

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer ...` header; None if absent or wrong."""
        if not self._tokens:
            return ANONYMOUS_ADMIN
        if not header or header[:7].lower() != "bearer ":
            return None
        presented = header[7:].strip().encode()
        found: Principal | None = None
        for secret, principal in self._tokens:  # compare with every token: no early exit
            if hmac.compare_digest(secret, presented):
                found = principal
        return found


def visible_problems(
    principal: Principal | None, problems: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The problems a caller may see: a problem in environments/<env>/ shows a config value
    of that environment, so only callers who may read <env> see it."""
    if principal is None or principal.admin:
        return problems
    visible = []
    for problem in problems:
        path = problem.get("path") or ""
        parts = path.split("/")
        if parts[0] == "environments" and len(parts) > 2 and not principal.can_read(parts[1]):
            continue
        visible.append(problem)
    return visible


def may_not_read(principal: Principal, env: str) -> ApiError:
    """The 403 of a token reading an environment its scopes do not cover."""
    return ApiError(403, "forbidden", f"token {principal.name!r} may not read environment {env!r}")
