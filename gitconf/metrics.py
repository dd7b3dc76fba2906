"""Prometheus metrics of one server, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Every metric gitconf exports; one instance per server (tests make many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Called before each scrape: parts that count without the registry's locks add theirs.
        self.before_scrape: list[Callable[[], None]] = []
        r = self.registry
        self.polls = Counter(
            "gitconf_polls", "Polls of the remote, by result.", ["result"], registry=r
        )
        self.fetch_seconds = Histogram(
            "gitconf_fetch_seconds", "Time to fetch the tracked branch.", registry=r
        )
        self.compile_seconds = Histogram(
            "gitconf_compile_seconds",
            "Time to compile a new head.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.rejected = Counter(
            "gitconf_rejected_commits", "Commits rejected as invalid.", registry=r
        )
        self.published = Counter("gitconf_published_revisions", "Revisions published.", registry=r)
        self.served_revision = Gauge(
            "gitconf_served_revision_info", "The served commit (value 1).", ["revision"], registry=r
        )
        self.last_poll = Gauge(
            "gitconf_last_poll_timestamp_seconds", "When the last poll ended.", registry=r
        )
        self.last_poll_ok = Gauge(
            "gitconf_last_poll_success", "1 if the last poll reached the remote.", registry=r
        )
        self.requests = Counter(
            "gitconf_http_requests",
            "HTTP requests, by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.long_polls = Gauge(
            "gitconf_long_polls_waiting", "Long polls (?wait=) waiting for a change.", registry=r
        )
        self.watch_streams = Gauge(
            "gitconf_watch_streams", "GET /v1/watch event streams open.", registry=r
        )
        self.hooks = Counter(
            "gitconf_hooks_received",
            "Git host webhooks, by provider and outcome.",
            ["provider", "outcome"],
            registry=r,
        )
        # Webhook notifications (gitconf.notify).
        self.webhook_deliveries = Counter(
            "gitconf_webhook_deliveries",
            "Webhook deliveries by outcome: delivered, retried, dead, gone (410), superseded.",
            ["outcome"],
            registry=r,
        )
        self.webhook_attempt_seconds = Histogram(
            "gitconf_webhook_attempt_seconds", "Time of one webhook delivery attempt.", registry=r
        )
        self.webhook_dead = Gauge(
            "gitconf_webhook_dead_deliveries",
            "Deliveries given up after delivery.max_age, in the store.",
            registry=r,
        )
        self.webhook_gone = Gauge(
            "gitconf_webhook_gone_deliveries",
            "Deliveries whose subscriber answered 410 Gone (which disabled it), in the store.",
            registry=r,
        )
        self.outbox_pending = Gauge(
            "gitconf_outbox_pending", "Deliveries waiting in the outbox.", registry=r
        )
        self.outbox_errors = Counter(
            "gitconf_outbox_errors",
            "Store errors of the outbox (a locked or full database), by operation.",
            ["operation"],
            registry=r,
        )
        self.persist_failures = Counter(
            "gitconf_persist_failures",
            "Failed writes of the served revision to the state dir (a full disk, say).",
            registry=r,
        )
        self.persist_behind = Gauge(
            "gitconf_persist_behind",
            "1 while the revision on disk is not the served one (a restart would serve older).",
            registry=r,
        )
        self.compile_worker_restarts = Gauge(
            "gitconf_compile_worker_restarts",
            "Times the compile worker ended (a compile past a limit, or a crash) and was replaced.",
            registry=r,
        )
        self.spring_label_branches = Gauge(
            "gitconf_spring_label_branches",
            "Branches fetched for spring.labels (besides the tracked one).",
            registry=r,
        )
        self.spring_label_branches_skipped = Gauge(
            "gitconf_spring_label_branches_skipped",
            "Branches that match spring.labels but are not fetched: past the most fetched.",
            registry=r,
        )
        self._served: str | None = None

    def watch_parts(self, publisher: Any, compiler: Any) -> None:
        """Read the persistence and compile worker gauges from those parts at each scrape."""
        self.persist_behind.set_function(lambda: 1.0 if publisher.persist_behind else 0.0)
        self.compile_worker_restarts.set_function(lambda: compiler.restarts)
        seen = [0]

        def failures() -> None:
            new = publisher.persist.failures - seen[0]
            if new > 0:
                self.persist_failures.inc(new)
                seen[0] += new

        self.before_scrape.append(failures)

    def scrape(self) -> bytes:
        """The metrics in Prometheus' text format."""
        for sync in self.before_scrape:
            sync()
        return generate_latest(self.registry)

    def set_served(self, revision: str) -> None:
        """Point the served-revision gauge at revision."""
        if self._served is not None:
            self.served_revision.remove(self._served)
        self.served_revision.labels(revision).set(1)
        self._served = revision
