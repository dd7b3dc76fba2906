"""Poll the remote: fetch, and when the branch moved, compile and publish or reject.

`tick()` is one poll as a plain function. `Poller` serialises ticks, backs off after
failures, collapses bursts of immediate requests (webhooks) into one tick, and runs the
periodic safety-net tick from an APScheduler job.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from gitconf.core.compile import CompileCache, CompileResult, compile_fileset
from gitconf.errors import GitconfError, Problem
from gitconf.git.remote import FetchError, Mirror
from gitconf.metrics import Metrics
from gitconf.runtime import collector_paused
from gitconf.served import Publisher, ServedRevision, snapshot_of
from gitconf.store.revisions import RevisionLog

__all__ = ["PollContext", "PollStatus", "Poller", "tick"]

log = logging.getLogger(__name__)

PublishedHook = Callable[[ServedRevision | None, ServedRevision], None]
RejectedHook = Callable[[str, list[Problem]], None]


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PollStatus:
    """What the last polls did, for /v1/status and the backoff."""

    last_poll_at: str | None = None
    last_result: str | None = None
    last_error: str | None = None
    last_success_at: str | None = None
    consecutive_failures: int = 0
    retry_at: float = 0.0
    head: str | None = None
    store_error: str | None = None


@dataclass
class PollContext:
    """Everything a tick uses; built once by bootstrap."""

    mirror: Mirror
    publisher: Publisher
    revisions: RevisionLog
    metrics: Metrics
    status: PollStatus = field(default_factory=PollStatus)
    cache: CompileCache = field(default_factory=CompileCache)
    on_published: list[PublishedHook] = field(default_factory=list)
    on_rejected: list[RejectedHook] = field(default_factory=list)


def tick(ctx: PollContext) -> str:
    """One poll. Returns unchanged, published, rejected or error."""
    status = ctx.status
    status.last_poll_at = _now_iso()
    started = time.perf_counter()
    try:
        head = ctx.mirror.fetch()
    except (FetchError, GitconfError) as exc:
        return _finish(ctx, "error", str(exc))
    finally:
        ctx.metrics.fetch_seconds.observe(time.perf_counter() - started)
    status.head = head
    served = ctx.publisher.served
    if served is not None and served.revision == head:
        return _finish(ctx, "unchanged")
    if _known_rejected(ctx, head):
        return _finish(ctx, "unchanged")
    started = time.perf_counter()
    try:
        sha, files = ctx.mirror.fileset(head)
        with collector_paused():
            result = compile_fileset(files, ctx.cache)
    except GitconfError as exc:
        return _finish(ctx, "error", str(exc))
    except Exception as exc:  # a bug of gitconf's must not pass for a healthy poll
        log.exception("compiling %s failed", head[:12])
        ctx.cache = CompileCache()  # it may hold half of what the failed compile did
        problem = Problem(
            None, f"internal error compiling this commit: {exc.__class__.__name__}: {exc}"
        )
        result = CompileResult(None, [problem])
        sha = head
    ctx.metrics.compile_seconds.observe(time.perf_counter() - started)
    if result.revision is None:
        _record(ctx, sha, "rejected", result.problems)
        ctx.metrics.rejected.inc()
        log.warning("rejected %s: %d problem(s)", sha[:12], len(result.problems))
        for reject_hook in ctx.on_rejected:
            _safely(reject_hook, sha, result.problems)
        return _finish(ctx, "rejected")
    previous = ctx.publisher.served
    base = previous.snapshot if previous is not None else None
    snapshot = snapshot_of(sha, result.revision, _now_iso(), base)
    new = ctx.publisher.publish(snapshot)
    ctx.metrics.published.inc()
    ctx.metrics.set_served(sha)
    _record(ctx, sha, "published")
    log.info("published %s", sha[:12])
    for publish_hook in ctx.on_published:
        _safely(publish_hook, previous, new)
    return _finish(ctx, "published")


def _known_rejected(ctx: PollContext, head: str) -> bool:
    if ctx.status.last_result == "rejected" and ctx.status.head == head:
        return True
    try:
        return ctx.revisions.state_of(head) == "rejected"
    except Exception as exc:  # the store is down: compile again rather than stop serving
        ctx.status.store_error = str(exc)
        return False


def _record(ctx: PollContext, sha: str, state: str, problems: list[Problem] | None = None) -> None:
    try:
        ctx.revisions.record(sha, state, problems)
        ctx.status.store_error = None
    except Exception as exc:  # a locked or full database must not stop publishing
        log.error("cannot record %s as %s in the store: %s", sha[:12], state, exc)
        ctx.status.store_error = f"recording {sha[:12]} as {state}: {exc}"


def _safely(func: Callable[..., None], *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        log.exception("a publish listener failed")


def _finish(ctx: PollContext, result: str, error: str | None = None) -> str:
    status = ctx.status
    status.last_result = result
    ctx.metrics.polls.labels(result).inc()
    ctx.metrics.last_poll.set_to_current_time()
    ctx.metrics.last_poll_ok.set(0 if error else 1)
    if error:
        status.last_error = error
        status.consecutive_failures += 1
        log.warning("poll failed (%d in a row): %s", status.consecutive_failures, error)
    else:
        status.last_success_at = status.last_poll_at
        status.consecutive_failures = 0
        status.last_error = None
    return result


class Poller:
    """Runs ticks one at a time: on a schedule, and at once when asked (push webhooks)."""

    def __init__(self, ctx: PollContext, interval: float, max_backoff: float = 600.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None
        self.ticks = 0
        self.on_request: list[Callable[[], None]] = []

    def run_once(self, *, forced: bool = False) -> str:
        """One tick now (waiting for a running one); skipped while backing off unless forced."""
        with self._lock:
            status = self.ctx.status
            if not forced and time.monotonic() < status.retry_at:
                return "backoff"
            self.ticks += 1
            result = tick(self.ctx)
            if result == "error":
                delay = min(
                    self.interval * 2 ** (status.consecutive_failures - 1), self.max_backoff
                )
                status.retry_at = time.monotonic() + delay * random.uniform(0.8, 1.0)
            else:
                status.retry_at = 0.0
            return result

    def request(self, *, broadcast: bool = True) -> None:
        """Ask for a tick as soon as possible; many requests during one tick make one more.

        With broadcast, the listeners in on_request (other replicas) are told too.
        """
        self._wanted.set()
        if broadcast:
            for listener in self.on_request:
                _safely(listener)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                self.run_once(forced=True)
            except Exception:
                log.exception("poll failed")

    def _scheduled(self) -> None:
        try:
            self.run_once()
        except Exception:
            log.exception("poll failed")

    def start(self) -> None:
        """Start the request thread and the periodic job (first run at once)."""
        self._thread = threading.Thread(target=self._loop, name="gitconf-poll", daemon=True)
        self._thread.start()
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._scheduled,
            "interval",
            seconds=self.interval,
            jitter=max(self.interval * 0.1, 0.0),
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
            id="poll",
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop polling; a tick in progress finishes first."""
        self._stopping.set()
        self._wanted.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self._thread is not None:
            self._thread.join(timeout=30)
