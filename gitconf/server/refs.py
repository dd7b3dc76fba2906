"""Revisions other than the served one (`?ref=`, diffs, explain documents), from the compile
worker: one compile per commit however many ask, bounded caches, rejections remembered."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from gitconf.core.diff import ConfigChange
from gitconf.errors import GitconfError, Problem, UsageError, problem_doc
from gitconf.git.remote import Mirror
from gitconf.served import ServedRevision, from_built
from gitconf.server.auth import Principal, visible_problems
from gitconf.server.errors import ApiError
from gitconf.worker.messages import (
    BaseConfig,
    BaseLayers,
    DiffBetween,
    Explain,
    Failed,
    Refused,
    Revision,
)
from gitconf.worker.proxy import CompileWorker, WorkerBusy, WorkerDied, limit_problem

__all__ = ["RefCache", "worker_busy", "worker_died", "worker_explainer"]

REF_WAIT = 30.0  # seconds a ?ref= read waits for the compile worker before a 503
EXPLAIN_WAIT = 10.0  # likewise for an explain of the served revision
REF_CACHE_BYTES = 64 * 1024 * 1024
REJECTIONS_KEPT = 64


def worker_busy(what: str) -> ApiError:
    """The 503 of a request that waited too long for the compile worker."""
    return ApiError(
        503,
        "compile_worker_busy",
        f"{what} needs the compile worker, which is busy compiling another revision; retry shortly",
        headers={"Retry-After": "5"},
    )


def worker_died(died: WorkerDied, doing: str = "") -> ApiError:
    """The 503 of a request whose compile worker ended while answering it (doing: `while
    compiling 1a2b3c4d5e6f`)."""
    during = f" {doing}" if doing else ""
    return ApiError(
        503,
        "compile_worker_failed",
        f"the compile worker ended{during}: {died.reason}",
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
            raise worker_busy(f"the provenance of {env}/{service}") from None
        except WorkerDied as died:
            raise worker_died(died, f"while explaining {env}/{service}") from None
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
            if not served.pinned:
                return served
            if served.unpinned is not None:
                return served.unpinned  # ?ref= names a commit: its own configs, not the pins
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
                raise worker_busy(f"revision {sha[:12]}")
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
            raise worker_busy(f"revision {sha[:12]}") from None
        except WorkerDied as died:
            if died.limit is None:
                raise worker_died(died, f"while compiling {sha[:12]}") from None
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

    def base(self, sha: str, service: str) -> BaseConfig | None:
        """The base layers of a service of a compiled revision merged alone, from the compile
        worker (None: no such service); ApiError 503 when the worker is busy or failed."""
        if self.compiler is None:
            return None
        try:
            reply = self.compiler.call(BaseLayers(sha, service), wait=REF_WAIT)
        except WorkerBusy:
            raise worker_busy(f"the base layers of {service}") from None
        except WorkerDied as died:
            raise worker_died(died, f"while merging the base layers of {service}") from None
        if isinstance(reply, Failed):
            raise ApiError(
                500, "base_failed", f"merging the base layers of {service}: {reply.message}"
            )
        return reply if isinstance(reply, BaseConfig) else None

    def diff(self, old: str, new: str) -> list[ConfigChange]:
        """The effective changes between two commits, from the compile worker."""
        assert self.compiler is not None
        try:
            reply = self.compiler.call(DiffBetween(old, new), wait=REF_WAIT)
        except WorkerBusy:
            raise worker_busy("a diff") from None
        except WorkerDied as died:
            raise worker_died(died) from None
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
