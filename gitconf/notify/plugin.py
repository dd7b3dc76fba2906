"""Wire notifications into a Server: tables, API, publish listeners, the worker, brokers, status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.brokers.spec import from_settings
from gitconf.notify import api, status
from gitconf.notify.brokers import Brokers
from gitconf.notify.notifier import ChangesFrom, Notifier
from gitconf.notify.openapi import PATHS
from gitconf.notify.outbox import Outbox
from gitconf.notify.policy import DeliveryPolicy
from gitconf.notify.subscriptions import SubscriptionStore
from gitconf.notify.targets import TargetPolicy
from gitconf.store.outbox import migrate
from gitconf.worker.messages import ChangesBetween

if TYPE_CHECKING:
    from gitconf.bootstrap import Server

__all__ = ["install"]


def install(server: Server) -> None:
    """Add webhook notifications to a Server being built."""
    compiler = server.compiler

    def changes_between(old: str, new: str) -> ChangesFrom | None:
        reply = compiler.call(ChangesBetween(old, new), wait=60.0)
        return reply if isinstance(reply, tuple) else None

    policy = DeliveryPolicy.from_settings(server.settings.delivery)
    replica = server.deps.extras.get("replica")
    brokers = Brokers(
        from_settings(server.settings.brokers),
        server.environ,
        timeout=policy.timeout,
        origin=f"gitconf:{replica.id if replica is not None else 'gitconf'}",
        registry=server.metrics.registry,
    )

    notifier = Notifier(
        outbox=Outbox(server.engine),
        subscriptions=SubscriptionStore(server.engine),
        publisher=server.publisher,
        policy=policy,
        targets=TargetPolicy.from_settings(server.settings.subscribers),
        metrics=server.metrics,
        environ=server.environ,
        base_url=server.settings.base_url(),
        cursor_key=server.state_dir.name,
        changes_between=changes_between,
        # A SQLite file in the state dir has one server: a restart may take back its leases.
        exclusive_store=server.engine.dialect.name == "sqlite",
        migrate=lambda: migrate(server.engine),
        descends=server.mirror.descends,
        brokers=brokers,
    )
    # A store that is down at start is reported in /v1/status and tried again by the worker:
    # reads and publishing do not need it.
    notifier.ensure_schema()
    server.blueprints.append(api.bp)

    server.poll.on_published.append(notifier.published)
    server.poll.on_rejected.append(notifier.rejected)
    server.on_start.append(notifier.start)
    server.on_stop.append(notifier.stop)
    extras = server.deps.extras
    extras["notifier"] = notifier
    extras.setdefault("status_problems", []).append(lambda: status.problems(notifier))
    extras.setdefault("status_sections", {})["notifications"] = lambda: status.section(notifier)
    extras.setdefault("openapi_paths", []).append(PATHS)
