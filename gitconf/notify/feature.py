"""Webhook notifications as a feature: tables, API, publish listeners, the worker, status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.brokers.spec import from_settings
from gitconf.feature import Feature
from gitconf.notify import api, status
from gitconf.notify.brokers import Brokers
from gitconf.notify.notifier import ChangesFrom, Notifier
from gitconf.notify.openapi import PATHS
from gitconf.notify.policy import DeliveryPolicy
from gitconf.notify.targets import TargetPolicy
from gitconf.store.deliveries import Outbox
from gitconf.store.outbox import migrate
from gitconf.store.subscriptions import SubscriptionStore
from gitconf.worker.messages import ChangesBetween

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["feature"]


def feature(parts: Parts, replica_id: str = "gitconf") -> tuple[Feature, Notifier]:
    """Webhook notifications and brokers: the outbox, its worker, the subscription API, status.

    replica_id names this server in the events it sends to brokers (originService)."""
    compiler = parts.compiler

    def changes_between(old: str, new: str) -> ChangesFrom | None:
        reply = compiler.call(ChangesBetween(old, new), wait=60.0)
        return reply if isinstance(reply, tuple) else None

    policy = DeliveryPolicy.from_settings(parts.settings.delivery)
    brokers = Brokers(
        from_settings(parts.settings.brokers),
        parts.environ,
        timeout=policy.timeout,
        origin=f"gitconf:{replica_id}",
        registry=parts.metrics.registry,
    )
    notifier = Notifier(
        outbox=Outbox(parts.engine),
        subscriptions=SubscriptionStore(parts.engine),
        publisher=parts.publisher,
        policy=policy,
        targets=TargetPolicy.from_settings(parts.settings.subscribers),
        metrics=parts.metrics,
        environ=parts.environ,
        base_url=parts.settings.base_url(),
        cursor_key=parts.state_dir.name,
        changes_between=changes_between,
        # A SQLite file in the state dir has one server: a restart may take back its leases.
        exclusive_store=parts.engine.dialect.name == "sqlite",
        migrate=lambda: migrate(parts.engine),
        descends=parts.mirror.descends,
        brokers=brokers,
    )
    # A store that is down at start is reported in /v1/status and tried again by the worker:
    # reads and publishing do not need it.
    notifier.ensure_schema()
    parts.poll.on_published.append(notifier.published)
    parts.poll.on_rejected.append(notifier.rejected)
    return (
        Feature(
            "notifications",
            blueprint=api.make_blueprint(),
            status=lambda: status.section(notifier),
            problems=lambda: status.problems(notifier),
            openapi=PATHS,
            start=notifier.start,
            stop=notifier.stop,
        ),
        notifier,
    )
