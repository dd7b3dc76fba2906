"""The delivery worker: POSTs due deliveries, one serial lane per subscriber, lanes in parallel.

A broker's deliveries (gitconf.notify.brokers) go the same way, to the broker's `send`
instead of a POST, oldest first.

A dispatcher thread wakes when rows are added (`wake()`), when the next retry comes due, and
from an APScheduler job as a safety net. It hands each subscription with due rows to a lane
on a thread pool of `delivery.concurrency` threads; a lane claims a batch of that
subscriber's rows and sends them one after the other. A slow or failing subscriber only
holds its own lane; after a failure its lane pauses with a per-subscriber backoff, so a
subscriber that is down costs about one request per backoff, not one per queued event.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from apscheduler.schedulers.background import BackgroundScheduler

from gitconf import __version__, signing
from gitconf.brokers.message import BrokerUnavailable
from gitconf.clock import utcnow
from gitconf.metrics import Metrics
from gitconf.notify.brokers import Brokers
from gitconf.notify.policy import DeliveryPolicy, backoff, judge, retry_after
from gitconf.notify.targets import TargetPolicy, TargetRefused, check_url, checked_session
from gitconf.store.deliveries import Attempt, Delivery, Outbox, Outcome
from gitconf.store.subscriptions import Subscription, SubscriptionStore

__all__ = ["Worker"]

log = logging.getLogger(__name__)

USER_AGENT = f"gitconf/{__version__} (webhooks)"
CONTENT_TYPE = "application/cloudevents+json"
MAX_IDLE = 30.0  # the longest the dispatcher sleeps without a reason to wake
SAFETY_INTERVAL = 5.0  # seconds between the safety-net ticks
COUNT_EVERY = 1.0  # seconds: the outbox gauges and /v1/status counts are this fresh
MAX_RESPONSE = 64 * 1024  # response bytes read (and then dropped) to keep the connection


class Worker:
    """Delivers the outbox: start() it, wake() it when rows are added, stop() it at exit."""

    def __init__(
        self,
        outbox: Outbox,
        subscriptions: SubscriptionStore,
        policy: DeliveryPolicy,
        targets: TargetPolicy,
        metrics: Metrics,
        environ: Mapping[str, str],
        *,
        batch: int = 100,
        on_tick: Callable[[], None] | None = None,
        brokers: Brokers | None = None,
    ) -> None:
        self.outbox = outbox
        self.subscriptions = subscriptions
        self.policy = policy
        self.targets = targets
        self.metrics = metrics
        self.environ = environ
        self.batch = batch
        self.on_tick = on_tick
        self.brokers = brokers
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # A claim holds a batch while its rows are sent; each recorded attempt renews it.
        self.lease = policy.lease if policy.lease else 2 * policy.timeout + 30
        self.last_error: str | None = None
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._failures: dict[str, int] = {}
        self._holds: dict[str, dt.datetime] = {}
        self._sessions: dict[str, requests.Session] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._counted_at = 0.0
        # Rows were added or attempted since the gauges were last counted.
        self._counts_stale = True

    # -- running -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the dispatcher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._counts_stale = True
        self._wake.set()

    def start(self) -> None:
        """Start the dispatcher, the lanes' pool and the safety-net job."""
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="gitconf-lane")
        self._thread = threading.Thread(target=self._loop, name="gitconf-deliver", daemon=True)
        self._thread.start()
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=SAFETY_INTERVAL,
            max_instances=1,
            coalesce=True,
            id="deliver",
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop: attempts in flight finish (within the timeout), claimed rows are given back."""
        self._stopping.set()
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self._thread is not None:
            self._thread.join(timeout=self.policy.timeout + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def _tick(self) -> None:
        if self.on_tick is not None:
            try:
                self.on_tick()
            except Exception:
                log.exception("the notifications safety-net tick failed")
        self.wake()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                wait = self._dispatch()
                self.last_error = None
            except Exception as exc:  # a locked or unreachable store: say so, try again
                log.error("delivery dispatch failed: %s", exc)
                self.last_error = f"reading the outbox: {exc}"
                self.metrics.outbox_errors.labels("dispatch").inc()
                wait = SAFETY_INTERVAL
            self._wake.wait(wait)

    def _dispatch(self) -> float:
        """Hand each subscription with due rows to a lane; the seconds until the next due row."""
        now = utcnow()
        due = self.outbox.due_subscriptions(now)
        with self._lock:
            self._holds = {s: t for s, t in self._holds.items() if t > now}
            holds = list(self._holds.values())
            for sub_id in due:
                if sub_id in self._active or sub_id in self._holds:
                    continue
                assert self._pool is not None
                self._active.add(sub_id)
                self._pool.submit(self._run_lane, sub_id)
        self._refresh_counts()
        wake_at = [t for t in [self.outbox.next_due(now), *holds] if t is not None]
        waits = [(t - now).total_seconds() for t in wake_at]
        if self._counts_stale:  # throttled: count again when the second is up
            waits.append(COUNT_EVERY - (time.monotonic() - self._counted_at))
        return max(min([*waits, MAX_IDLE]), 0.005)

    def _run_lane(self, sub_id: str) -> None:
        try:
            self._lane(sub_id)
        except Exception as exc:
            log.exception("delivering to subscription %s failed", sub_id)
            self.last_error = f"delivering to {sub_id}: {exc}"
            self.metrics.outbox_errors.labels("deliver").inc()
            self._hold(sub_id)
        finally:
            with self._lock:
                self._active.discard(sub_id)
            self.wake()

    def deliver_due(self) -> int:
        """Deliver every due row now, in the calling thread (tests, tools); attempts made."""
        total = 0
        while True:
            now = utcnow()
            with self._lock:
                held = {s for s, t in self._holds.items() if t > now}
            made = sum(self._lane(s) for s in self.outbox.due_subscriptions(now) if s not in held)
            total += made
            if not made:
                self._refresh_counts(force=True)
                return total

    # -- one subscriber ------------------------------------------------------------------

    def _lane(self, sub_id: str) -> int:
        """Send one claimed batch of a subscriber's due rows, one after another; attempts made."""
        sub = self.subscriptions.get(sub_id)
        if sub is None or not sub.active:  # deleted or disabled since the rows were queued
            self.subscriptions.cancel(sub_id)
            return 0
        claimed_at = utcnow()
        in_order = sub.origin == "broker"
        rows = self.outbox.claim(
            sub_id, self.id, claimed_at, self.batch, self.lease, in_order=in_order
        )
        if in_order and not rows:
            # Newer rows are due but wait behind an older one (its retry, or another
            # replica's lease): sleep until that one can go, rather than claim in a loop.
            until = self.outbox.blocked_until(sub_id)
            if until is not None and until > claimed_at:
                self._hold(sub_id, until)
            return 0
        renew_at = claimed_at + dt.timedelta(seconds=self.lease / 2)
        made = 0
        for index, row in enumerate(rows):
            if self._stopping.is_set():
                self.outbox.release([r.id for r in rows[index:]], self.id)
                break
            attempt, outcome, next_at, asked = self._attempt(sub, row)
            now = utcnow()
            renew = now >= renew_at  # half the lease gone: extend the rest of the batch's
            if renew:
                renew_at = now + dt.timedelta(seconds=self.lease / 2)
            self.outbox.record(
                row,
                attempt,
                outcome,
                next_at=next_at,
                worker=self.id,
                lease_until=now + dt.timedelta(seconds=self.lease) if renew else None,
            )
            made += 1
            self._count(sub, outcome, attempt)
            if outcome == "delivered":
                with self._lock:
                    self._failures.pop(sub_id, None)
                continue
            self.outbox.release([r.id for r in rows[index + 1 :]], self.id)
            if outcome != "gone":
                # A Retry-After is about the subscriber, not one event: hold them all.
                self._hold(sub_id, next_at if asked else None)
            break
        return made

    def _hold(self, sub_id: str, until: dt.datetime | None = None) -> None:
        """Pause a failing subscriber's lane: until the time its Retry-After asked for, else
        about first_backoff, doubling per failure.

        What a Retry-After asked replaces the backoff (policy.delay): the subscriber is
        pacing us, which is no failure to back off further from.
        """
        with self._lock:
            if until is not None:
                self._holds[sub_id] = until
                return
            failures = self._failures[sub_id] = self._failures.get(sub_id, 0) + 1
            wait = backoff(failures, self.policy, random.random())
            self._holds[sub_id] = utcnow() + dt.timedelta(seconds=wait)

    def _session(self, sub_id: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get(sub_id)
            if session is None:
                session = self._sessions[sub_id] = checked_session(self.targets)
            return session

    def _key(self, sub: Subscription) -> bytes:
        """The signing key; ValueError saying what to fix when there is none."""
        if sub.secret:
            return signing.parse_secret(sub.secret)
        where = f"subscription {sub.name or sub.id!r} ({sub.declared_at or 'gitconf.yaml'})"
        if not sub.secret_env:
            raise ValueError(f"{where} has no secret_env; declare one to sign its deliveries")
        value = self.environ.get(sub.secret_env)
        if not value:
            raise ValueError(
                f"{where}: secret_env {sub.secret_env!r} is not set in the server's "
                "environment; set it and restart gitconf serve"
            )
        try:
            return signing.parse_secret(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {sub.secret_env} is not a usable secret: {exc}") from None

    def _attempt(
        self, sub: Subscription, row: Delivery
    ) -> tuple[Attempt, Outcome, dt.datetime | None, bool]:
        """POST one delivery: what happened, what to do next, whether Retry-After said when."""
        if sub.origin == "broker":
            return self._publish(sub, row)
        at = utcnow()
        status: int | None = None
        error: str | None = None
        asked: float | None = None
        started = time.perf_counter()
        try:
            key = self._key(sub)
            check_url(sub.url, self.targets, resolve=False)
            headers = {
                "Content-Type": CONTENT_TYPE,
                "User-Agent": USER_AGENT,
                **signing.headers(key, row.event_id, int(at.timestamp()), row.body),
            }
            response = self._session(sub.id).post(
                sub.url,
                data=row.body,
                headers=headers,
                timeout=self.policy.timeout,
                allow_redirects=False,
                stream=True,
            )
            status = response.status_code
            _drain(response)
            if 300 <= status < 400:
                location = response.headers.get("Location")
                error = (
                    f"HTTP {status} redirect to {location!r} not followed; "
                    "point the subscription at the final URL"
                )
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
                if status in (429, 503):
                    asked = retry_after(response.headers.get("Retry-After"), utcnow())
        except ValueError as exc:
            error = str(exc)
        except TargetRefused as exc:
            error = f"target refused: {exc}"
        except requests.Timeout:
            error = f"no answer within {self.policy.timeout:g}s"
        except requests.RequestException as exc:
            error = f"connection failed: {_innermost(exc)}"
        except Exception as exc:  # record it as a failed attempt rather than lose the row
            log.exception("unexpected error delivering %s", row.event_id)
            error = f"unexpected error: {exc!r}"
        latency = (time.perf_counter() - started) * 1000
        attempt = Attempt(at, status, round(latency, 3), error)
        if status is not None and 200 <= status < 300:
            return attempt, "delivered", None, False
        if status == 410:
            log.warning("subscription %s answered 410 Gone: disabling it", sub.id)
            return attempt, "gone", None, False
        return self._failed(sub, row, attempt, asked)

    def _publish(
        self, sub: Subscription, row: Delivery
    ) -> tuple[Attempt, Outcome, dt.datetime | None, bool]:
        """Hand one delivery to its broker; done once the broker confirmed it."""
        at = utcnow()
        error: str | None = None
        started = time.perf_counter()
        outlet = self.brokers.get(sub.id) if self.brokers is not None else None
        try:
            if outlet is None:
                raise BrokerUnavailable(
                    f"broker {sub.name!r} is not in this server's brokers: (server.yaml); "
                    "its deliveries wait for a server that has it"
                )
            outlet.send(row.event_id, row.body)
        except BrokerUnavailable as exc:
            error = str(exc)
        except Exception as exc:  # record it as a failed attempt rather than lose the row
            log.exception("unexpected error publishing %s", row.event_id)
            error = f"unexpected error: {exc!r}"
        latency = (time.perf_counter() - started) * 1000
        attempt = Attempt(at, None, round(latency, 3), error)
        if error is None:
            return attempt, "delivered", None, False
        return self._failed(sub, row, attempt, None)

    def _failed(
        self, sub: Subscription, row: Delivery, attempt: Attempt, asked: float | None
    ) -> tuple[Attempt, Outcome, dt.datetime | None, bool]:
        """A failed attempt: retried after the backoff (or Retry-After), or dead past max_age."""
        error = attempt.error
        verdict = judge(
            attempt=row.attempts + 1,
            created_at=row.created_at,
            now=utcnow(),
            policy=self.policy,
            draw=random.random(),
            asked=asked,
        )
        if verdict.dead:
            log.warning("delivery %s to %s is dead: %s", row.event_id, sub.id, error)
            return attempt, "dead", None, False
        return attempt, "retry", verdict.next_at, asked is not None

    # -- metrics -------------------------------------------------------------------------

    def _count(self, sub: Subscription, outcome: Outcome, attempt: Attempt) -> None:
        label = {"delivered": "delivered", "retry": "retried", "dead": "dead", "gone": "gone"}
        if sub.origin == "broker" and self.brokers is not None:
            self.brokers.count(sub.id, label[outcome], attempt.latency_ms / 1000)
            return
        self.metrics.webhook_deliveries.labels(label[outcome]).inc()
        self.metrics.webhook_attempt_seconds.observe(attempt.latency_ms / 1000)

    def _refresh_counts(self, *, force: bool = False) -> None:
        """Update the outbox gauges, at most once a second."""
        if not force and time.monotonic() - self._counted_at < COUNT_EVERY:
            return
        self._counted_at = time.monotonic()
        self._counts_stale = False
        counts = self.outbox.counts()
        self.counts = counts
        self.metrics.outbox_pending.set(counts.get("pending", 0))
        self.metrics.webhook_dead.set(counts.get("dead", 0))
        self.metrics.webhook_gone.set(counts.get("gone", 0))
        if self.brokers:
            self.brokers.set_counts(self.outbox.counts_by_subscription())


def _drain(response: requests.Response) -> None:
    """Read a little of the response so a small one leaves the connection reusable."""
    try:
        read = 0
        for chunk in response.iter_content(8192):
            read += len(chunk)
            if read > MAX_RESPONSE:
                break
    except requests.RequestException:
        pass
    finally:
        response.close()


def _innermost(exc: BaseException) -> str:
    """The root cause of a requests error, which wraps it three times over."""
    seen: Any = exc
    while (seen.__cause__ or seen.__context__) is not None:
        seen = seen.__cause__ or seen.__context__
    return str(seen) or type(seen).__name__
