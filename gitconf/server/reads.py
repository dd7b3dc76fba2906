"""The config read path, shared by the Flask view and the fast WSGI dispatch in front of it.

A read is a lookup of bytes prepared at publish time; nothing here touches Git or YAML
except `?ref=`, which compiles an older revision once and keeps it in a small LRU cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from gitconf.core.compile import compile_fileset
from gitconf.core.render import RenderError
from gitconf.errors import GitconfError, UsageError
from gitconf.git.remote import Mirror
from gitconf.runtime import collector_paused
from gitconf.served import Body, Publisher, ServedRevision, prepare, snapshot_of
from gitconf.server.auth import Auth, Principal, visible_problems
from gitconf.server.errors import ApiError
from gitconf.store.revisions import problem_doc

__all__ = ["ConfigReader", "RefCache", "Reply", "etag_matches", "negotiate"]

FORMATS = {"json", "yaml", "env"}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class Reply(NamedTuple):
    """A ready response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def negotiate(query_format: str | None, accept: str | None) -> str:
    """The response format from ?format= or the Accept header; JSON by default."""
    if query_format is not None:
        if query_format not in FORMATS:
            raise ApiError(
                400, "bad_format", f"format {query_format!r} is not one of json, yaml, env"
            )
        return query_format
    if accept and any(t in accept for t in _YAML_TYPES):
        return "yaml"
    return "json"


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names etag (weak comparison, as RFC 9110 asks for it)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def _rendered(make: Callable[[], Body | None], what: str, fmt: str) -> Body | None:
    """make(); a config the format cannot carry is a 422 that says which keys and why."""
    try:
        return make()
    except RenderError as exc:
        raise ApiError(
            422,
            "not_representable",
            f"{what} cannot be served as {fmt}: {exc}",
        ) from None


class RefCache:
    """Revisions other than the served one, compiled on demand from the mirror; LRU-bounded."""

    def __init__(self, mirror: Mirror | None, size: int) -> None:
        self.mirror = mirror
        self.size = size
        self._cache: OrderedDict[str, ServedRevision] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, ref: str, served: ServedRevision | None, principal: Principal | None = None
    ) -> ServedRevision:
        """The revision a ref names; ApiError 404 if unknown, 422 if that commit is invalid."""
        if self.mirror is None:
            raise ApiError(404, "unknown_ref", "this server has no repository to read refs from")
        # A branch, tag or commit, optionally ~N or ^: no revparse searches (`:/text`,
        # `^{/text}`), reflog (`@{`) or ranges, which would make a request walk history.
        if (
            len(ref) > 255
            or ref.startswith("-")
            or any(c in ref for c in "\0\n\r :{}")
            or ".." in ref
        ):
            raise ApiError(400, "bad_ref", f"{ref!r} is not a branch, tag or commit")
        try:
            sha, files = self.mirror.fileset(ref)
        except (UsageError, GitconfError):
            raise ApiError(
                404, "unknown_ref", f"unknown ref {ref!r}: no branch, tag or commit of that name"
            ) from None
        if served is not None and served.revision == sha:
            return served
        with self._lock:
            hit = self._cache.get(sha)
            if hit is not None:
                self._cache.move_to_end(sha)
                return hit
        with collector_paused():
            result = compile_fileset(files)
        if result.revision is None:
            shown = visible_problems(principal, [problem_doc(p) for p in result.problems])
            raise ApiError(
                422,
                "invalid_revision",
                f"{ref} ({sha[:12]}) is not a valid revision: {len(result.problems)} problem(s)",
                problems=[p["text"] for p in shown],
            )
        compiled = prepare(snapshot_of(sha, result.revision))
        with self._lock:
            self._cache[sha] = compiled
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return compiled


