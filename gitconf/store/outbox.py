"""The notification tables: subscriptions, the delivery outbox, and every delivery attempt.

A delivery row is one event for one subscriber. It carries its own signed-over body, so
every retry sends the same bytes, and the columns a claim needs (`next_attempt_at`,
`lease_until`, `claimed_by`) so several replicas can share the outbox on PostgreSQL later
(`SELECT ... FOR UPDATE SKIP LOCKED` over the same columns).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.store.db import metadata

__all__ = ["attempts", "deliveries", "migrate", "outbox_cursor", "subscriptions"]

log = logging.getLogger(__name__)

# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere a BIGINT identity.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("origin", sa.String(16), nullable=False),  # api | manifest
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("environments", sa.JSON, nullable=False),
    sa.Column("services", sa.JSON, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("include_config", sa.Boolean, nullable=False, default=False),
    sa.Column("secret", sa.Text, nullable=True),  # api subscriptions: the whsec_ secret
    sa.Column("secret_env", sa.String(255), nullable=True),  # manifest ones: its variable
    sa.Column("declared_at", sa.String(255), nullable=True),  # gitconf.yaml:line:col
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)

# The deliveries' unique key, and the one before change_set joined it.
DELIVERY_KEY = "uq_deliveries_change"
_OLD_DELIVERY_KEY = "uq_deliveries_key"

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("subscription_id", sa.String(80), sa.ForeignKey("subscriptions.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("environment", sa.String(255), nullable=False),  # "" for revision events
    sa.Column("service", sa.String(255), nullable=False),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("previous_revision", sa.String(64), nullable=True),
    # The change set the event was written in (a token per change set), or "" for events
    # written once per revision (rejections, and rows from before this column): in the
    # unique key, so a revision published again (a rollback, and the roll forward after it)
    # is news, while a rejection written by two replicas is one event. A change set itself is
    # written once: under the cursor's lock, in the transaction that moves the cursor.
    sa.Column("change_set", sa.String(64), nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False),
    # pending | delivered | dead | superseded | cancelled
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("superseded_by", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.UniqueConstraint(
        "subscription_id",
        "environment",
        "service",
        "revision",
        "change_set",
        name=DELIVERY_KEY,
    ),
    sa.Index("ix_deliveries_due", "state", "next_attempt_at"),
    sa.Index("ix_deliveries_subscription", "subscription_id", "state", "id"),
)

attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", _Id, sa.ForeignKey("deliveries.id"), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

# Which revision's change set is in the outbox, per tracked repository and branch: lets a
# change set that could not be written (a locked or full database) be written later.
outbox_cursor = sa.Table(
    "outbox_cursor",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

OWN_TABLES = (subscriptions, deliveries, attempts, outbox_cursor)


def migrate(engine: Engine) -> list[str]:
    """Create the missing tables and add columns that a newer gitconf defines; the changes made.

    Only additive changes are made in place (new tables, new nullable or defaulted columns),
    which is all this schema has needed so far.
    """
    done: list[str] = []
    if engine.dialect.name == "sqlite":
        done += _rekey_deliveries_sqlite(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7428190312)"))
            done += _rekey_deliveries_postgresql(conn)
        existing = set(sa.inspect(conn).get_table_names())
        metadata.create_all(conn, tables=list(OWN_TABLES))
        for table in OWN_TABLES:
            if table.name not in existing:
                continue
            have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                done.append(f"{table.name}.{column.name}")
    for change in done:
        log.info("store: added column %s", change)
    return done


def _old_key(conn: sa.Connection) -> bool:
    """Whether deliveries exists with the unique key from before change_set."""
    inspector = sa.inspect(conn)
    if "deliveries" not in inspector.get_table_names():
        return False
    return "change_set" not in {c["name"] for c in inspector.get_columns("deliveries")}


_REKEYED = ["deliveries.change_set (in the unique key)"]


def _rekey_deliveries_postgresql(conn: sa.Connection) -> list[str]:
    """Add change_set and make it part of the unique key, in the caller's transaction."""
    if not _old_key(conn):
        return []
    conn.execute(
        sa.text("ALTER TABLE deliveries ADD COLUMN change_set VARCHAR(64) NOT NULL DEFAULT ''")
    )
    conn.execute(sa.text(f"ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS {_OLD_DELIVERY_KEY}"))
    conn.execute(
        sa.text(
            f"ALTER TABLE deliveries ADD CONSTRAINT {DELIVERY_KEY} UNIQUE "
            "(subscription_id, environment, service, revision, change_set)"
        )
    )
    return list(_REKEYED)


def _rekey_deliveries_sqlite(engine: Engine) -> list[str]:
    """Rebuild deliveries with change_set in its unique key, keeping every row and id.

    SQLite cannot change a table's constraints in place: this is its documented procedure
    (a new table, copy, drop, rename), with foreign keys off so that delivery_attempts keeps
    pointing at the same ids, and checked before the commit. The old rows keep the old key's
    meaning (change_set "").
    """
    with engine.connect() as conn:
        if not _old_key(conn):
            return []
    create = str(sa.schema.CreateTable(deliveries).compile(dialect=engine.dialect))
    create = create.replace("CREATE TABLE deliveries ", "CREATE TABLE deliveries__rekeyed ", 1)
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    assert dbapi is not None
    isolation = dbapi.isolation_level
    try:
        dbapi.isolation_level = None  # statements as written: BEGIN and COMMIT are ours
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("BEGIN IMMEDIATE")
        # Again under the write lock: another process may have just done it.
        old = [row[1] for row in cursor.execute("PRAGMA table_info(deliveries)").fetchall()]
        if "change_set" in old:
            cursor.execute("ROLLBACK")
            return []
        # The columns both tables have; the new ones take their defaults.
        common = ", ".join(f'"{c.name}"' for c in deliveries.columns if c.name in old)
        cursor.execute(create)
        cursor.execute(
            f"INSERT INTO deliveries__rekeyed ({common}) SELECT {common} FROM deliveries"
        )
        cursor.execute("DROP TABLE deliveries")
        cursor.execute("ALTER TABLE deliveries__rekeyed RENAME TO deliveries")
        for index in deliveries.indexes:
            cursor.execute(str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect)))
        problems = cursor.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"rebuilding deliveries would break foreign keys: {problems}")
        cursor.execute("COMMIT")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        dbapi.isolation_level = isolation
    except BaseException:
        # Whatever state it is in (a transaction open, foreign keys off), this connection
        # goes no further: closed, not returned to the pool. SQLite rolls back what it began.
        raw.invalidate()
        raise
    finally:
        raw.close()
    return list(_REKEYED)
