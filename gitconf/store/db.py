"""Engine and tables. SQLite (WAL) in the state dir by default; any SQLAlchemy URL by setting."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

__all__ = ["create_schema", "insert_ignore", "make_engine", "metadata", "revisions"]

metadata = sa.MetaData()

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("sha", sa.String(64), primary_key=True),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # published | rejected
    sa.Column("problems", sa.JSON, nullable=False, default=list),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)


def make_engine(url: str) -> Engine:
    """An engine for url; SQLite files get WAL mode and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create the tables that are missing (under an advisory lock on PostgreSQL)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7428190312)"))
        metadata.create_all(conn)


def insert_ignore(engine: Engine, table: sa.Table) -> Any:
    """An INSERT that skips rows whose unique key exists (ON CONFLICT DO NOTHING)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return table.insert().prefix_with("IGNORE")
