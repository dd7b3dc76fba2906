"""Poll the remote: fetch, and when the branch moved, compile and publish or reject.

`tick()` is one poll as a plain function. `Poller` serialises ticks, backs off after
failures, collapses bursts of immediate requests (webhooks) into one tick, and runs the
periodic safety-net tick from an APScheduler job.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from gitconf import __version__
from gitconf.clock import iso, utcnow
from gitconf.errors import GitconfError, Problem
from gitconf.gcpause import collector_paused
from gitconf.git.remote import FetchError, Mirror
from gitconf.jobs import release
from gitconf.metrics import Metrics
from gitconf.publisher import Publisher
from gitconf.release.compose import compose, plain_head
from gitconf.served import Explainer, ServedRevision, from_built, with_secrets
from gitconf.store.pins import Pin, PinStore
from gitconf.store.revisions import RevisionLog
from gitconf.store.rollouts import Rollout, RolloutStore
from gitconf.worker.messages import Adopt, Adopted, Built, Compile, Failed, Refused, Revision
from gitconf.worker.proxy import CompileWorker, WorkerDied, limit_problem

__all__ = ["PollContext", "PollStatus", "Poller", "pins_tick", "tick"]

log = logging.getLogger(__name__)

PublishedHook = Callable[[ServedRevision | None, ServedRevision], None]
RejectedHook = Callable[[str, list[Problem]], None]


def _now_iso() -> str:
    return iso(utcnow()) or ""


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
    compiler: CompileWorker
    status: PollStatus = field(default_factory=PollStatus)
    explainer: Explainer | None = None
    on_published: list[PublishedHook] = field(default_factory=list)
    on_rejected: list[RejectedHook] = field(default_factory=list)
    # The served revision the compile worker was told of, and in which of its lives.
    warmed: tuple[str, int] | None = None
    # Pins of environments to earlier revisions (gitconf.release), and the served form of
    # an earlier revision (compiled by the worker) to take a pinned environment's bodies from.
    pins: PinStore | None = None
    fetch: Callable[[str], ServedRevision] | None = None
    # The pins as last read from the store (kept while it is down).
    pinned: dict[str, Pin] | None = None
    # Rollouts (gitconf.yaml `rollouts:`), and their rows as last read from the store; told
    # when this replica moved one a step (the others are asked to poll).
    rollouts: RolloutStore | None = None
    rolled: dict[str, Rollout] | None = None
    on_rollout_moved: list[Callable[[], None]] = field(default_factory=list)

    @property
    def made_by(self) -> str:
        """What a verdict is made by: a rejection holds only for the same gitconf and limits."""
        compiler = self.compiler
        return f"gitconf {__version__}; compile {compiler.timeout:g}s {compiler.max_memory}B"


def tick(ctx: PollContext) -> str:
    """One poll. Returns unchanged, published, rejected or error."""
    status = ctx.status
    status.last_poll_at = _now_iso()
    started = time.perf_counter()
    fetch_error: str | None = None
    try:
        head = ctx.mirror.fetch()
    except (FetchError, GitconfError) as exc:
        fetch_error = str(exc)
        # With nothing served (a first start, or a snapshot that could not be used), the
        # commit the clone already holds is better than a 503 while the remote is down.
        local = ctx.mirror.head() if ctx.publisher.served is None else None
        if local is None:
            return _finish(ctx, "error", fetch_error)
        log.warning("the remote is unreachable; compiling the clone's head %s", local[:12])
        head = local
    finally:
        ctx.metrics.fetch_seconds.observe(time.perf_counter() - started)
    previous_head, status.head = status.head, head
    release.read_pins(ctx)
    served = ctx.publisher.served
    if served is not None and served.revision == head:
        release.advance_rollouts(ctx, head)
        if release.pins_moved(ctx, served):
            return _repin(ctx, served)
        _warm(ctx, served)
        return _finish(ctx, "error" if fetch_error else "unchanged", fetch_error)
    if _known_rejected(ctx, head, previous_head):
        return _finish(ctx, "error" if fetch_error else "unchanged", fetch_error)
    result = _compile(ctx, head, served)
    if fetch_error and result != "error":
        return _finish(ctx, "error", fetch_error)
    return result


def _compile(ctx: PollContext, head: str, served: ServedRevision | None) -> str:
    """Compile head in the worker, then publish or reject it."""
    started = time.perf_counter()
    try:
        reply = ctx.compiler.call(Compile(head, served.revision if served else None))
    except WorkerDied as died:
        if ctx.compiler.closed:
            return _finish(ctx, "error", "the server is stopping")
        if died.limit is None:
            return _failed(ctx, head, f"the compile worker {died.reason}")
        limit = limit_problem(died, ctx.compiler.timeout, ctx.compiler.max_memory)
        reply = Refused(head, [limit], limit=True)
    finally:
        ctx.metrics.compile_seconds.observe(time.perf_counter() - started)
    if isinstance(reply, Failed):
        return _failed(ctx, head, f"compiling {head[:12]} failed: {reply.message}")
    if isinstance(reply, Refused):
        _record(ctx, head, "rejected", reply.problems)
        ctx.metrics.rejected.inc()
        log.warning("rejected %s: %d problem(s)", head[:12], len(reply.problems))
        for reject_hook in ctx.on_rejected:
            _safely(reject_hook, head, reply.problems)
        return _finish(ctx, "rejected")
    assert isinstance(reply, Built)
    try:
        # No cyclic-GC pause while 20,000 bodies are swapped in and announced: reads on the
        # event loop would wait for it.
        with collector_paused():
            new = _publish(ctx, reply, served)
    except Exception as exc:  # a bug of gitconf's must not pass for a healthy poll
        log.exception("publishing %s failed", head[:12])
        return _failed(ctx, head, f"publishing {head[:12]} failed: {exc.__class__.__name__}: {exc}")
    ctx.warmed = (head, ctx.compiler.restarts)
    ctx.metrics.published.inc()
    ctx.metrics.set_served(head)
    _record(ctx, head, "published")
    log.info("published %s", head[:12])
    with collector_paused():
        for publish_hook in ctx.on_published:
            _safely(publish_hook, served, new)
    return _finish(ctx, "published")


def pins_tick(ctx: PollContext) -> str:
    """Serve the pins and rollouts of the store now, without fetching: published (what is
    served moved) or unchanged. (Poller.apply_pins runs it in turn with the ticks.)"""
    release.read_pins(ctx)
    served = ctx.publisher.served
    if served is None:
        return "unchanged"
    release.advance_rollouts(ctx, served.revision)
    if not release.pins_moved(ctx, served):
        return "unchanged"
    return _repin(ctx, served)


def _repin(ctx: PollContext, served: ServedRevision) -> str:
    """Serve the head with the store's pins and rollouts (a pin, unpin or promotion is
    announced with its reason)."""
    assert ctx.fetch is not None
    moves = release.moves_of(ctx, served, release.pin_map(ctx, served))
    move = moves[min(moves)] if moves else None
    try:
        with collector_paused():
            new = release.serve(ctx, plain_head(served, ctx.fetch), served, move)
            new.moves = moves
            ctx.publisher.publish(new)
    except Exception as exc:
        log.exception("serving the pins failed")
        return _finish(ctx, "error", f"serving the pins failed: {exc.__class__.__name__}: {exc}")
    log.info(
        "%s: serving %s with pins %s, rollouts %s",
        move[0] if move else "rollout",
        served.revision[:12],
        new.pinned or "none",
        {e: f"{r.percent}% {r.state}" for e, r in new.live.items()} or "none",
    )
    with collector_paused():
        for publish_hook in ctx.on_published:
            _safely(publish_hook, served, new)
    return _finish(ctx, "published")


def _publish(ctx: PollContext, built: Built, served: ServedRevision | None) -> ServedRevision:
    new = _compiled(ctx, built, served)
    release.plan_rollouts(ctx, new, served)
    # A publish while pinned, or during a rollout: compiled and recorded, served to the
    # pinned environments (and the rollout's stable instances) later.
    return ctx.publisher.publish(release.serve(ctx, new, served))


def _compiled(ctx: PollContext, built: Built, served: ServedRevision | None) -> ServedRevision:
    """The served form of a compiled head, every environment its own."""
    now = _now_iso()
    if served is not None and served.unpinned is not None:
        served = served.unpinned  # what the compile worker holds: the head's own bodies
    new = from_built(built, served, published_at=now, explainer=ctx.explainer)
    if new is None:
        # The worker's idea of the served revision was not ours: take every body.
        full = ctx.compiler.call(Revision(built.sha))
        if not isinstance(full, Built):
            raise GitconfError(f"the compile worker could not send every body: {full}")
        new = from_built(full, None, published_at=now, explainer=ctx.explainer)
        assert new is not None
        if served is not None and built.base == served.revision:
            new.base, new.changed = built.base, built.changed
    return new


def _warm(ctx: PollContext, served: ServedRevision) -> None:
    """Have the compile worker hold the served revision (after a restart of either), so the
    next push compiles incrementally and sends only what changed."""
    if ctx.warmed == (served.revision, ctx.compiler.restarts):
        return
    try:
        reply = ctx.compiler.call(Adopt(served.revision))
    except WorkerDied as died:
        log.warning("the compile worker could not load the served revision: %s", died.reason)
        return
    if isinstance(reply, Adopted):
        ctx.warmed = (served.revision, ctx.compiler.restarts)
        if served.pinned:
            # The pinned environments' bodies are another revision's: nothing to compare. Read
            # from disk, the state has no plaintext: compiled again, with it.
            if reply.secret_etags and not served.secret_json and served.unpinned is None:
                _reload_pinned(ctx, served)
        elif reply.etags != served.etags():
            log.warning(
                "revision %s compiles to other bodies than the persisted ones (a new gitconf?); "
                "they are served from the next commit on",
                served.revision[:12],
            )
        elif reply.secret_etags and not served.secret_json:
            # Read from disk, where plaintext never is: its secrets are served from now on.
            with_secrets(served, reply.secret_etags, reply.secret_bodies)
            log.info("the secrets of revision %s are loaded", served.revision[:12])
    else:
        log.warning("the compile worker could not load the served revision: %s", reply)


def _reload_pinned(ctx: PollContext, served: ServedRevision) -> None:
    """Serve the pinned state read from disk again, compiled, with its secrets' plaintext."""
    if ctx.fetch is None:
        return
    try:
        with collector_paused():
            again = compose(ctx.fetch(served.revision), served.pinned, ctx.fetch)
    except Exception as exc:
        log.warning("cannot load the secrets of the pinned state: %s", exc)
        return
    again.published_at = served.published_at
    ctx.publisher.publish(again, persist=False)
    log.info("the secrets of %s (pins %s) are loaded", served.revision[:12], served.pinned)


def _failed(ctx: PollContext, head: str, message: str) -> str:
    """gitconf failed, not the commit: record an error, and try again at the next poll."""
    log.error("%s", message)
    _record(ctx, head, "error", [Problem(None, message)])
    return _finish(ctx, "error", message)


def _known_rejected(ctx: PollContext, head: str, previous_head: str | None) -> bool:
    if ctx.status.last_result == "rejected" and previous_head == head:
        return True
    try:
        verdict = ctx.revisions.verdict(head)
    except Exception as exc:  # the store is down: compile again rather than stop serving
        ctx.status.store_error = str(exc)
        return False
    # A rejection by another gitconf or other limits is made again: it may differ now.
    return verdict is not None and verdict.state == "rejected" and verdict.made_by == ctx.made_by


def _record(ctx: PollContext, sha: str, state: str, problems: list[Problem] | None = None) -> None:
    try:
        ctx.revisions.record(sha, state, problems, ctx.made_by)
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

    def apply_pins(self) -> str:
        """Serve the store's pins now (in turn with the ticks); published or unchanged."""
        with self._lock:
            return pins_tick(self.ctx)

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
            next_run_time=utcnow(),
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
