"""The delivery outbox: enqueue a change set in one transaction, claim due rows, record attempts.

A claim leases rows to one worker (`claimed_by`, `lease_until`); a lease that runs out (its
worker crashed) makes the rows claimable again. On PostgreSQL the select of a claim can take
`FOR UPDATE SKIP LOCKED` so that several replicas share the outbox.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import aware, iso, utcnow
from gitconf.notify.events import CHANGED
from gitconf.store.db import insert_ignore
from gitconf.store.outbox import (
    attempts,
    deliveries,
    outbox_cursor,
    served_moves,
    subscriptions,
)
from gitconf.store.subscriptions import cancel_pending

__all__ = ["Attempt", "Delivery", "Move", "NewMove", "Outbox"]

Outcome = Literal["delivered", "retry", "dead", "gone"]


class Delivery(NamedTuple):
    """A claimed delivery: what to send, to whom, and how often it was tried."""

    id: int
    event_id: str
    subscription_id: str
    type: str
    environment: str
    service: str
    revision: str
    body: bytes
    attempts: int
    created_at: dt.datetime


class Move(NamedTuple):
    """The served state whose change set the outbox last holds, and its sequence number."""

    seq: int  # 0: written by a gitconf before served moves
    revision: str
    pins: dict[str, str]

    @property
    def state(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What the move served: the head and the pins, comparable with ServedRevision.state."""
        return self.revision, tuple(sorted(self.pins.items()))


class NewMove(NamedTuple):
    """A move of the served state to write with its change set."""

    key: str
    revision: str
    pins: dict[str, str]
    previous: Move | None
    kind: str  # publish | rollback | pin | unpin | baseline
    reason: str | None = None


class Attempt(NamedTuple):
    """What one POST did."""

    at: dt.datetime
    status_code: int | None
    latency_ms: float
    error: str | None


