"""The replicas' heartbeats: one row per live server on a shared store, and the poll
broadcast (PostgreSQL NOTIFY)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import utcnow
from gitconf.store.db import metadata

__all__ = ["CHANNEL", "Heartbeats", "replicas"]

CHANNEL = "gitconf_poll"
FORGET_AFTER = dt.timedelta(days=1)

replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("listen", sa.String(255), nullable=False),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)


class Heartbeats:
    """Queries of the replicas table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def beat(
        self, replica: str, row: dict[str, Any], started_at: dt.datetime, live_within: float
    ) -> int:
        """Write a replica's heartbeat row, forget rows a day old; how many replicas live."""
        now = utcnow()
        with self.engine.begin() as conn:
            updated = conn.execute(
                replicas.update().where(replicas.c.id == replica).values(**row)
            ).rowcount
            if not updated:
                conn.execute(replicas.insert().values(id=replica, started_at=started_at, **row))
            conn.execute(replicas.delete().where(replicas.c.heartbeat_at < now - FORGET_AFTER))
            live: int = conn.execute(
                sa.select(sa.func.count()).where(
                    replicas.c.heartbeat_at >= now - dt.timedelta(seconds=live_within)
                )
            ).scalar_one()
        return live

    def all(self) -> list[dict[str, Any]]:
        """Every replica row, the oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(replicas).order_by(replicas.c.started_at)).mappings()
            return [dict(row) for row in rows]

    def remove(self, replica: str) -> None:
        """Forget a replica (it stops)."""
        with self.engine.begin() as conn:
            conn.execute(replicas.delete().where(replicas.c.id == replica))

    def notify(self, payload: str) -> None:
        """Tell every replica LISTENing on CHANNEL (PostgreSQL only)."""
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))