class ConfigReader:
    """Answers config reads: auth, lookup, ETag/304 and long polls."""

    def __init__(
        self,
        publisher: Publisher,
        auth: Auth,
        refs: RefCache,
        max_waiters: int = 64,
        max_wait: float = 300.0,
    ) -> None:
        self.publisher = publisher
        self.auth = auth
        self.refs = refs
        self.max_wait = max_wait
        self._waiters = threading.BoundedSemaphore(max_waiters) if max_waiters > 0 else None
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Long polls waiting now."""
        return self._waiting

    def principal(self, authorization: str | None) -> Principal:
        """The caller; ApiError 401 without a valid token."""
        principal = self.auth.authenticate(authorization)
        if principal is None:
            raise ApiError(
                401,
                "unauthorized",
                "a valid bearer token is required: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="gitconf"'},
            )
        return principal

    def require_read(self, authorization: str | None, env: str) -> Principal:
        """The caller if they may read env; else ApiError 401 or 403."""
        principal = self.principal(authorization)
        if not principal.can_read(env):
            raise ApiError(
                403, "forbidden", f"token {principal.name!r} may not read environment {env!r}"
            )
        return principal

    def revision(self, ref: str | None, principal: Principal | None = None) -> ServedRevision:
        """The served revision, or the one ref names (its problems shown as principal may)."""
        served = self.publisher.served
        if ref:
            return self.refs.get(ref, served, principal)
        if served is None:
            raise ApiError(
                503,
                "not_ready",
                "no valid revision has been loaded yet; see /v1/status",
                headers={"Retry-After": "1"},
            )
        return served

    def not_found(self, served: ServedRevision, env: str, service: str | None) -> ApiError:
        """The 404 for an unknown environment or service, naming what exists."""
        if env not in served.snapshot.environments:
            known = ", ".join(served.snapshot.environments)
            return ApiError(
                404, "unknown_environment", f"unknown environment {env!r}; known: {known}"
            )
        known = ", ".join(served.snapshot.services)
        return ApiError(404, "unknown_service", f"unknown service {service!r}; known: {known}")

    def config(
        self,
        env: str,
        service: str,
        *,
        fmt: str = "json",
        ref: str | None = None,
        wait: str | None = None,
        if_none_match: str | None = None,
        authorization: str | None = None,
    ) -> Reply:
        """GET /v1/config/<env>/<service>."""
        principal = self.require_read(authorization, env)
        seconds = self._wait_seconds(wait)
        served = self.revision(ref, principal)
        body = _rendered(lambda: served.body(env, service, fmt), f"{env}/{service}", fmt)
        if body is None:
            raise self.not_found(served, env, service)
        if not etag_matches(if_none_match, body.etag):
            return self.reply(200, body, served.revision)
        # `*` matches every version, so no change could end the wait: answer at once.
        if seconds and not ref and (if_none_match or "").strip() != "*":
            return self._long_poll(env, service, fmt, if_none_match, seconds, served, body)
        return self.reply(304, body, served.revision)

    def _wait_seconds(self, wait: str | None) -> float:
        if wait is None:
            return 0.0
        try:
            seconds = float(wait)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= self.max_wait or seconds != seconds:
            raise ApiError(
                400,
                "bad_wait",
                f"wait must be a number of seconds from 0 to {self.max_wait:g}, got {wait!r}",
            )
        return seconds

    def _long_poll(
        self,
        env: str,
        service: str,
        fmt: str,
        inm: str | None,
        seconds: float,
        served: ServedRevision,
        body: Body,
    ) -> Reply:
        if self._waiters is None or not self._waiters.acquire(blocking=False):
            raise ApiError(
                503,
                "too_many_waiters",
                "too many long polls are waiting; retry shortly",
                headers={"Retry-After": "1"},
            )
        with self._waiting_lock:
            self._waiting += 1
        try:
            deadline = time.monotonic() + seconds
            generation = self.publisher.generation
            # Until the deadline, or until the server stops: then as if the wait had ended.
            while (remaining := deadline - time.monotonic()) > 0 and not self.publisher.closing:
                generation = self.publisher.wait_for_change(generation, remaining)
                current = self.publisher.served
                if current is None:
                    continue
                new = current.body(env, service, fmt)
                if new is None:
                    raise self.not_found(current, env, service)
                served, body = current, new
                if not etag_matches(inm, new.etag):
                    return self.reply(200, new, current.revision)
            return self.reply(304, body, served.revision)
        finally:
            with self._waiting_lock:
                self._waiting -= 1
            self._waiters.release()

    @staticmethod
    def reply(status: int, body: Body, revision: str) -> Reply:
        """A 200 with the body, or a 304 with its validators only."""
        headers = [
            ("ETag", body.etag),
            ("X-Gitconf-Revision", revision),
            ("Cache-Control", "no-cache"),
            ("Vary", "Accept, Authorization"),
        ]
        if status == 304:
            return Reply(304, headers, b"")
        headers.append(("Content-Type", body.content_type))
        headers.append(("Content-Length", str(len(body.data))))
        return Reply(status, headers, body.data)

    def get_body(
        self,
        build: Callable[[ServedRevision], Body | None],
        served: ServedRevision,
        if_none_match: str | None,
        env: str,
        service: str | None,
        fmt: str = "json",
    ) -> Reply:
        """A reply for another prepared body (a whole environment, an explain)."""
        body = _rendered(lambda: build(served), f"{env}/{service}" if service else env, fmt)
        if body is None:
            raise self.not_found(served, env, service)
        status = 304 if etag_matches(if_none_match, body.etag) else 200
        return self.reply(status, body, served.revision)
