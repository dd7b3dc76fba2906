"""The revision log: every head the server saw, published or rejected with its problems."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.errors import Problem
from gitconf.store.db import insert_ignore, revisions

__all__ = ["RevisionLog"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def problem_doc(problem: Problem) -> dict[str, Any]:
    """A problem as JSON: its fields and its rendered line."""
    source = problem.source
    return {
        "path": source.path if source else None,
        "line": source.line if source else None,
        "column": source.col if source else None,
        "key": problem.key_path or None,
        "message": problem.message,
        "hint": problem.hint or None,
        "text": problem.render(),
    }


class RevisionLog:
    """Published and rejected revisions in the store."""

    def __init__(self, engine: Engine, branch: str) -> None:
        self.engine = engine
        self.branch = branch

    def record(self, sha: str, state: str, problems: list[Problem] | None = None) -> None:
        """Record that sha was published or rejected (once; later calls keep the first)."""
        now = _now()
        row = {
            "sha": sha,
            "branch": self.branch,
            "state": state,
            "problems": [problem_doc(p) for p in problems or []],
            "seen_at": now,
            "published_at": now if state == "published" else None,
        }
        with self.engine.begin() as conn:
            conn.execute(insert_ignore(self.engine, revisions), [row])

    def state_of(self, sha: str) -> str | None:
        """published, rejected, or None if never seen."""
        with self.engine.connect() as conn:
            result: str | None = conn.execute(
                sa.select(revisions.c.state).where(revisions.c.sha == sha)
            ).scalar()
            return result

    def recent(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        """The newest revisions first."""
        query = sa.select(revisions).order_by(revisions.c.seen_at.desc()).limit(limit)
        if state:
            query = query.where(revisions.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "revision": row["sha"],
                "branch": row["branch"],
                "state": row["state"],
                "seen_at": _iso(row["seen_at"]),
                "published_at": _iso(row["published_at"]),
                "problems": row["problems"],
            }
            for row in rows
        ]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")
