"""The outbox on a real SQLite file: no duplicates, supersede, claims and leases, attempts."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import utcnow
from gitconf.notify.events import CHANGED
from gitconf.store.db import create_schema, make_engine
from gitconf.store.deliveries import Attempt, Move, NewMove, Outbox
from gitconf.store.outbox import MOVE_KEY, OLD_KEY, attempts, deliveries, migrate, subscriptions
from gitconf.store.subscriptions import SubscriptionStore

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
R1, R2, R3 = "1" * 40, "2" * 40, "3" * 40


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The store on a SQLite file, and on PostgreSQL when GITCONF_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gitconf.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    create_schema(engine)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def outbox(engine: Engine) -> Outbox:
    return Outbox(engine)


@pytest.fixture
def subs(engine: Engine) -> SubscriptionStore:
    return SubscriptionStore(engine)


def row(sub: str, env: str, service: str, revision: str, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "event_id": f"evt_{sub}_{env}_{service}_{revision[:4]}_{extra.pop('n', 0)}",
        "subscription_id": sub,
        "type": CHANGED,
        "environment": env,
        "service": service,
        "revision": revision,
        "previous_revision": None,
        "body": "{}",
        "state": "pending",
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        **extra,
    }


def states(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        query = sa.select(deliveries.c.service, deliveries.c.revision, deliveries.c.state)
        return [(s, r[:1], st) for s, r, st in conn.execute(query.order_by(deliveries.c.id))]


def test_sqlite_is_in_wal_mode(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_writing_a_change_set_twice_adds_nothing(
    engine: Engine, outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    rows = [row(sub, "prod", "pay", R1), row(sub, "prod", "search", R1)]
    assert outbox.enqueue(rows, R1, cursor=("k", R1)) == (2, 0)
    again = [row(sub, "prod", "pay", R1, n=1), row(sub, "prod", "search", R1, n=1)]
    assert outbox.enqueue(again, R1, cursor=("k", R1)) == (0, 0)
    assert outbox.counts() == {"pending": 2}
    assert outbox.cursor("k") == R1
    assert outbox.cursor("other") is None


def test_a_newer_revision_supersedes_undelivered_older_ones(
    engine: Engine, outbox: Outbox, subs: SubscriptionStore
) -> None:
    a = subs.create(url="http://127.0.0.1/a", secret=SECRET).id
    b = subs.create(url="http://127.0.0.1/b", secret=SECRET).id
    outbox.enqueue(
        [row(a, "prod", "pay", R1), row(a, "prod", "search", R1), row(b, "prod", "pay", R1)], R1
    )
    done = outbox.claim(b, "w", utcnow(), 10, 30)
    outbox.record(done[0], Attempt(utcnow(), 200, 1.0, None), "delivered")
    added, superseded = outbox.enqueue([row(a, "prod", "pay", R2), row(b, "prod", "pay", R2)], R2)
    assert (added, superseded) == (2, 1)
    assert states(engine) == [
        ("pay", "1", "superseded"),  # a's older pay: superseded by R2
        ("search", "1", "pending"),  # another config: untouched
        ("pay", "1", "delivered"),  # b's was delivered already: stays so
        ("pay", "2", "pending"),
        ("pay", "2", "pending"),
    ]
    assert outbox.enqueue([row(a, "prod", "pay", R3)], R3) == (1, 1)


def test_claims_lease_rows_to_one_worker_until_the_lease_runs_out(
    outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b", "c")], R1)
    now = utcnow()
    assert outbox.due_subscriptions(now) == [sub]
    first = outbox.claim(sub, "w1", now, 2, 30)
    assert [d.service for d in first] == ["a", "b"]
    assert [d.service for d in outbox.claim(sub, "w2", now, 10, 30)] == ["c"]
    assert outbox.claim(sub, "w3", now, 10, 30) == []
    assert outbox.due_subscriptions(now) == []
    later = now + dt.timedelta(seconds=31)  # w1 and w2 died holding their leases
    assert [d.service for d in outbox.claim(sub, "w3", later, 10, 30)] == ["a", "b", "c"]


def test_release_and_release_all_give_rows_back(outbox: Outbox, subs: SubscriptionStore) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b")], R1)
    now = utcnow()
    a, _b = outbox.claim(sub, "w1", now, 10, 300)
    outbox.release([a.id], "w2")  # not w2's to release
    assert outbox.claim(sub, "w2", now, 10, 300) == []
    outbox.release([a.id], "w1")
    assert [d.service for d in outbox.claim(sub, "w2", now, 10, 300)] == ["a"]
    assert outbox.release_all() == 2
    assert len(outbox.claim(sub, "w3", now, 10, 300)) == 2


def test_recording_attempts(engine: Engine, outbox: Outbox, subs: SubscriptionStore) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b", "c")], R1)
    now = utcnow()
    a, b, c = outbox.claim(sub, "w", now, 10, 30)
    later = now + dt.timedelta(seconds=5)
    outbox.record(a, Attempt(now, 500, 12.5, "HTTP 500"), "retry", next_at=later)
    outbox.record(b, Attempt(now, None, 2000.0, "no answer within 2s"), "dead")
    outbox.record(c, Attempt(now, 204, 3.0, None), "delivered")
    assert outbox.next_due(now) == later
    assert outbox.due_subscriptions(now) == []
    assert [d.service for d in outbox.claim(sub, "w", later, 10, 30)] == ["a"]
    shown = {d["service"]: d for d in outbox.deliveries(sub)}
    assert shown["a"]["state"] == "pending"
    assert shown["a"]["attempts"] == [
        {
            "number": 1,
            "at": shown["a"]["attempts"][0]["at"],
            "status_code": 500,
            "latency_ms": 12.5,
            "error": "HTTP 500",
        }
    ]
    assert shown["b"]["state"] == "dead"
    assert shown["b"]["attempts"][0]["error"] == "no answer within 2s"
    assert shown["c"]["state"] == "delivered" and shown["c"]["delivered_at"]
    assert outbox.counts() == {"pending": 1, "dead": 1, "delivered": 1}
    assert [d["service"] for d in outbox.deliveries(sub, state="dead")] == ["b"]


def test_410_disables_the_subscription_and_cancels_the_rest(
    outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b")], R1)
    a, _ = [*outbox.claim(sub, "w", utcnow(), 1, 30), None]
    assert a is not None
    outbox.record(a, Attempt(utcnow(), 410, 1.0, None), "gone")
    found = subs.get(sub)
    assert found is not None and not found.active
    assert "410 Gone" in (found.disabled_reason or "")
    assert outbox.counts() == {"gone": 1, "cancelled": 1}
    assert [d["service"] for d in outbox.deliveries(sub, state="gone")] == ["a"]
    assert [s.id for s in subs.all(active_only=True)] == []


def test_deleting_a_subscription_cancels_its_pending_deliveries(
    outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", "a", R1)], R1)
    assert subs.delete(sub) is True
    assert subs.get(sub) is None
    assert subs.delete(sub) is False
    assert outbox.counts() == {"cancelled": 1}


def test_manifest_subscriptions_are_synced(subs: SubscriptionStore) -> None:
    declared = {
        "name": "pay",
        "url": "http://127.0.0.1/a",
        "environments": ["prod*"],
        "secret_env": "X",
        "source": "gitconf.yaml:5:5",
    }
    subs.sync_manifest([declared])
    (pay,) = subs.all()
    assert (pay.id, pay.origin, pay.environments, pay.services) == (
        "git_pay",
        "manifest",
        ("prod*",),
        ("*",),
    )
    assert pay.doc()["declared_at"] == "gitconf.yaml:5:5"
    subs.sync_manifest([{**declared, "url": "http://127.0.0.1/b"}])
    assert [s.url for s in subs.all()] == ["http://127.0.0.1/b"]
    subs.sync_manifest([])
    assert subs.all() == []
    subs.sync_manifest([declared])
    assert [s.id for s in subs.all()] == ["git_pay"]


def test_migrate_adds_columns_a_newer_version_defines(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE outbox_cursor (key VARCHAR(64) PRIMARY KEY, revision VARCHAR(64) NOT NULL)"
        )
    assert migrate(engine) == [
        "added column outbox_cursor.updated_at",
        "added column outbox_cursor.move",
    ]
    assert migrate(engine) == []
    Outbox(engine).set_cursor("k", R1)
    assert Outbox(engine).cursor("k") == R1
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_keys_an_older_outbox_by_served_move_keeping_its_rows(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'old.db'}"
    )
    engine = make_engine(url)
    # The tables as a gitconf before served moves made them: no `move`, the old key.
    old = sa.MetaData()
    subscriptions.to_metadata(old)
    columns = [
        sa.Column(
            c.name,
            c.type,
            *[sa.ForeignKey(fk.target_fullname) for fk in c.foreign_keys],
            primary_key=c.primary_key,
            nullable=c.nullable,
        )
        for c in deliveries.columns
        if c.name != "move"
    ]
    sa.Table(
        "deliveries",
        old,
        *columns,
        sa.UniqueConstraint("subscription_id", "environment", "service", "revision", name=OLD_KEY),
        sa.Index("ix_deliveries_due", "state", "next_attempt_at"),
    )
    attempts.to_metadata(old)
    old.create_all(engine)
    sub = SubscriptionStore(engine).create(url="http://127.0.0.1/", secret=SECRET).id
    with engine.begin() as conn:
        conn.execute(old.tables["deliveries"].insert(), [row(sub, "prod", "pay", R1)])
        delivery_id = conn.execute(sa.select(old.tables["deliveries"].c.id)).scalar_one()
        conn.execute(
            attempts.insert(), [{"delivery_id": delivery_id, "number": 1, "attempted_at": utcnow()}]
        )
    done = migrate(engine)
    assert "added column deliveries.move" in done
    assert f"keyed deliveries by served move ({OLD_KEY} -> {MOVE_KEY})" in done
    assert migrate(engine) == []
    names = {u["name"] for u in sa.inspect(engine).get_unique_constraints("deliveries")}
    assert MOVE_KEY in names and OLD_KEY not in names
    outbox = Outbox(engine)
    # The old row and its attempt are there; the same revision in a later move is a new row.
    assert [d["attempts"][0]["number"] for d in outbox.deliveries(sub)] == [1]
    move = NewMove("k", R1, {}, None, "rollback")
    # (and supersedes the old one, still pending)
    assert outbox.enqueue([row(sub, "prod", "pay", R1, n=2)], R1, move=move) == (1, 1)
    last = outbox.last_move("k")
    assert last is not None and last.seq > 0 and last == Move(last.seq, R1, {})
    engine.dispose()


def test_migrate_makes_the_deliveries_an_older_gitconf_ended_on_a_410_gone(
    engine: Engine, outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b", "c")], R1)
    with engine.begin() as conn:  # as gitconf wrote them before `gone` existed
        for service, status in (("a", 410), ("b", 500)):
            conn.execute(
                deliveries.update()
                .where(deliveries.c.service == service)
                .values(state="dead", last_status=status)
            )
    assert migrate(engine) == ["marked 1 delivery(ies) ended by a 410 gone, not dead"]
    assert migrate(engine) == []
    assert [s for _, _, s in states(engine)] == ["gone", "dead", "pending"]


def test_concurrent_claims_never_share_a_row(
    engine: Engine, outbox: Outbox, subs: SubscriptionStore
) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", f"s{i}", R1) for i in range(200)], R1)
    now = utcnow()
    claimed: list[list[int]] = []

    def claim(worker: str) -> None:
        for _ in range(20):
            claimed.append([d.id for d in Outbox(engine).claim(sub, worker, now, 7, 60)])

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 200


def test_prune_drops_old_finished_deliveries_only(outbox: Outbox, subs: SubscriptionStore) -> None:
    sub = subs.create(url="http://127.0.0.1/", secret=SECRET).id
    outbox.enqueue([row(sub, "prod", s, R1) for s in ("a", "b")], R1)
    done, _ = [*outbox.claim(sub, "w", utcnow(), 1, 30), None]
    assert done is not None
    outbox.record(done, Attempt(utcnow(), 204, 1.0, None), "delivered")
    assert outbox.prune(utcnow() - dt.timedelta(days=7)) == 0
    assert outbox.prune(utcnow() + dt.timedelta(seconds=1)) == 1
    assert outbox.counts() == {"pending": 1}, "a pending delivery is never pruned"


BROKER = {
    "id": "brk_bus",
    "name": "bus",
    "url": "amqp://rabbit:5672/",
    "environments": ["*"],
    "services": ["*"],
    "events": [CHANGED],
    "declared_at": "server.yaml brokers[0] ('bus')",
}


def test_broker_subscriptions_are_synced_and_retired(subs: SubscriptionStore) -> None:
    subs.sync_brokers([BROKER])
    (bus,) = subs.all()
    assert (bus.id, bus.origin, bus.url, bus.secret) == (
        "brk_bus",
        "broker",
        "amqp://rabbit:5672/",
        None,
    )
    assert bus.doc()["declared_at"] == "server.yaml brokers[0] ('bus')"
    subs.sync_brokers([{**BROKER, "services": ["payments"]}])
    assert [s.services for s in subs.all()] == [("payments",)]
    subs.sync_manifest([])  # the manifest's sync leaves brokers alone, and the other way round
    assert [s.id for s in subs.all()] == ["brk_bus"]
    subs.sync_brokers([])
    assert subs.all() == []


def test_a_broker_gets_every_revision_nothing_is_superseded(
    engine: Engine, outbox: Outbox, subs: SubscriptionStore
) -> None:
    subs.sync_brokers([BROKER])
    hook = subs.create(url="http://127.0.0.1/a", secret=SECRET).id
    outbox.enqueue([row("brk_bus", "prod", "pay", R1), row(hook, "prod", "pay", R1)], R1)
    added, superseded = outbox.enqueue(
        [row("brk_bus", "prod", "pay", R2), row(hook, "prod", "pay", R2)], R2
    )
    assert (added, superseded) == (2, 1)
    assert states(engine) == [
        ("pay", "1", "pending"),  # the broker's: kept
        ("pay", "1", "superseded"),  # the webhook's: latest wins
        ("pay", "2", "pending"),
        ("pay", "2", "pending"),
    ]


def test_in_order_claims_send_nothing_queued_after_a_row_that_waits(
    outbox: Outbox, subs: SubscriptionStore
) -> None:
    subs.sync_brokers([BROKER])
    outbox.enqueue([row("brk_bus", "prod", s, R1) for s in ("a", "b", "c")], R1)
    now = utcnow()
    (first,) = outbox.claim("brk_bus", "w1", now, 1, 30, in_order=True)
    assert first.service == "a"
    # Another worker takes nothing while a is leased: b and c come after it.
    assert outbox.claim("brk_bus", "w2", now, 10, 30, in_order=True) == []
    later = now + dt.timedelta(seconds=5)
    outbox.record(first, Attempt(now, None, 1.0, "down"), "retry", next_at=later)
    assert outbox.claim("brk_bus", "w2", now, 10, 30, in_order=True) == []
    # Without in_order (a webhook's lane) b and c would go ahead of the retry.
    assert [d.service for d in outbox.claim("brk_bus", "w3", now, 10, 30)] == ["b", "c"]
    outbox.release_all()
    assert [d.service for d in outbox.claim("brk_bus", "w2", later, 10, 30, in_order=True)] == [
        "a",
        "b",
        "c",
    ]
