"""Brokers as subscribers of the outbox: their subscriptions, their sends, metrics and status.

Each broker of `brokers:` in server.yaml is a subscription of origin `broker` (id
`brk_<name>`), synced from the settings at start. Its deliveries are rows of the same
outbox as webhooks (durable, leased, retried with backoff, one attempt logged per try),
and the worker hands them to the broker's `send` instead of POSTing them. Unlike a webhook,
a broker gets every change set in order: nothing is superseded, and its lane sends its rows
oldest first, waiting for a failed one before it sends the next.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gitconf.brokers import cloudevents, spring_bus
from gitconf.brokers.message import Broker, BrokerUnavailable
from gitconf.brokers.spec import BrokerSpec
from gitconf.clock import iso, utcnow
from gitconf.notify.events import CHANGED

__all__ = ["Brokers", "Outlet", "open_transport"]

log = logging.getLogger(__name__)

CLIENTS = {"amqp": ("pika", "gitconf[amqp]"), "nats": ("nats", "gitconf[nats]")}


def open_transport(spec: BrokerSpec, url: str, timeout: float) -> Broker:
    """The transport of a broker's kind; BrokerUnavailable if its client is not installed."""
    module, extra = CLIENTS[spec.kind]
    if importlib.util.find_spec(module) is None:
        raise BrokerUnavailable(
            f"{spec.where}: kind {spec.kind!r} needs the {module!r} package, which is not "
            f"installed: pip install '{extra}' and restart gitconf serve"
        )
    if spec.kind == "amqp":
        from gitconf.brokers.amqp import AmqpBroker

        assert spec.exchange is not None
        return AmqpBroker(
            url,
            exchange=spec.exchange,
            routing_key=spec.routing_key,
            timeout=timeout,
            name=spec.name,
        )
    from gitconf.brokers.nats import NatsBroker

    assert spec.subject is not None
    return NatsBroker(url, subject=spec.subject, timeout=timeout, name=spec.name)


class Outlet:
    """One configured broker: its spec, its transport (made on first use), how it is doing."""

    def __init__(self, spec: BrokerSpec, environ: Mapping[str, str], timeout: float) -> None:
        self.spec = spec
        self.environ = environ
        self.timeout = timeout
        self.last_error: str | None = None
        self.last_error_at: dt.datetime | None = None
        self.last_delivered_at: dt.datetime | None = None
        self._transport: Broker | None = None
        self._lock = threading.Lock()

    def send(self, event_id: str, body: bytes) -> None:
        """Send one stored delivery; BrokerUnavailable (what to fix or wait for) if not taken."""
        if self.spec.format == "spring-bus":
            message = spring_bus.message(event_id, body)
        else:
            message = cloudevents.message(json.loads(body))
        try:
            self._get().send(message)
        except BrokerUnavailable as exc:
            self.last_error, self.last_error_at = str(exc), utcnow()
            raise
        self.last_error, self.last_delivered_at = None, utcnow()

    def config_error(self) -> str | None:
        """Why this broker cannot be reached whatever it does (an unset variable, no client)."""
        try:
            self.spec.resolve_url(self.environ)
        except ValueError as exc:
            return str(exc)
        module, extra = CLIENTS[self.spec.kind]
        if importlib.util.find_spec(module) is None:
            return (
                f"{self.spec.where}: kind {self.spec.kind!r} needs the {module!r} package: "
                f"pip install '{extra}' and restart gitconf serve"
            )
        return None

    def _get(self) -> Broker:
        with self._lock:
            if self._transport is None:
                try:
                    url = self.spec.resolve_url(self.environ)
                except ValueError as exc:
                    raise BrokerUnavailable(str(exc)) from None
                try:
                    self._transport = open_transport(self.spec, url, self.timeout)
                except ValueError as exc:  # a URL its client cannot use
                    raise BrokerUnavailable(str(exc)) from None
            return self._transport

    def close(self) -> None:
        """Close the transport, if one was opened."""
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


