"""Engine and tables. SQLite (WAL) in the state dir by default; any SQLAlchemy URL by setting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

__all__ = [
    "LEGACY_REVISIONS",
    "StoreSchema",
    "create_schema",
    "insert_ignore",
    "make_engine",
    "metadata",
    "revisions",
    "upsert",
]

metadata = sa.MetaData()

# Every head a server saw, by the repository and branch it tracks (one store may serve several)
# and the commit: published, rejected (with the gitconf that rejected it) or error.
revisions = sa.Table(
    "revision_log",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("sha", sa.String(64), primary_key=True),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # published | rejected | error
    sa.Column("problems", sa.JSON, nullable=False, default=list),
    # What made the verdict: a rejection holds only for the same gitconf and compile limits.
    sa.Column("made_by", sa.String(128), nullable=False, default=""),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# The table before revision_log, keyed by sha alone: read once into revision_log.
LEGACY_REVISIONS = "revisions"


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
    # Every module that defines a table, so the metadata holds them all whoever imported what.
    from gitconf.store import audit, heartbeats, outbox, pins, rollouts  # noqa: F401

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7428190312)"))
        metadata.create_all(conn)


def upsert(engine: Engine, table: sa.Table, keys: list[str], update: list[str]) -> Any:
    """An INSERT that updates the columns in update when a row with the same keys exists."""
    if engine.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif engine.dialect.name == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise NotImplementedError(f"no upsert for {engine.dialect.name}")
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in update}
    )


class StoreSchema:
    """The store's tables, created or migrated once the store answers (it may be down at start:
    reads and publishing never need it, so a server starts anyway and tries again later)."""

    def __init__(self, engine: Engine, then: list[Callable[[], object]] | None = None) -> None:
        self.engine = engine
        self.ready = False
        self.error: str | None = None
        # Run once the tables exist (migrations of features' own tables, copies of old ones).
        self.then: list[Callable[[], object]] = then if then is not None else []

    def ensure(self) -> bool:
        """Create what is missing; False (and error set) while the store is unreachable."""
        if self.ready:
            return True
        try:
            create_schema(self.engine)
        except Exception as exc:
            self.error = f"creating the store's tables: {str(exc).splitlines()[0]}"
            log.error("%s; serving from memory and retrying", self.error)
            return False
        self.error = None
        self.ready = True
        for step in self.then:
            try:
                step()
            except Exception as exc:  # each step reports and retries its own failures
                log.warning("after creating the store's tables: %s", exc)
        return True


def insert_ignore(engine: Engine, table: sa.Table) -> Any:
    """An INSERT that skips rows whose unique key exists (ON CONFLICT DO NOTHING)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return table.insert().prefix_with("IGNORE")
