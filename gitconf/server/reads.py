"""The config read path, shared by the Flask view, the fast path and the long polls.

A read is a lookup of bytes prepared at publish time; nothing here touches YAML. `?ref=`
revisions come from gitconf.server.refs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from gitconf.core.render import RenderError
from gitconf.publisher import Publisher
from gitconf.served import Body, ServedRevision
from gitconf.server.auth import Auth, Principal, may_not_read
from gitconf.server.errors import ApiError
from gitconf.server.formats import etag_matches
from gitconf.server.refs import RefCache
from gitconf.server.responses import revision_headers

__all__ = ["ConfigReader", "Reply", "Wait", "secrets_loading", "too_many_waiters"]


class Reply(NamedTuple):
    """A ready response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


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


class Wait(NamedTuple):
    """A long poll in progress: the read, and the revision and body it was last measured on."""

    env: str
    service: str
    fmt: str
    if_none_match: str | None
    seconds: float
    served: ServedRevision
    body: Body
    plaintext: bool = False  # the token may read the config's secrets
    instance: str | None = None  # X-Gitconf-Instance: which side of a rollout it is on


def secrets_loading(env: str, service: str) -> ApiError:
    """The 503 of a secrets-scoped read right after a restart, before the compile worker has
    sent the plaintext again (it is never persisted)."""
    return ApiError(
        503,
        "secrets_loading",
        f"the secrets of {env}/{service} are being loaded after a restart; retry shortly",
        headers={"Retry-After": "2"},
    )


