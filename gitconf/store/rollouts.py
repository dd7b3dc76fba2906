"""Rollouts: a candidate revision served to a rising share of an environment's instances.

One row per (tracked repository and branch, environment): its current or last rollout, shared
by every replica so that all serve the same split. Instances seen reading a rollout's
environment (X-Gitconf-Instance) are kept per rollout, with the revision each was served.
Every change of a row is a compare-and-set on its `version`, so replicas that advance a step
at the same moment advance it once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import aware, iso, utcnow
from gitconf.store.db import insert_ignore, metadata, upsert

__all__ = ["ACTIVE", "Rollout", "RolloutStore", "rollout_instances", "rollouts"]

ACTIVE = ("running", "paused")
# An aborted rollout keeps the environment on its stable revision until a newer commit.
HOLDING = (*ACTIVE, "aborted")

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("environment", sa.String(255), primary_key=True),
    sa.Column("id", sa.String(128), nullable=False),
    sa.Column("stable", sa.String(64), nullable=False),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("bake", sa.Float, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    # running | paused | promoted (the candidate is served to all) | aborted
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("replaced", sa.JSON, nullable=False),  # earlier candidates of this rollout
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_action", sa.String(32), nullable=False),
    sa.Column("last_actor", sa.String(255), nullable=False),
    sa.Column("last_reason", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)

rollout_instances = sa.Table(
    "rollout_instances",
    metadata,
    sa.Column("rollout", sa.String(128), primary_key=True),
    sa.Column("instance", sa.String(255), primary_key=True),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("replica", sa.String(128), nullable=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)


class Rollout(NamedTuple):
    """One environment's rollout."""

    environment: str
    id: str
    stable: str
    candidate: str
    steps: tuple[int, ...]
    bake: float
    step: int
    state: str
    replaced: tuple[str, ...]
    started_at: dt.datetime
    step_started_at: dt.datetime
    last_action: str
    last_actor: str
    last_reason: str | None
    version: int

    @property
    def percent(self) -> int:
        """The share of instances served the candidate now."""
        return (
            100
            if self.state == "promoted"
            else 0
            if self.state == "aborted"
            else self.steps[self.step]
        )

    def next_step_at(self) -> dt.datetime | None:
        """When the next step comes by itself (None: paused, done, or promote only)."""
        if self.state != "running" or not self.bake or self.step + 1 >= len(self.steps):
            return None
        return aware(self.step_started_at) + dt.timedelta(seconds=self.bake)

    def doc(self) -> dict[str, Any]:
        """The rollout as JSON (GET /v1/rollouts/<env>)."""
        following = self.next_step_at()
        return {
            "environment": self.environment,
            "id": self.id,
            "state": self.state,
            "percent": self.percent,
            "step": self.step,
            "steps": list(self.steps),
            "bake": self.bake,
            "stable": self.stable,
            "candidate": self.candidate,
            "replaced_candidates": list(self.replaced),
            "started_at": iso(self.started_at),
            "step_started_at": iso(self.step_started_at),
            "next_step_at": iso(following) if following else None,
            "last_action": {"action": self.last_action, "by": self.last_actor,
                            "reason": self.last_reason},
        }  # fmt: skip


def _row(r: Any) -> Rollout:
    return Rollout(
        r["environment"], r["id"], r["stable"], r["candidate"], tuple(r["steps"]), r["bake"],
        r["step"], r["state"], tuple(r["replaced"] or ()), r["started_at"], r["step_started_at"],
        r["last_action"], r["last_actor"], r["last_reason"], r["version"],
    )  # fmt: skip


class RolloutStore:
    """The rollouts of one tracked repository and branch."""

    def __init__(self, engine: Engine, key: str) -> None:
        self.engine = engine
        self.key = key

    def all(self) -> dict[str, Rollout]:
        """Every environment's current or last rollout."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(rollouts).where(rollouts.c.key == self.key)).mappings()
            return {r["environment"]: _row(r) for r in rows}

    def get(self, environment: str) -> Rollout | None:
        """One environment's current or last rollout."""
        return self.all().get(environment)

    def write(self, rollout: Rollout, expected: int | None) -> Rollout | None:
        """Write rollout if the environment's row is still at version expected (None: there
        is no row); the row written, or None when another replica changed it first."""
        written = rollout._replace(version=(expected or 0) + 1)
        values = {**written._asdict(), "steps": list(written.steps),
                  "replaced": list(written.replaced), "updated_at": utcnow()}  # fmt: skip
        with self.engine.begin() as conn:
            if expected is None:
                done = conn.execute(
                    insert_ignore(self.engine, rollouts), [{"key": self.key, **values}]
                ).rowcount
            else:
                done = conn.execute(
                    rollouts.update()
                    .where(
                        rollouts.c.key == self.key,
                        rollouts.c.environment == rollout.environment,
                        rollouts.c.version == expected,
                    )
                    .values(**values)
                ).rowcount
        return written if done else None

    def seen(self, rows: Iterable[tuple[str, str, str, str, dt.datetime]]) -> None:
        """Record instances seen: (rollout, instance, revision, replica, at)."""
        docs = [
            {"rollout": r, "instance": i, "revision": rev, "replica": rep, "seen_at": at}
            for r, i, rev, rep, at in rows
        ]
        if not docs:
            return
        with self.engine.begin() as conn:
            conn.execute(
                upsert(self.engine, rollout_instances, ["rollout", "instance"],
                       ["revision", "replica", "seen_at"]),
                docs,
            )  # fmt: skip

    def instances(self, rollout: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """The instances seen in a rollout, with the revision each was last served."""
        query = (
            sa.select(rollout_instances)
            .where(rollout_instances.c.rollout == rollout)
            .order_by(rollout_instances.c.instance)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"instance": r["instance"], "revision": r["revision"], "replica": r["replica"],
             "seen_at": iso(r["seen_at"])}
            for r in rows
        ]  # fmt: skip
