"""The config read path, shared by the Flask view and the fast WSGI dispatch in front of it.

A read is a lookup of bytes prepared at publish time; nothing here touches YAML. `?ref=`
asks the compile worker for an older revision once and keeps it in a cache bounded by bytes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from gitconf.core.diff import ConfigChange
from gitconf.core.render import RenderError
from gitconf.errors import GitconfError, Problem, UsageError
from gitconf.git.remote import Mirror
from gitconf.publisher import Publisher
from gitconf.served import Body, ServedRevision, from_built
from gitconf.server.auth import Auth, Principal, visible_problems
from gitconf.server.errors import ApiError
from gitconf.store.revisions import problem_doc
from gitconf.worker.messages import DiffBetween, Explain, Failed, Refused, Revision
from gitconf.worker.proxy import CompileWorker, WorkerBusy, WorkerDied, limit_problem

__all__ = [
    "ConfigReader",
    "RefCache",
    "Reply",
    "Wait",
    "etag_matches",
    "negotiate",
    "worker_explainer",
]

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


REF_WAIT = 30.0  # seconds a ?ref= read waits for the compile worker before a 503
EXPLAIN_WAIT = 10.0  # likewise for an explain of the served revision
REF_CACHE_BYTES = 64 * 1024 * 1024
REJECTIONS_KEPT = 64


def _busy(what: str) -> ApiError:
    return ApiError(
        503,
        "compile_worker_busy",
        f"{what} needs the compile worker, which is busy compiling another revision; retry shortly",
        headers={"Retry-After": "5"},
    )


def worker_explainer(compiler: CompileWorker | None) -> Callable[[str, str, str], bytes | None]:
    """Explain documents from the compile worker; ApiError 503 when it is busy or failed."""

    def explain(sha: str, env: str, service: str) -> bytes | None:
        if compiler is None:
            return None
        try:
            reply = compiler.call(Explain(sha, env, service), wait=EXPLAIN_WAIT)
        except WorkerBusy:
            raise _busy(f"the provenance of {env}/{service}") from None
        except WorkerDied as died:
            raise ApiError(
                503,
                "compile_worker_failed",
                f"the compile worker ended while explaining {env}/{service}: {died.reason}",
                headers={"Retry-After": "5"},
            ) from None
        if isinstance(reply, Failed):
            raise ApiError(500, "explain_failed", f"explaining {env}/{service}: {reply.message}")
        return reply if isinstance(reply, bytes) else None

    return explain


class RefCache:
    """Revisions other than the served one, compiled on demand by the compile worker.

    One compile per commit however many requests ask at once (single flight); valid revisions
    kept up to `size` of them and max_bytes of bodies, least recently used dropped; rejected
    ones are remembered too, so asking again answers 422 from memory.
    """

    def __init__(
        self,
        mirror: Mirror | None,
        compiler: CompileWorker | None,
        explainer: Callable[[str, str, str], bytes | None] | None = None,
        size: int = 8,
        max_bytes: int = REF_CACHE_BYTES,
    ) -> None:
        self.mirror = mirror
        self.compiler = compiler
        self.explainer = explainer
        self.size = size
        self.max_bytes = max_bytes
        self._cache: OrderedDict[str, ServedRevision] = OrderedDict()
        self._bytes = 0
        self._rejected: OrderedDict[str, list[Problem]] = OrderedDict()
        self._flights: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> str:
        """The commit a ref names; ApiError 400 for a malformed ref, 404 for an unknown one."""
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
            return self.mirror.resolve(ref)
        except (UsageError, GitconfError):
            raise ApiError(
                404, "unknown_ref", f"unknown ref {ref!r}: no branch, tag or commit of that name"
            ) from None

    def get(
        self, ref: str, served: ServedRevision | None, principal: Principal | None = None
    ) -> ServedRevision:
        """The revision a ref names; ApiError 404 if unknown, 422 if that commit is invalid."""
        sha = self.resolve(ref)
        if served is not None and served.revision == sha:
            return served
        while True:
            with self._lock:
                hit = self._cache.get(sha)
                if hit is not None:
                    self._cache.move_to_end(sha)
                    return hit
                problems = self._rejected.get(sha)
                if problems is not None:
                    raise _invalid(ref, sha, problems, principal)
                flight = self._flights.get(sha)
                if flight is None:
                    self._flights[sha] = threading.Event()
                    break
            # Another request compiles this commit now: wait for it, then look again.
            if not flight.wait(REF_WAIT):
                raise _busy(f"revision {sha[:12]}")
        try:
            compiled = self._compile(sha)
        finally:
            with self._lock:
                self._flights.pop(sha).set()
        if isinstance(compiled, list):
            raise _invalid(ref, sha, compiled, principal)
        return compiled

    def _compile(self, sha: str) -> ServedRevision | list[Problem]:
        assert self.compiler is not None
        try:
            reply = self.compiler.call(Revision(sha), wait=REF_WAIT)
        except WorkerBusy:
            raise _busy(f"revision {sha[:12]}") from None
        except WorkerDied as died:
            if died.limit is None:
                raise ApiError(
                    503,
                    "compile_worker_failed",
                    f"the compile worker ended while compiling {sha[:12]}: {died.reason}",
                    headers={"Retry-After": "5"},
                ) from None
            reply = Refused(
                sha, [limit_problem(died, self.compiler.timeout, self.compiler.max_memory)]
            )
        if isinstance(reply, Failed):
            raise ApiError(500, "compile_failed", f"compiling {sha[:12]}: {reply.message}")
        with self._lock:
            if isinstance(reply, Refused):
                self._rejected[sha] = reply.problems
                while len(self._rejected) > REJECTIONS_KEPT:
                    self._rejected.popitem(last=False)
                return reply.problems
            compiled = from_built(reply, None, explainer=self.explainer)
            assert compiled is not None
            size = compiled.size()
            self._cache[sha] = compiled
            self._bytes += size
            while (self._bytes > self.max_bytes or len(self._cache) > self.size) and len(
                self._cache
            ) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._bytes -= dropped.size()
            return compiled

    def diff(self, old: str, new: str) -> list[ConfigChange]:
        """The effective changes between two commits, from the compile worker."""
        assert self.compiler is not None
        try:
            reply = self.compiler.call(DiffBetween(old, new), wait=REF_WAIT)
        except WorkerBusy:
            raise _busy("a diff") from None
        except WorkerDied as died:
            raise ApiError(
                503, "compile_worker_failed", f"the compile worker ended: {died.reason}",
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip
        if isinstance(reply, Refused):
            raise ApiError(
                422,
                "invalid_revision",
                f"{reply.sha[:12]} is not a valid revision: {len(reply.problems)} problem(s)",
            )
        if isinstance(reply, Failed):
            raise ApiError(500, "diff_failed", reply.message)
        changes: list[ConfigChange] = reply
        return changes


def _invalid(ref: str, sha: str, problems: list[Problem], principal: Principal | None) -> ApiError:
    shown = visible_problems(principal, [problem_doc(p) for p in problems])
    return ApiError(
        422,
        "invalid_revision",
        f"{ref} ({sha[:12]}) is not a valid revision: {len(problems)} problem(s)",
        problems=[p["text"] for p in shown],
    )


class Wait(NamedTuple):
    """A long poll in progress: the read, and the revision and body it was last measured on."""

    env: str
    service: str
    fmt: str
    if_none_match: str | None
    seconds: float
    served: ServedRevision
    body: Body


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
    ) -> Reply | Wait:
        """A config read answered now (a Reply), or the long poll it asks for (a Wait).

        ApiError for everything refused: auth, a bad wait, an unknown config.
        """
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
            return Wait(env, service, fmt, if_none_match, seconds, served, body)
        return self.reply(304, body, served.revision)

    def settle(self, wait: Wait, current: ServedRevision | None) -> Reply | Wait:
        """After a publish: the long poll's 200 if its config changed, else the Wait again
        (measured from current); ApiError 404 if the config is gone."""
        if current is None or current is wait.served:
            return wait
        new = _rendered(lambda: current.body(wait.env, wait.service, wait.fmt), wait.env, wait.fmt)
        if new is None:
            raise self.not_found(current, wait.env, wait.service)
        if not etag_matches(wait.if_none_match, new.etag):
            return self.reply(200, new, current.revision)
        return wait._replace(served=current, body=new)

    def timed_out(self, wait: Wait) -> Reply:
        """The 304 of a long poll whose wait ended with nothing changed."""
        return self.reply(304, wait.body, wait.served.revision)

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
