"""Pins: an environment served from an earlier published revision until unpinned.

One row per (tracked repository and branch, environment), shared by every replica on the
store; an unpin keeps the row with who cleared it and why, so that any replica announcing the
unpin can give the reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import iso, utcnow
from gitconf.store.db import metadata, upsert

__all__ = ["Pin", "PinStore", "pins"]

pins = sa.Table(
    "pins",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("environment", sa.String(255), primary_key=True),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cleared_by", sa.String(255), nullable=True),
    sa.Column("cleared_reason", sa.Text, nullable=True),
)


class Pin(NamedTuple):
    """One environment's pin (active while cleared_at is None)."""

    environment: str
    revision: str
    reason: str
    actor: str
    pinned_at: dt.datetime
    cleared_at: dt.datetime | None = None
    cleared_by: str | None = None
    cleared_reason: str | None = None

    def doc(self) -> dict[str, Any]:
        """The pin as JSON (/v1/status, the pin routes)."""
        return {
            "environment": self.environment,
            "revision": self.revision,
            "reason": self.reason,
            "pinned_by": self.actor,
            "pinned_at": iso(self.pinned_at),
        }


class PinStore:
    """The pins of one tracked repository and branch."""

    def __init__(self, engine: Engine, key: str) -> None:
        self.engine = engine
        self.key = key

    def _rows(self, active: bool) -> dict[str, Pin]:
        query = sa.select(pins).where(pins.c.key == self.key)
        query = query.where(
            pins.c.cleared_at.is_(None) if active else pins.c.cleared_at.is_not(None)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {
            r["environment"]: Pin(
                r["environment"],
                r["revision"],
                r["reason"],
                r["actor"],
                r["pinned_at"],
                r["cleared_at"],
                r["cleared_by"],
                r["cleared_reason"],
            )
            for r in rows
        }

    def active(self) -> dict[str, Pin]:
        """The environments pinned now."""
        return self._rows(True)

    def cleared(self) -> dict[str, Pin]:
        """The last unpin of each environment not pinned now."""
        return self._rows(False)

    def pin(self, environment: str, revision: str, reason: str, actor: str) -> Pin:
        """Pin environment to revision (replacing a pin it has)."""
        row = Pin(environment, revision, reason, actor, utcnow())
        with self.engine.begin() as conn:
            update = ["revision", "reason", "actor", "pinned_at", "cleared_at", "cleared_by",
                      "cleared_reason"]  # fmt: skip
            conn.execute(
                upsert(self.engine, pins, ["key", "environment"], update),
                [{"key": self.key, **row._asdict()}],
            )
        return row

    def unpin(self, environment: str, reason: str, actor: str) -> Pin | None:
        """Clear environment's pin; the pin it had (None: it had none)."""
        now = utcnow()
        mine = (pins.c.key == self.key, pins.c.environment == environment)
        with self.engine.begin() as conn:
            moved = conn.execute(
                pins.update()
                .where(*mine, pins.c.cleared_at.is_(None))
                .values(cleared_at=now, cleared_by=actor, cleared_reason=reason)
            ).rowcount
        if not moved:
            return None
        return self.cleared().get(environment)
