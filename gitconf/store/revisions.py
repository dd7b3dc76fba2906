"""The revision log: every head the server saw, published, rejected with its problems, or an
error (gitconf failed, not the commit: tried again)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitconf.clock import iso, utcnow
from gitconf.errors import Problem, problem_doc
from gitconf.store.db import LEGACY_REVISIONS, revisions, upsert

__all__ = ["RevisionLog", "Verdict"]

log = logging.getLogger(__name__)


class Verdict(NamedTuple):
    """What the log says of a commit."""

    state: str  # published, rejected or error
    made_by: str


class RevisionLog:
    """Published, rejected and failed revisions of one repository and branch in the store."""

    def __init__(self, engine: Engine, branch: str, source: str = "") -> None:
        self.engine = engine
        self.branch = branch
        self.source = source

    def record(
        self, sha: str, state: str, problems: list[Problem] | None = None, made_by: str = ""
    ) -> None:
        """Record the latest verdict on sha; the first time it was seen and published stay."""
        now = utcnow()
        with self.engine.begin() as conn:
            before = conn.execute(
                sa.select(revisions.c.seen_at, revisions.c.published_at).where(
                    revisions.c.source == self.source, revisions.c.sha == sha
                )
            ).first()
            published_at = before.published_at if before is not None else None
            if state == "published" and published_at is None:
                published_at = now
            row = {
                "source": self.source,
                "sha": sha,
                "branch": self.branch,
                "state": state,
                "problems": [problem_doc(p) for p in problems or []],
                "made_by": made_by,
                "seen_at": before.seen_at if before is not None else now,
                "published_at": published_at,
                "updated_at": now,
            }
            update = ["branch", "state", "problems", "made_by", "published_at", "updated_at"]
            conn.execute(upsert(self.engine, revisions, ["source", "sha"], update), [row])

    def verdict(self, sha: str) -> Verdict | None:
        """The last verdict on sha, or None if never seen."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(revisions.c.state, revisions.c.made_by).where(
                    revisions.c.source == self.source, revisions.c.sha == sha
                )
            ).first()
        return Verdict(row.state, row.made_by) if row is not None else None

    def state_of(self, sha: str) -> str | None:
        """published, rejected, error, or None if never seen."""
        verdict = self.verdict(sha)
        return verdict.state if verdict is not None else None

    def recent(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        """The newest revisions first."""
        query = (
            sa.select(revisions)
            .where(revisions.c.source == self.source)
            .order_by(revisions.c.seen_at.desc(), revisions.c.updated_at.desc())
            .limit(limit)
        )
        if state:
            query = query.where(revisions.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "revision": row["sha"],
                "branch": row["branch"],
                "state": row["state"],
                "seen_at": iso(row["seen_at"]),
                "published_at": iso(row["published_at"]),
                "problems": row["problems"],
            }
            for row in rows
        ]

    def adopt_legacy(self) -> int:
        """Copy the published rows of the table keyed by sha alone (gitconf before 0.2) into
        this source's log, once; rejections are left behind: they are made again."""
        if not sa.inspect(self.engine).has_table(LEGACY_REVISIONS):
            return 0
        legacy = sa.Table(LEGACY_REVISIONS, sa.MetaData(), autoload_with=self.engine)
        with self.engine.begin() as conn:
            mine = conn.execute(
                sa.select(sa.func.count()).where(revisions.c.source == self.source)
            ).scalar_one()
            if mine:
                return 0
            rows = conn.execute(
                sa.select(legacy).where(
                    legacy.c.branch == self.branch, legacy.c.state == "published"
                )
            ).mappings()
            copied = [
                {
                    "source": self.source,
                    "sha": row["sha"],
                    "branch": row["branch"],
                    "state": "published",
                    "problems": [],
                    "made_by": "",
                    "seen_at": row["seen_at"],
                    "published_at": row["published_at"],
                    "updated_at": row["seen_at"],
                }
                for row in rows
            ]
            if copied:
                conn.execute(revisions.insert(), copied)
        if copied:
            log.info("copied %d published revision(s) from the old revisions table", len(copied))
        return len(copied)
