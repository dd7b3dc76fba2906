"""The audit table: one row per write (change, pin, rollout action, subscription, hook, refused
token), appended and never edited; rows older than the retention are removed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import iso
from gitconf.store.db import metadata

__all__ = ["AuditPage", "AuditRow", "AuditTable", "audit_log"]

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),  # a token's name, never the token
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("result", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("replica", sa.String(128), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_actor", "actor", "id"),
    sa.Index("ix_audit_action", "action", "id"),
)


class AuditRow(NamedTuple):
    """One audited action, as recorded."""

    at: dt.datetime
    actor: str
    action: str
    target: str
    result: str
    request_id: str | None = None
    replica: str | None = None
    detail: dict[str, Any] | None = None

    def doc(self) -> dict[str, Any]:
        """The row as JSON (the log line and the API)."""
        found: dict[str, Any] = {
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "request_id": self.request_id,
        }
        if self.replica:
            found["replica"] = self.replica
        if self.detail:
            found["detail"] = self.detail
        return found


class AuditPage(NamedTuple):
    """Rows oldest first, and the cursor of the next page (None: no more)."""

    rows: list[dict[str, Any]]
    next_cursor: int | None


class AuditTable:
    """Appends and reads audit rows; nothing here edits one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, rows: Sequence[AuditRow]) -> None:
        """Append rows in one transaction."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(audit_log.insert(), [r._asdict() for r in rows])

    def page(
        self,
        *,
        since: dt.datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> AuditPage:
        """Rows after the cursor `after` (an id), oldest first, filtered; at most limit."""
        query = _filtered(sa.select(audit_log).where(audit_log.c.id > after), actor, action)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        found = self._rows(query.order_by(audit_log.c.id).limit(limit + 1))
        more = len(found) > limit
        found = found[:limit]
        return AuditPage(found, found[-1]["id"] if more and found else None)

    def latest(
        self, *, actor: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest rows first (the dashboard's page), filtered as page() filters."""
        query = _filtered(sa.select(audit_log), actor, action)
        return self._rows(query.order_by(audit_log.c.id.desc()).limit(limit))

    def _rows(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        """The rows a query selects, as GET /v1/audit shows them (with their ids)."""
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().all()
        return [
            {"id": r["id"], **AuditRow(r["at"], r["actor"], r["action"], r["target"], r["result"],
                                        r["request_id"], r["replica"], r["detail"]).doc()}
            for r in found
        ]  # fmt: skip

    def prune(self, before: dt.datetime) -> int:
        """Remove the rows older than before (retention); how many."""
        with self.engine.begin() as conn:
            removed: int = conn.execute(audit_log.delete().where(audit_log.c.at < before)).rowcount
        return removed


def _filtered(query: sa.Select[Any], actor: str | None, action: str | None) -> sa.Select[Any]:
    """query of the rows of actor (exactly) and of action: `pin` matches pin.set and
    pin.clear too (actions are dotted; % and _ in it are literal)."""
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(
            sa.or_(
                audit_log.c.action == action,
                audit_log.c.action.startswith(action + ".", autoescape=True),
            )
        )
    return query