class Outbox:
    """The deliveries and attempts tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.skip_locked = engine.dialect.name == "postgresql"
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps
        # (1, 2, 5 ... 100 ms). Lanes queue on a lock here instead, which hands the write
        # over at once: several times the throughput with ten lanes.
        self._lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A write transaction, taken in turn on SQLite."""
        with self._lock or contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn

    # -- writing a change set ------------------------------------------------------------

    def enqueue(
        self,
        rows: Sequence[dict[str, Any]],
        revision: str,
        cursor: tuple[str, str] | None = None,
        move: NewMove | None = None,
    ) -> tuple[int, int]:
        """Add delivery rows in one transaction; (rows added, older deliveries superseded).

        A row whose (subscription, environment, service, revision, move) exists is skipped,
        so a change set written twice adds nothing. An undelivered older event for the same
        subscription and config is superseded by the new one, except a broker's: a broker
        gets every change set. `cursor` (key, revision) is moved in the same transaction;
        `move` is recorded in it, the rows get its sequence number, and the cursor points at it.
        """
        added = superseded = 0
        with self._writing() as conn:
            seq = 0
            if move is not None:
                seq = _record_move(conn, move)
                rows = [{**r, "move": seq} for r in rows]
            if rows:
                insert = insert_ignore(self.engine, deliveries)
                if self.engine.dialect.insert_executemany_returning:
                    # executemany's rowcount is not a sum on every driver; RETURNING is exact
                    # and leaves out the rows the unique key skipped.
                    added = len(conn.execute(insert.returning(deliveries.c.id), list(rows)).all())
                else:
                    added = max(conn.execute(insert, list(rows)).rowcount, 0)
                brokers = sa.select(subscriptions.c.id).where(subscriptions.c.origin == "broker")
                newer = deliveries.alias("newer")
                # The rows just added: those of this move (a pinned environment's name its pin,
                # not the head), or those of revision when no move is recorded.
                this_batch = newer.c.move == seq if seq else newer.c.revision == revision
                has_newer = (
                    sa.select(newer.c.id)
                    .where(
                        newer.c.subscription_id == deliveries.c.subscription_id,
                        newer.c.environment == deliveries.c.environment,
                        newer.c.service == deliveries.c.service,
                        this_batch,
                        newer.c.move == seq,
                        newer.c.id > deliveries.c.id,
                    )
                    .exists()
                )
                superseded = conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.state == "pending",
                        deliveries.c.type == CHANGED,
                        sa.or_(deliveries.c.revision != revision, deliveries.c.move != seq),
                        deliveries.c.subscription_id.not_in(brokers),
                        has_newer,
                    )
                    .values(state="superseded", superseded_by=revision)
                ).rowcount
            if cursor is not None:
                _set_cursor(conn, *cursor)
            if move is not None:
                _set_cursor(conn, move.key, move.revision, seq)
        return added, superseded

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """Serialise the change-set writers of key across replicas (a PostgreSQL advisory lock).

        Every replica publishes the same revision; the first to take the lock writes its
        change set and moves the cursor, and the others then find the cursor there and skip
        the work instead of building the same rows again. SQLite has one server: no lock.
        """
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})

    def cursor(self, key: str) -> str | None:
        """The revision whose change set was last written for key."""
        with self.engine.connect() as conn:
            found: str | None = conn.execute(
                sa.select(outbox_cursor.c.revision).where(outbox_cursor.c.key == key)
            ).scalar()
        return found

    def last_move(self, key: str) -> Move | None:
        """The served state whose change set was last written for key (None: none yet)."""
        query = (
            sa.select(outbox_cursor.c.revision, outbox_cursor.c.move, served_moves.c.pins)
            .select_from(
                outbox_cursor.outerjoin(served_moves, served_moves.c.seq == outbox_cursor.c.move)
            )
            .where(outbox_cursor.c.key == key)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).first()
        if found is None:
            return None
        return Move(found.move or 0, found.revision, dict(found.pins or {}))

    def moves(self, key: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest served moves of key first."""
        query = (
            sa.select(served_moves)
            .where(served_moves.c.key == key)
            .order_by(served_moves.c.seq.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "seq": r["seq"],
                "revision": r["revision"],
                "pins": r["pins"] or {},
                "previous_revision": r["previous_revision"],
                "previous_pins": r["previous_pins"],
                "kind": r["kind"],
                "reason": r["reason"],
                "at": iso(r["at"]),
            }
            for r in rows
        ]

    def set_cursor(self, key: str, revision: str) -> None:
        """Record that revision's change set is in the outbox."""
        with self._writing() as conn:
            _set_cursor(conn, key, revision)

    # -- the worker's side ---------------------------------------------------------------

    def due_subscriptions(self, now: dt.datetime) -> list[str]:
        """Subscriptions with a delivery due now that no live lease holds."""
        query = (
            sa.select(deliveries.c.subscription_id)
            .where(_due(now))
            .group_by(deliveries.c.subscription_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def next_due(self, now: dt.datetime) -> dt.datetime | None:
        """When the next pending delivery after now comes due."""
        query = sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.state == "pending", deliveries.c.next_attempt_at > now
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return aware(found) if found is not None else None

    def blocked_until(self, sub_id: str) -> dt.datetime | None:
        """When the oldest pending delivery of a subscription can next be claimed (its retry
        is due and no lease holds it): what an in-order lane waits for. None: none pending."""
        query = (
            sa.select(deliveries.c.next_attempt_at, deliveries.c.lease_until)
            .where(deliveries.c.subscription_id == sub_id, deliveries.c.state == "pending")
            .order_by(deliveries.c.id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).first()
        if found is None:
            return None
        due, leased = aware(found[0]), found[1]
        return max(due, aware(leased)) if leased is not None else due

    def claim(
        self,
        sub_id: str,
        worker: str,
        now: dt.datetime,
        limit: int,
        lease: float,
        *,
        in_order: bool = False,
    ) -> list[Delivery]:
        """Lease up to limit due deliveries of one subscription to worker, longest due first.

        A retried delivery is due later than the ones queued behind it, so an event the
        subscriber keeps refusing does not hold back the others. in_order (a broker's) takes
        them oldest first instead, and none queued after a pending one that is not due (it
        is waiting for a retry, or another replica holds it): the order they were queued in
        is the order they are sent in.
        """
        until = now + dt.timedelta(seconds=lease)
        mine = deliveries.c.subscription_id == sub_id
        order: tuple[sa.ColumnElement[Any], ...] = (deliveries.c.next_attempt_at, deliveries.c.id)
        pick = sa.select(deliveries.c.id).where(mine, _due(now))
        if in_order:
            order = (deliveries.c.id,)
            waiting = sa.select(sa.func.min(deliveries.c.id)).where(
                mine, deliveries.c.state == "pending", sa.not_(_due(now))
            )
            pick = pick.where(deliveries.c.id < sa.func.coalesce(waiting.scalar_subquery(), 2**62))
        pick = pick.order_by(*order).limit(limit)
        if self.skip_locked:
            pick = pick.with_for_update(skip_locked=True)
        with self._writing() as conn:
            if in_order and self.engine.dialect.name == "postgresql":
                # One claim of the subscription at a time across replicas, each seeing the
                # leases of the one before: a second replica takes nothing queued after rows
                # the first holds, so the order holds across replicas too.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"gitconf-claim:{sub_id}"},
                )
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids), _due(now))
                .values(claimed_by=worker, lease_until=until)
            )
            rows = conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.id.in_(ids), deliveries.c.claimed_by == worker)
                .order_by(*order)
            ).mappings()
            return [
                Delivery(
                    id=r["id"],
                    event_id=r["event_id"],
                    subscription_id=r["subscription_id"],
                    type=r["type"],
                    environment=r["environment"],
                    service=r["service"],
                    revision=r["revision"],
                    body=r["body"].encode(),
                    attempts=r["attempts"],
                    created_at=aware(r["created_at"]),
                )
                for r in rows
            ]

    def record(
        self,
        delivery: Delivery,
        attempt: Attempt,
        outcome: Outcome,
        *,
        next_at: dt.datetime | None = None,
        worker: str | None = None,
        lease_until: dt.datetime | None = None,
    ) -> None:
        """Log an attempt and move the delivery on, in one transaction.

        delivered: done; retry: due again at next_at; dead: given up after max_age; gone: the
        subscriber answered 410 Gone (state `gone`), so the subscription is disabled and its
        other deliveries cancelled.
        With worker and lease_until, the worker's other leased rows of the same subscription
        are renewed, so a long batch keeps its claim.
        """
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_status": attempt.status_code,
            "last_error": attempt.error,
            "lease_until": None,
            "claimed_by": None,
        }
        this = deliveries.c.id == delivery.id
        with self._writing() as conn:
            conn.execute(
                attempts.insert(),
                [
                    {
                        "delivery_id": delivery.id,
                        "number": delivery.attempts + 1,
                        "attempted_at": attempt.at,
                        "status_code": attempt.status_code,
                        "latency_ms": attempt.latency_ms,
                        "error": attempt.error,
                    }
                ],
            )
            extra: dict[str, Any]
            states: tuple[str, ...] = ("pending",)
            if outcome == "delivered":
                # A success counts even if a newer revision superseded it meanwhile.
                states = ("pending", "superseded")
                extra = {"state": "delivered", "delivered_at": attempt.at}
            elif outcome == "retry":
                assert next_at is not None
                extra = {"next_attempt_at": next_at}
            else:  # dead or gone: the state of that name
                extra = {"state": outcome}
            moved = conn.execute(
                deliveries.update()
                .where(this, deliveries.c.state.in_(states))
                .values(**values, **extra)
            ).rowcount
            if not moved:  # superseded or cancelled meanwhile: keep its state, log the try
                conn.execute(deliveries.update().where(this).values(**values))
            if outcome == "gone":
                conn.execute(
                    subscriptions.update()
                    .where(subscriptions.c.id == delivery.subscription_id)
                    .values(
                        disabled_at=attempt.at,
                        disabled_reason=(
                            f"the target answered 410 Gone at {iso(attempt.at)}; "
                            "delete the subscription and create it again to resume"
                        ),
                    )
                )
                cancel_pending(conn, [delivery.subscription_id])
            elif worker is not None and lease_until is not None:
                conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.subscription_id == delivery.subscription_id,
                        deliveries.c.claimed_by == worker,
                        deliveries.c.state == "pending",
                        deliveries.c.id != delivery.id,
                    )
                    .values(lease_until=lease_until)
                )

    def release(self, ids: Iterable[int], worker: str) -> None:
        """Give back leased rows that were not attempted."""
        ids = list(ids)
        if not ids:
            return
        with self._writing() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids), deliveries.c.claimed_by == worker)
                .values(lease_until=None, claimed_by=None)
            )

    def release_all(self) -> int:
        """Give back every lease: only for a store no other process uses (a SQLite file)."""
        with self._writing() as conn:
            return conn.execute(
                deliveries.update()
                .where(deliveries.c.claimed_by.is_not(None))
                .values(lease_until=None, claimed_by=None)
            ).rowcount

    def prune(self, before: dt.datetime) -> int:
        """Delete finished deliveries made before a time, with their attempts; how many."""
        finished = (
            sa.select(deliveries.c.id)
            .where(deliveries.c.state != "pending", deliveries.c.created_at < before)
            .scalar_subquery()
        )
        with self._writing() as conn:
            conn.execute(attempts.delete().where(attempts.c.delivery_id.in_(finished)))
            removed: int = conn.execute(
                deliveries.delete().where(deliveries.c.id.in_(finished))
            ).rowcount
        return removed

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        query = sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(query)}

    def counts_by_subscription(self) -> dict[str, dict[str, int]]:
        """How many deliveries each subscription has in each state."""
        query = sa.select(
            deliveries.c.subscription_id, deliveries.c.state, sa.func.count()
        ).group_by(deliveries.c.subscription_id, deliveries.c.state)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for sub_id, state, n in conn.execute(query):
                out.setdefault(sub_id, {})[state] = n
        return out

    def deliveries(
        self, sub_id: str, *, limit: int = 100, state: str | None = None
    ) -> list[dict[str, Any]]:
        """A subscription's deliveries, newest first, each with its attempts."""
        query = (
            sa.select(deliveries)
            .where(deliveries.c.subscription_id == sub_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if state:
            query = query.where(deliveries.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            by_delivery: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
            if rows:
                tried = conn.execute(
                    sa.select(attempts)
                    .where(attempts.c.delivery_id.in_(list(by_delivery)))
                    .order_by(attempts.c.id)
                ).mappings()
                for a in tried:
                    by_delivery[a["delivery_id"]].append(
                        {
                            "number": a["number"],
                            "at": iso(a["attempted_at"]),
                            "status_code": a["status_code"],
                            "latency_ms": a["latency_ms"],
                            "error": a["error"],
                        }
                    )
        return [
            {
                "id": r["event_id"],
                "type": r["type"],
                "environment": r["environment"] or None,
                "service": r["service"] or None,
                "revision": r["revision"],
                "previous_revision": r["previous_revision"],
                "state": r["state"],
                "created_at": iso(r["created_at"]),
                "next_attempt_at": iso(r["next_attempt_at"]) if r["state"] == "pending" else None,
                "delivered_at": iso(r["delivered_at"]),
                "superseded_by": r["superseded_by"],
                "last_status": r["last_status"],
                "last_error": r["last_error"],
                "attempts": by_delivery[r["id"]],
            }
            for r in rows
        ]


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        deliveries.c.state == "pending",
        deliveries.c.next_attempt_at <= now,
        sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
    )


def _record_move(conn: sa.Connection, move: NewMove) -> int:
    """Insert a served move; the sequence number the store gave it."""
    previous = move.previous
    seq: int = conn.execute(
        served_moves.insert().returning(served_moves.c.seq),
        {
            "key": move.key,
            "revision": move.revision,
            "pins": dict(move.pins),
            "previous_revision": previous.revision if previous is not None else None,
            "previous_pins": dict(previous.pins) if previous is not None else None,
            "kind": move.kind,
            "reason": move.reason,
            "at": utcnow(),
        },
    ).scalar_one()
    return seq


def _set_cursor(conn: sa.Connection, key: str, revision: str, move: int | None = None) -> None:
    now = utcnow()
    moved = conn.execute(
        outbox_cursor.update()
        .where(outbox_cursor.c.key == key)
        .values(revision=revision, updated_at=now, move=move)
    ).rowcount
    if not moved:
        conn.execute(
            outbox_cursor.insert(),
            [{"key": key, "revision": revision, "updated_at": now, "move": move}],
        )
