"""Bearer tokens with scopes, per environment and service.

Scopes: `admin` (everything); `read:<env glob>[/<service glob>]`; `write:<env glob>[/<service
glob>]` (the change API, and read of the same); `secrets:<env glob>[/<service glob>]` (the
plaintext of encrypted values, and read of the same); `release:<env glob>` (pins and
rollouts). A glob without `/<service glob>` covers every service of the environments it
matches. A token comes from `token`, `token_env` or `token_file`; a token file is read again
when it changes (looked at once a second, and at once on SIGHUP), so tokens rotate without a
restart; a token past its `expires_at` is refused.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from gitconf.errors import GitconfError
from gitconf.server.errors import ApiError

__all__ = [
    "ANONYMOUS_ADMIN",
    "Auth",
    "Grant",
    "Principal",
    "may_not",
    "may_not_read",
    "parse_scope",
    "visible_problems",
]

log = logging.getLogger(__name__)

KINDS = ("read", "write", "secrets", "release")
# What each kind of scope also grants.
_IMPLIES = {"read": ("read",), "write": ("write", "read"), "secrets": ("secrets", "read")}
RECHECK = 1.0  # seconds between looks at token files and expiry times


class Grant(NamedTuple):
    """One scope: a kind of access to the services matching service in the environments
    matching env."""

    kind: str
    env: str
    service: str = "*"

    def covers(self, kind: str, env: str, service: str | None) -> bool:
        """Whether this grant gives kind on (env, service); service None asks for any service."""
        if kind not in _IMPLIES.get(self.kind, (self.kind,)):
            return False
        if not fnmatch.fnmatchcase(env, self.env):
            return False
        return service is None or fnmatch.fnmatchcase(service, self.service)


def parse_scope(scope: str) -> Grant | None:
    """The grant a scope string gives (None for `admin`); ValueError if it is not one."""
    if scope == "admin":
        return None
    kind, sep, target = scope.partition(":")
    if not sep or kind not in KINDS or not target:
        raise ValueError(
            f"scope {scope!r} is not admin or <kind>:<environment glob>[/<service glob>] "
            f"with kind one of {', '.join(KINDS)}"
        )
    env, slash, service = target.partition("/")
    if not env or (slash and not service) or "/" in service:
        raise ValueError(f"scope {scope!r}: write <environment glob>[/<service glob>]")
    if kind == "release" and slash:
        raise ValueError(f"scope {scope!r}: release scopes name environments only")
    return Grant(kind, env, service or "*")


class Principal(NamedTuple):
    """Who made a request and what they may do."""

    name: str
    scopes: tuple[str, ...]
    email: str | None = None

    @property
    def admin(self) -> bool:
        """Whether the admin scope was granted."""
        return "admin" in self.scopes

    def grants(self) -> tuple[Grant, ...]:
        """The scopes as grants (admin gives none: it is everything)."""
        found = []
        for scope in self.scopes:
            grant = parse_scope(scope)
            if grant is not None:
                found.append(grant)
        return tuple(found)

    def may(self, kind: str, env: str, service: str | None = None) -> bool:
        """Whether a scope gives kind (read, write, secrets, release) on (env, service);
        service None: on at least some service of env."""
        if self.admin:
            return True
        return any(grant.covers(kind, env, service) for grant in _grants(self.scopes))

    def can_read(self, env: str, service: str | None = None) -> bool:
        """Whether the token may read (env, service), or some service of env."""
        return self.may("read", env, service)


_GRANTS: dict[tuple[str, ...], tuple[Grant, ...]] = {}


def _grants(scopes: tuple[str, ...]) -> tuple[Grant, ...]:
    found = _GRANTS.get(scopes)
    if found is None:
        found = _GRANTS[scopes] = Principal("", scopes).grants()
    return found


# With no tokens configured the server listens on loopback only, and everyone may do anything.
ANONYMOUS_ADMIN = Principal("anonymous", ("admin",))


class _Token(NamedTuple):
    secret: bytes
    principal: Principal
    expires_at: float | None  # seconds since the epoch
    file: Path | None
    file_stamp: tuple[int, int] | None  # (mtime_ns, size) when read


def _expiry(spec: Mapping[str, Any]) -> float | None:
    text = spec.get("expires_at")
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise GitconfError(
            f"tokens: {spec['name']!r}: expires_at {text!r} is not an ISO 8601 date and time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _read_file(name: str, path: Path) -> tuple[bytes, tuple[int, int]]:
    try:
        stat = path.stat()
        secret = path.read_text().strip()
    except OSError as exc:
        raise GitconfError(
            f"tokens: {name!r}: cannot read token_file {str(path)!r}: {exc.strerror}"
        ) from None
    if len(secret) < 16:
        raise GitconfError(
            f"tokens: {name!r}: token_file {str(path)!r} holds no token of 16 characters or more"
        )
    return secret.encode(), (stat.st_mtime_ns, stat.st_size)


class Auth:
    """Checks Authorization headers against the configured tokens in constant time."""

    def __init__(
        self,
        tokens: Iterable[Mapping[str, Any]],
        environ: Mapping[str, str] | None = None,
        clock: Any = time.time,
    ):
        environ = os.environ if environ is None else environ
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: list[_Token] = []
        for spec in tokens:
            name = spec["name"]
            for scope in spec["scopes"]:
                try:
                    parse_scope(scope)
                except ValueError as exc:
                    raise GitconfError(f"tokens: {name!r}: {exc}") from None
            file: Path | None = None
            stamp = None
            if spec.get("token") is not None:
                secret = str(spec["token"]).encode()
            elif spec.get("token_env"):
                value = environ.get(spec["token_env"])
                if not value:
                    raise GitconfError(
                        f"tokens: {name!r} reads token_env {spec['token_env']!r}, which is not set"
                    )
                secret = value.encode()
            else:
                file = Path(spec["token_file"])
                secret, stamp = _read_file(name, file)
            principal = Principal(name, tuple(spec["scopes"]), spec.get("email"))
            self._tokens.append(_Token(secret, principal, _expiry(spec), file, stamp))
        # Bumped whenever what a header grants may have changed (a token file rewritten, a
        # token expired): caches of granted reads start afresh (gitconf.server.fast).
        self.generation = 0
        self._next_check = 0.0
        self._expired: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Whether tokens are required."""
        return bool(self._tokens)

    def current(self) -> int:
        """The generation now: looks at token files and expiry times at most once a second."""
        now = time.monotonic()
        if now >= self._next_check and self._tokens:
            self._next_check = now + RECHECK
            self.reload(only_changed=True)
        return self.generation

    def reload(self, *, only_changed: bool = False) -> None:
        """Read the token files again (all of them, or those whose file changed) and note
        tokens that expired; a file that cannot be read keeps its token and is logged."""
        with self._lock:
            changed = False
            wall = self._clock()
            for index, token in enumerate(self._tokens):
                name = token.principal.name
                expired = token.expires_at is not None and wall >= token.expires_at
                if expired and name not in self._expired:
                    self._expired.add(name)
                    changed = True
                if token.file is None:
                    continue
                try:
                    stat = token.file.stat()
                except OSError as exc:
                    log.error("tokens: %r: cannot read token_file %s: %s", name, token.file, exc)
                    continue
                if only_changed and (stat.st_mtime_ns, stat.st_size) == token.file_stamp:
                    continue
                try:
                    secret, stamp = _read_file(name, token.file)
                except GitconfError as exc:
                    log.error("%s; keeping the token read before", exc)
                    continue
                if secret != token.secret:
                    log.info("tokens: %r: read a new token from %s", name, token.file)
                    changed = True
                self._tokens[index] = token._replace(secret=secret, file_stamp=stamp)
            if changed:
                self.generation += 1

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer ...` header; None if absent, wrong or
        expired."""
        if not self._tokens:
            return ANONYMOUS_ADMIN
        if not header or header[:7].lower() != "bearer ":
            return None
        presented = header[7:].strip().encode()
        found: _Token | None = None
        for token in self._tokens:  # compare with every token: no early exit
            if hmac.compare_digest(token.secret, presented):
                found = token
        if found is None:
            return None
        if found.expires_at is not None and self._clock() >= found.expires_at:
            return None
        return found.principal

    def session(self, presented: str, key: bytes) -> tuple[Principal, str] | None:
        """A dashboard login: the principal of a token and its binding, what the session
        cookie keeps instead of the token (see by_binding); None if the token is not valid."""
        principal = self.authenticate("Bearer " + presented) if self._tokens else None
        if principal is None:
            return None
        secret = presented.strip().encode()
        return principal, _binding(key, principal.name, secret)

    def by_binding(self, name: str, binding: str, key: bytes) -> Principal | None:
        """The principal of a dashboard session whose binding still matches a token of that
        name: None once the token was rotated, removed or has expired."""
        self.current()  # a rewritten token file ends its sessions within a second
        found: Principal | None = None
        for token in self._tokens:  # compare with every token of the name: no early exit
            if token.principal.name != name:
                continue
            matches = hmac.compare_digest(_binding(key, name, token.secret), binding)
            if matches and (token.expires_at is None or self._clock() < token.expires_at):
                found = token.principal
        return found

    def expired(self, header: str | None) -> str | None:
        """The name of the expired token a header presents, to say so in the 401."""
        if not header or header[:7].lower() != "bearer ":
            return None
        presented = header[7:].strip().encode()
        name = None
        for token in self._tokens:
            matches = hmac.compare_digest(token.secret, presented)
            if matches and token.expires_at is not None and self._clock() >= token.expires_at:
                name = token.principal.name
        return name


def _binding(key: bytes, name: str, secret: bytes) -> str:
    """An HMAC of a token under the dashboard's key: it names the token without revealing it."""
    return hmac.new(key, name.encode() + b"\0" + secret, "sha256").hexdigest()


def visible_problems(
    principal: Principal | None, problems: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The problems a caller may see: a problem in environments/<env>/<service>... shows a
    config value of that environment and service, so only callers who may read them see it."""
    if principal is None or principal.admin:
        return problems
    visible = []
    for problem in problems:
        path = problem.get("path") or ""
        parts = path.split("/")
        if parts[0] == "environments" and len(parts) > 2:
            service = parts[2].rsplit(".", 1)[0] if len(parts) == 3 else parts[2]
            if service == "_all":
                if not principal.can_read(parts[1]):
                    continue
            elif not principal.can_read(parts[1], service):
                continue
        visible.append(problem)
    return visible


def may_not(principal: Principal, kind: str, env: str, service: str | None = None) -> ApiError:
    """The 403 of a token lacking a kind of scope (read, write, secrets, release)."""
    target = f"{env}/{service}" if service else f"environment {env!r}"
    what = {
        "read": "read",
        "write": "change",
        "secrets": "read the secrets of",
        "release": "release",
    }
    scope = f"{kind}:{env}" + (f"/{service}" if service else "")
    return ApiError(
        403,
        "forbidden",
        f"token {principal.name!r} may not {what.get(kind, kind)} {target}; it needs the scope "
        f"{scope!r} (or one whose globs cover it)",
        actor=principal.name,
    )


def may_not_read(principal: Principal, env: str, service: str | None = None) -> ApiError:
    """The 403 of a token reading a config its scopes do not cover."""
    return may_not(principal, "read", env, service)
