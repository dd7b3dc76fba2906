"""Subscriptions in the store: made over the API, or declared in gitconf.yaml and synced."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gitconf.clock import iso, utcnow
from gitconf.notify.events import CHANGED
from gitconf.store.outbox import deliveries, subscriptions

__all__ = ["MANIFEST_PREFIX", "Subscription", "SubscriptionStore"]

MANIFEST_PREFIX = "git_"


class Subscription(NamedTuple):
    """One subscriber: where to send, which configs and events, and how to sign."""

    id: str
    origin: str  # api | manifest | broker
    name: str | None
    url: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    events: tuple[str, ...]
    include_config: bool
    secret: str | None
    secret_env: str | None
    declared_at: str | None
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    disabled_reason: str | None

    @property
    def active(self) -> bool:
        """Whether new events are queued for it."""
        return self.disabled_at is None

    def doc(self) -> dict[str, Any]:
        """The subscription as the API shows it; never its secret."""
        doc: dict[str, Any] = {
            "id": self.id,
            "origin": self.origin,
            "name": self.name,
            "url": self.url,
            "environments": list(self.environments),
            "services": list(self.services),
            "events": list(self.events),
            "include_config": self.include_config,
            "created_at": iso(self.created_at),
            "disabled_at": iso(self.disabled_at),
            "disabled_reason": self.disabled_reason,
        }
        if self.origin == "manifest":
            doc["secret_env"] = self.secret_env
            doc["declared_at"] = self.declared_at
        elif self.origin == "broker":  # url: the broker's, without credentials
            doc["declared_at"] = self.declared_at
        return doc


def _row(row: Mapping[Any, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        origin=row["origin"],
        name=row["name"],
        url=row["url"],
        environments=tuple(row["environments"]),
        services=tuple(row["services"]),
        events=tuple(row["events"]),
        include_config=bool(row["include_config"]),
        secret=row["secret"],
        secret_env=row["secret_env"],
        declared_at=row["declared_at"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
    )


def new_id() -> str:
    """A fresh subscription id."""
    return "sub_" + secrets.token_hex(12)


class SubscriptionStore:
    """Reads and writes the subscriptions table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        *,
        url: str,
        secret: str,
        environments: Iterable[str] = ("*",),
        services: Iterable[str] = ("*",),
        events: Iterable[str] = (CHANGED,),
        include_config: bool = False,
        name: str | None = None,
    ) -> Subscription:
        """Store a new API subscription and return it."""
        row = {
            "id": new_id(),
            "origin": "api",
            "name": name,
            "url": url,
            "environments": list(environments),
            "services": list(services),
            "events": list(events),
            "include_config": include_config,
            "secret": secret,
            "secret_env": None,
            "declared_at": None,
            "created_at": utcnow(),
            "disabled_at": None,
            "disabled_reason": None,
            "deleted_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(subscriptions.insert(), [row])
        return _row(row)

    def get(self, sub_id: str) -> Subscription | None:
        """A subscription that was not deleted, by id."""
        query = sa.select(subscriptions).where(
            subscriptions.c.id == sub_id, subscriptions.c.deleted_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _row(row) if row is not None else None

    def all(self, *, active_only: bool = False) -> list[Subscription]:
        """Every subscription that was not deleted, oldest first."""
        query = sa.select(subscriptions).where(subscriptions.c.deleted_at.is_(None))
        if active_only:
            query = query.where(subscriptions.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(subscriptions.c.created_at)).mappings().all()
        return [_row(r) for r in rows]

    def delete(self, sub_id: str) -> bool:
        """Delete a subscription and cancel what it has not received; False if unknown."""
        with self.engine.begin() as conn:
            return _retire(conn, [sub_id], utcnow()) > 0

    def cancel(self, sub_id: str) -> int:
        """Cancel the pending deliveries of a subscription; how many."""
        with self.engine.begin() as conn:
            return cancel_pending(conn, [sub_id])

    def sync_manifest(self, declared: Iterable[Mapping[str, Any]]) -> None:
        """Make the manifest's subscriptions those of gitconf.yaml in the published revision.

        A changed URL re-enables one that a 410 disabled; one no longer declared is deleted.
        """
        wanted = {
            MANIFEST_PREFIX + d["name"]: {
                "name": d["name"],
                "url": d["url"],
                "environments": list(d.get("environments") or ["*"]),
                "services": list(d.get("services") or ["*"]),
                "events": list(d.get("events") or [CHANGED]),
                "include_config": bool(d.get("include_config", False)),
                "secret_env": d.get("secret_env"),
                "declared_at": d.get("source"),
                "deleted_at": None,
            }
            for d in declared
        }
        self._sync("manifest", wanted, reenable_on_new_url=True)

    def sync_brokers(self, declared: Iterable[Mapping[str, Any]]) -> None:
        """Make the broker subscriptions those of server.yaml's `brokers:` (Brokers.declared).

        One no longer configured is deleted, and what it had not received is cancelled.
        """
        wanted = {
            d["id"]: {
                "name": d["name"],
                "url": d["url"],
                "environments": list(d["environments"]),
                "services": list(d["services"]),
                "events": list(d["events"]),
                "include_config": False,
                "declared_at": d["declared_at"],
                "deleted_at": None,
                "disabled_at": None,
                "disabled_reason": None,
            }
            for d in declared
        }
        self._sync("broker", wanted, reenable_on_new_url=False)

    def _sync(
        self, origin: str, wanted: dict[str, dict[str, Any]], *, reenable_on_new_url: bool
    ) -> None:
        """Make the subscriptions of an origin exactly wanted (id -> column values)."""
        now = utcnow()
        with self.engine.begin() as conn:
            rows = {
                r["id"]: r
                for r in conn.execute(
                    sa.select(subscriptions).where(subscriptions.c.origin == origin)
                ).mappings()
            }
            gone = [i for i, r in rows.items() if i not in wanted and r["deleted_at"] is None]
            if gone:
                _retire(conn, gone, now)
            for sub_id, values in wanted.items():
                old = rows.get(sub_id)
                if old is None:
                    conn.execute(
                        subscriptions.insert(),
                        [{**values, "id": sub_id, "origin": origin, "created_at": now}],
                    )
                    continue
                if reenable_on_new_url and (
                    old["url"] != values["url"] or old["deleted_at"] is not None
                ):
                    values = {**values, "disabled_at": None, "disabled_reason": None}
                if any(old[k] != v for k, v in values.items()):
                    conn.execute(
                        subscriptions.update().where(subscriptions.c.id == sub_id), [values]
                    )


def _retire(conn: Connection, ids: list[str], now: dt.datetime) -> int:
    """Mark subscriptions deleted and cancel their pending deliveries; how many were retired."""
    done = conn.execute(
        subscriptions.update()
        .where(subscriptions.c.id.in_(ids), subscriptions.c.deleted_at.is_(None))
        .values(deleted_at=now)
    ).rowcount
    cancel_pending(conn, ids)
    return done


def cancel_pending(conn: Connection, ids: list[str]) -> int:
    """Cancel the pending deliveries of some subscriptions."""
    return conn.execute(
        deliveries.update()
        .where(deliveries.c.subscription_id.in_(ids), deliveries.c.state == "pending")
        .values(state="cancelled", lease_until=None, claimed_by=None)
    ).rowcount