def too_many_waiters() -> ApiError:
    """The 503 past max_waiters."""
    return ApiError(
        503,
        "too_many_waiters",
        "too many long polls are waiting; retry shortly",
        headers={"Retry-After": "1"},
    )


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
        # Told of each instance reading an environment in a rollout: (rollout id, instance,
        # the revision it was served), for GET /v1/rollouts/<env> (gitconf.release).
        self.seen: Callable[[str, str, str], None] | None = None
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
            expired = self.auth.expired(authorization)
            message = (
                f"token {expired!r} has expired (expires_at in the server settings); use a new one"
                if expired
                else "a valid bearer token is required: send Authorization: Bearer <token>"
            )
            raise ApiError(
                401,
                "unauthorized",
                message,
                headers={"WWW-Authenticate": 'Bearer realm="gitconf"'},
            )
        return principal

    def require_read(
        self, authorization: str | None, env: str, service: str | None = None
    ) -> Principal:
        """The caller if they may read (env, service), or some service of env when service is
        None; else ApiError 401 or 403."""
        principal = self.principal(authorization)
        if not principal.can_read(env, service):
            raise may_not_read(principal, env, service)
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

    def _view(self, served: ServedRevision, env: str, instance: str | None) -> ServedRevision:
        """The side of env's rollout the instance is on; the instance is noted as seen."""
        view = served.view_for(env, instance)
        live = served.live.get(env)
        if live is not None and instance and self.seen is not None:
            self.seen(live.id, instance, view.revision_of(env))
        return view

    def not_found(self, served: ServedRevision, env: str, service: str | None) -> ApiError:
        """The 404 for an unknown environment or service, naming what exists."""
        if env not in served.environments:
            known = ", ".join(served.environments)
            return ApiError(
                404, "unknown_environment", f"unknown environment {env!r}; known: {known}"
            )
        known = ", ".join(served.services)
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
        instance: str | None = None,
    ) -> Reply:
        """GET /v1/config/<env>/<service>, waiting in this thread for a long poll.

        The server's own HTTP host waits for long polls on its event loop instead
        (gitconf.server.waits), with begin() and settle(), which this calls too.
        """
        outcome = self.begin(
            env,
            service,
            fmt=fmt,
            ref=ref,
            wait=wait,
            if_none_match=if_none_match,
            authorization=authorization,
            instance=instance,
        )
        if isinstance(outcome, Reply):
            return outcome
        return self._long_poll(outcome)

    def begin(
        self,
        env: str,
        service: str,
        *,
        fmt: str = "json",
        ref: str | None = None,
        wait: str | None = None,
        if_none_match: str | None = None,
        authorization: str | None = None,
        instance: str | None = None,
    ) -> Reply | Wait:
        """A config read answered now (a Reply), or the long poll it asks for (a Wait).

        ApiError for everything refused: auth, a bad wait, an unknown config. instance
        (X-Gitconf-Instance) picks the side of a rollout the reader is on.
        """
        principal = self.require_read(authorization, env, service)
        seconds = self._wait_seconds(wait)
        served = self.revision(ref, principal)
        if not ref and served.live:
            served = self._view(served, env, instance)
        plaintext = principal.may("secrets", env, service)
        body = self.body_for(served, env, service, principal, fmt)
        if body is None:
            raise self.not_found(served, env, service)
        shown = self._secret_headers(served, env, service, plaintext)
        if not etag_matches(if_none_match, body.etag):
            return self.reply(200, body, served.revision_of(env), shown)
        # `*` matches every version, so no change could end the wait: answer at once.
        if seconds and not ref and (if_none_match or "").strip() != "*":
            return Wait(
                env, service, fmt, if_none_match, seconds, served, body, plaintext, instance
            )
        return self.reply(304, body, served.revision_of(env), shown)

    def body_for(
        self,
        served: ServedRevision,
        env: str,
        service: str,
        principal: Principal,
        fmt: str = "json",
    ) -> Body | None:
        """The body of one config that principal is served (with its secrets if a secrets:
        scope covers it); None if there is no such config. No read check: the caller's."""
        return self._body(served, env, service, fmt, principal.may("secrets", env, service))

    def _body(
        self, served: ServedRevision, env: str, service: str, fmt: str, plaintext: bool
    ) -> Body | None:
        if plaintext and not served.secrets_ready(env, service):
            raise secrets_loading(env, service)
        return _rendered(lambda: served.body(env, service, fmt, plaintext), f"{env}/{service}", fmt)

    @staticmethod
    def _secret_headers(
        served: ServedRevision, env: str, service: str, plaintext: bool
    ) -> list[tuple[str, str]]:
        """X-Gitconf-Secrets: <count> on a body with secrets in plaintext (clients keep it out of
        their disk cache); X-Gitconf-Redacted: <count> on one without them."""
        count = served.redacted.get((env, service), 0)
        if not count:
            return []
        return [("X-Gitconf-Secrets" if plaintext else "X-Gitconf-Redacted", str(count))]

    def settle(self, wait: Wait, current: ServedRevision | None) -> Reply | Wait:
        """After a publish: the long poll's 200 if its config changed, else the Wait again
        (measured from current); ApiError 404 if the config is gone."""
        if current is None or current is wait.served:
            return wait
        if current.live:
            current = self._view(current, wait.env, wait.instance)
            if current is wait.served:
                return wait
        new = self._body(current, wait.env, wait.service, wait.fmt, wait.plaintext)
        if new is None:
            raise self.not_found(current, wait.env, wait.service)
        if not etag_matches(wait.if_none_match, new.etag):
            shown = self._secret_headers(current, wait.env, wait.service, wait.plaintext)
            return self.reply(200, new, current.revision_of(wait.env), shown)
        return wait._replace(served=current, body=new)

    def timed_out(self, wait: Wait) -> Reply:
        """The 304 of a long poll whose wait ended with nothing changed."""
        shown = self._secret_headers(wait.served, wait.env, wait.service, wait.plaintext)
        return self.reply(304, wait.body, wait.served.revision_of(wait.env), shown)

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

    def _long_poll(self, wait: Wait) -> Reply:
        if self._waiters is None or not self._waiters.acquire(blocking=False):
            raise too_many_waiters()
        with self._waiting_lock:
            self._waiting += 1
        try:
            deadline = time.monotonic() + wait.seconds
            generation = self.publisher.generation
            # Until the deadline, or until the server stops: then as if the wait had ended.
            while (remaining := deadline - time.monotonic()) > 0 and not self.publisher.closing:
                generation = self.publisher.wait_for_change(generation, remaining)
                outcome = self.settle(wait, self.publisher.served)
                if isinstance(outcome, Reply):
                    return outcome
                wait = outcome
            return self.timed_out(wait)
        finally:
            with self._waiting_lock:
                self._waiting -= 1
            self._waiters.release()

    @staticmethod
    def reply(
        status: int, body: Body, revision: str, extra: list[tuple[str, str]] | None = None
    ) -> Reply:
        """A 200 with the body, or a 304 with its validators only."""
        headers = revision_headers(body.etag, revision) + (extra or [])
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
        body = self.prepared(build, served, env, service, fmt)
        status = 304 if etag_matches(if_none_match, body.etag) else 200
        return self.reply(status, body, served.revision_of(env))

    def prepared(
        self,
        build: Callable[[ServedRevision], Body | None],
        served: ServedRevision,
        env: str,
        service: str | None,
        fmt: str = "json",
    ) -> Body:
        """Another prepared body (a whole environment, an explain); ApiError 404 if there is
        no such config, 422 if the format cannot carry it."""
        body = _rendered(lambda: build(served), f"{env}/{service}" if service else env, fmt)
        if body is None:
            raise self.not_found(served, env, service)
        return body
