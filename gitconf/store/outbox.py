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
    sa.UniqueConstraint(
        "subscription_id", "environment", "service", "revision", name="uq_deliveries_key"
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
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                done.append(f"added column {table.name}.{column.name}")
        if deliveries.name in existing:
            # A 410 ends a delivery at once, so a dead one whose last answer was 410 is gone.
            regone = conn.execute(
                deliveries.update()
                .where(deliveries.c.state == "dead", deliveries.c.last_status == 410)
                .values(state="gone")
            ).rowcount
            if regone:
                done.append(f"marked {regone} delivery(ies) ended by a 410 gone, not dead")
    for change in done:
        log.info("store: %s", change)
    return done
