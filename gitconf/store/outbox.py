"""The notification tables: subscriptions, the delivery outbox, and every delivery attempt.

A delivery row is one event for one subscriber. It carries its own signed-over body, so
every retry sends the same bytes, and the columns a claim needs (`next_attempt_at`,
`lease_until`, `claimed_by`) so several replicas can share the outbox on PostgreSQL later
(`SELECT ... FOR UPDATE SKIP LOCKED` over the same columns).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.store.db import metadata

__all__ = [
    "attempts",
    "deliveries",
    "migrate",
    "outbox_cursor",
    "served_moves",
    "subscriptions",
]

log = logging.getLogger(__name__)

# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere a BIGINT identity.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("origin", sa.String(16), nullable=False),  # api | manifest | broker
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("url", sa.Text, nullable=False),  # a broker's: without its credentials
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

# The unique key of a delivery; before served moves it lacked `move` (OLD_KEY).
MOVE_KEY = "uq_deliveries_move"
OLD_KEY = "uq_deliveries_key"

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
    sa.Column("body", sa.Text, nullable=False),
    # pending | delivered | dead (undelivered after max_age) | gone (the subscriber answered
    # 410) | superseded | cancelled
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
    # The served move (served_moves.seq) whose change set holds the row; 0 for events that
    # are no move (a rejection). Part of the key, so that a move back to a revision that was
    # announced before (a rollback, a pin) is a new delivery, not a duplicate of the old one.
    sa.Column("move", sa.BigInteger, nullable=False, default=0, server_default="0"),
    sa.UniqueConstraint(
        "subscription_id", "environment", "service", "revision", "move", name=MOVE_KEY
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
    # The served move of that change set (served_moves.seq); None: written before moves.
    sa.Column("move", sa.BigInteger, nullable=True),
)

# Every move of the served state (the branch head, and the pins of environments), in the
# order the store handed out their sequence numbers: what the outbox announced, and from
# what. A move back to an earlier state is a move like any other.
served_moves = sa.Table(
    "served_moves",
    metadata,
    sa.Column("seq", _Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("pins", sa.JSON, nullable=False, default=dict),  # environment -> revision
    sa.Column("previous_revision", sa.String(64), nullable=True),
    sa.Column("previous_pins", sa.JSON, nullable=True),
    # publish | rollback | pin | unpin | baseline
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_served_moves_key", "key", "seq"),
)

OWN_TABLES = (subscriptions, deliveries, attempts, outbox_cursor, served_moves)


def migrate(engine: Engine) -> list[str]:
    """Create the missing tables and add columns that a newer gitconf defines; what was done.

    Only additive changes are made in place (new tables, new nullable or defaulted columns),
    which is all this schema has needed so far. Rows an older gitconf wrote are brought to
    today's meaning: a delivery ended by a 410 was recorded `dead`, and is `gone`.
    """
    done: list[str] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7428190312)"))
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
                if column.server_default is not None:
                    default = column.server_default.arg  # type: ignore[attr-defined]
                    kind += f" NOT NULL DEFAULT {default}"
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                done.append(f"added column {table.name}.{column.name}")
        if deliveries.name in existing and _rekey(conn):
            done.append(f"keyed deliveries by served move ({OLD_KEY} -> {MOVE_KEY})")
        if deliveries.name in existing:
            # A 410 ends a delivery at once, so a dead one whose last answer was 410 is gone.
            regone = conn.execute(
                deliveries.update()
                .where(deliveries.c.state == "dead", deliveries.c.last_status == 410)
                .values(state="gone")
            ).rowcount
            if regone:
                done.append(f"marked {regone} delivery(ies) ended by a 410 gone, not dead")
    if engine.dialect.name == "sqlite" and _rekey_sqlite(engine):
        done.append(f"keyed deliveries by served move ({OLD_KEY} -> {MOVE_KEY})")
    for change in done:
        log.info("store: %s", change)
    return done


def _has_old_key(conn: sa.Connection) -> bool:
    uniques = sa.inspect(conn).get_unique_constraints(deliveries.name)
    return any(u["name"] == OLD_KEY for u in uniques)


def _rekey(conn: sa.Connection) -> bool:
    """Replace the key without `move` by the one with it (PostgreSQL); whether it did."""
    if conn.dialect.name == "sqlite" or not _has_old_key(conn):
        return False
    conn.execute(sa.text(f"ALTER TABLE {deliveries.name} DROP CONSTRAINT {OLD_KEY}"))
    conn.execute(
        sa.text(
            f"ALTER TABLE {deliveries.name} ADD CONSTRAINT {MOVE_KEY} "
            "UNIQUE (subscription_id, environment, service, revision, move)"
        )
    )
    return True


def _rekey_sqlite(engine: Engine) -> bool:
    """SQLite cannot drop a table's constraint: make the deliveries table again under its
    name (rows and ids kept), with foreign keys off as SQLite's own procedure says, and
    checked before the commit."""
    with engine.connect() as conn:
        if not _has_old_key(conn):
            return False
    scratch = sa.MetaData()
    subscriptions.to_metadata(scratch)  # what the copy's foreign key names
    fresh = deliveries.to_metadata(scratch, name="deliveries_rekeyed")
    names = ", ".join(f'"{c.name}"' for c in deliveries.columns)
    statements = [
        str(sa.schema.CreateTable(fresh).compile(dialect=engine.dialect)),
        f"INSERT INTO {fresh.name} ({names}) SELECT {names} FROM {deliveries.name}",
        f"DROP TABLE {deliveries.name}",
        f"ALTER TABLE {fresh.name} RENAME TO {deliveries.name}",
        *(
            str(sa.schema.CreateIndex(i).compile(dialect=engine.dialect))
            for i in deliveries.indexes
        ),
    ]
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        level = dbapi.isolation_level
        dbapi.isolation_level = None  # this transaction is ours to begin and end
        cursor = dbapi.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    cursor.execute(statement)
                broken = cursor.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"rebuilding {deliveries.name} broke references: {broken}")
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        finally:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            dbapi.isolation_level = level
    finally:
        raw.close()
    return True
