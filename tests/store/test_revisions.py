"""The revision log: one store shared by servers of different repositories, verdicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from gitconf.bootstrap import Server
from gitconf.store.db import make_engine
from gitconf.store.revisions import RevisionLog
from gitconf.testing import commit_all, make_repo
from tests.conftest import BASE_FILES


def test_servers_of_two_repositories_on_one_store_see_their_own_revisions(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    one = make_repo(tmp_path / "one", dict(BASE_FILES))
    two = make_repo(tmp_path / "two", dict(BASE_FILES))
    first = make_server(one, database_url=url, state_dir=str(tmp_path / "s1"))
    second = make_server(two, database_url=url, state_dir=str(tmp_path / "s2"))
    assert first.poller.run_once() == "published"
    assert second.poller.run_once() == "published"
    commit_all(two, "break", {"base/payments.yaml": "db: [1\n"})
    assert second.poller.run_once() == "rejected"

    assert [r["state"] for r in first.revisions.recent()] == ["published"]
    assert [r["state"] for r in second.revisions.recent()] == ["rejected", "published"]


def test_a_rejection_by_another_gitconf_is_made_again(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo)
    assert server.poller.run_once() == "published"
    bad = commit_all(repo, "break", {"base/payments.yaml": "db: [1\n"})
    assert server.poller.run_once() == "rejected"
    with server.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE revision_log SET made_by = 'gitconf 0.0.1' WHERE sha = :s"), {"s": bad}
        )
    again = make_server(repo)
    assert again.poller.run_once() == "rejected"
    assert again.compiler.sent["Compile"] == 1
    assert again.revisions.verdict(bad).made_by == again.poll.made_by


def test_published_rows_of_the_old_table_are_copied_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE revisions (sha VARCHAR(64) PRIMARY KEY, branch VARCHAR(255), "
                "state VARCHAR(16), problems JSON, seen_at DATETIME, published_at DATETIME)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO revisions VALUES ('a', 'main', 'published', '[]', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00'), ('b', 'main', 'rejected', '[]', "
                "'2026-01-02 00:00:00', NULL)"
            )
        )
    from gitconf.store.db import create_schema

    create_schema(engine)
    log = RevisionLog(engine, "main", source="k")
    assert log.adopt_legacy() == 1
    assert log.adopt_legacy() == 0
    assert [(r["revision"], r["state"]) for r in log.recent()] == [("a", "published")]
    assert RevisionLog(engine, "main", source="other").recent() == []