class Brokers:
    """Every configured broker by its subscription id, and their metrics."""

    def __init__(
        self,
        specs: Sequence[BrokerSpec],
        environ: Mapping[str, str],
        *,
        timeout: float,
        origin: str,
        registry: CollectorRegistry,
    ) -> None:
        self.outlets = {s.subscription_id: Outlet(s, environ, timeout) for s in specs}
        # The bus id gitconf sends Spring Cloud Bus events as: gitconf:<replica>.
        self.origin = origin
        self.counts: dict[str, dict[str, int]] = {}
        self.messages = Counter(
            "gitconf_broker_messages",
            "Broker deliveries by broker and outcome: delivered, retried, dead.",
            ["broker", "outcome"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "gitconf_broker_publish_seconds",
            "Time of one publish to a broker, until its confirm or ack.",
            ["broker"],
            registry=registry,
        )
        self.pending = Gauge(
            "gitconf_broker_pending",
            "Deliveries waiting in the outbox for a broker.",
            ["broker"],
            registry=registry,
        )
        for spec in specs:
            self.pending.labels(spec.name).set(0)

    def __bool__(self) -> bool:
        return bool(self.outlets)

    def get(self, sub_id: str) -> Outlet | None:
        """The broker a subscription stands for, if this server has it configured."""
        return self.outlets.get(sub_id)

    def declared(self) -> list[dict[str, Any]]:
        """The subscription rows the brokers stand for (SubscriptionStore.sync_brokers)."""
        return [
            {
                "id": spec.subscription_id,
                "name": spec.name,
                "url": spec.display_url(outlet.environ),
                "environments": list(spec.environments),
                "services": list(spec.services),
                "events": [CHANGED],
                "declared_at": spec.where,
            }
            for outlet in self.outlets.values()
            for spec in [outlet.spec]
        ]

    def count(self, sub_id: str, outcome: str, seconds: float) -> None:
        """Count one attempt of a broker's delivery."""
        outlet = self.outlets.get(sub_id)
        name = outlet.spec.name if outlet else sub_id
        self.messages.labels(name, outcome).inc()
        self.publish_seconds.labels(name).observe(seconds)

    def set_counts(self, by_subscription: Mapping[str, Mapping[str, int]]) -> None:
        """Take the outbox's delivery counts (worker, at most once a second)."""
        self.counts = {s: dict(by_subscription.get(s, {})) for s in self.outlets}
        for sub_id, outlet in self.outlets.items():
            self.pending.labels(outlet.spec.name).set(self.counts[sub_id].get("pending", 0))

    def problems(self) -> list[dict[str, Any]]:
        """What an operator must fix or know, for /v1/status."""
        out = []
        for sub_id, outlet in self.outlets.items():
            error = outlet.config_error()
            pending = self.counts.get(sub_id, {}).get("pending", 0)
            if error:
                code, message = "broker_config", f"{error}; its deliveries wait"
            elif outlet.last_error and pending:
                code = "broker_unavailable"
                message = (
                    f"{outlet.last_error}; {pending} delivery(ies) wait and are retried "
                    "with backoff"
                )
            else:
                continue
            out.append(
                {
                    "source": "notifications",
                    "code": code,
                    "broker": outlet.spec.name,
                    "message": message,
                }
            )
        return out

    def section(self) -> list[dict[str, Any]]:
        """The brokers in /v1/status: where they publish, their queue, their last outcome."""
        out = []
        for sub_id, outlet in self.outlets.items():
            spec, counts = outlet.spec, self.counts.get(sub_id, {})
            doc: dict[str, Any] = {
                "name": spec.name,
                "subscription": sub_id,
                "kind": spec.kind,
                "format": spec.format,
                "url": spec.display_url(outlet.environ),
                "pending": counts.get("pending", 0),
                "delivered": counts.get("delivered", 0),
                "dead": counts.get("dead", 0),
                "last_delivered_at": iso(outlet.last_delivered_at),
                "last_error": outlet.last_error,
                "last_error_at": iso(outlet.last_error_at),
            }
            if spec.kind == "amqp":
                doc["exchange"] = spec.exchange
            else:
                doc["subject"] = spec.subject
            out.append(doc)
        return out

    def close(self) -> None:
        """Close every transport."""
        for outlet in self.outlets.values():
            try:
                outlet.close()
            except Exception:
                log.exception("closing broker %r failed", outlet.spec.name)
