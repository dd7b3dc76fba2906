"""The store on a real PostgreSQL: concurrent schema creation, heartbeats, poll broadcast."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from gitconf.bootstrap import Server
from gitconf.store.db import create_schema, make_engine
from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.server import wait_until
from tests.conftest import BASE_FILES


def test_replicas_starting_at_once_create_the_schema_once(pg_url: str) -> None:
    engines = [make_engine(pg_url) for _ in range(4)]
    errors: list[BaseException] = []

    def create(engine: sa.Engine) -> None:
        try:
            create_schema(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with engines[0].connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"revision_log", "replicas"} <= tables
    for engine in engines:
        engine.dispose()


def test_revision_log_heartbeats_and_broadcast(
    pg_url: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    one = make_server(repo, database_url=pg_url, state_dir=str(tmp_path / "one"))
    two = make_server(repo, database_url=pg_url, state_dir=str(tmp_path / "two"))
    assert one.poller.run_once() == "published"
    assert two.poller.run_once() == "unchanged" or two.publisher.served is not None
    [record] = one.poll.revisions.recent()
    assert record["state"] == "published"

    requested = threading.Event()
    two.poller.request = lambda broadcast=True: requested.set()  # type: ignore[method-assign]
    replica_one, replica_two = one.replica, two.replica
    replica_one.start()
    replica_two.start()
    try:
        status = wait_until(
            lambda: len((s := replica_one.status())["replicas"]) == 2 and s, what="two heartbeats"
        )
        assert {r["id"] for r in status["replicas"]} == {replica_one.id, replica_two.id}
        assert all(r["revision"] == one.publisher.served.revision for r in status["replicas"])
        # A poll request on one replica reaches the other through NOTIFY.
        wait_until(lambda: one.poller.request() or requested.wait(0.5), 10, what="the NOTIFY")
    finally:
        replica_one.stop()
        replica_two.stop()
    assert replica_one.status()["replicas"] == []


def test_change_set_writers_take_turns_across_replicas(pg_url: str) -> None:
    from gitconf.store.deliveries import Outbox

    engines = [make_engine(pg_url) for _ in range(2)]
    create_schema(engines[0])
    first, second = (Outbox(engine) for engine in engines)
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with first.exclusive("repo-key"):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)

    def enter() -> None:
        with second.exclusive("repo-key"):
            order.append("second in")

    waiter = threading.Thread(target=enter)
    waiter.start()
    waiter.join(0.3)
    assert order == ["first in"]  # the second writer waits for the first
    release.set()
    holder.join(10)
    waiter.join(10)
    assert order == ["first in", "first out", "second in"]
    for engine in engines:
        engine.dispose()


def test_a_replica_that_is_behind_never_writes_a_change_back(
    tmp_path: Path, pg_url: str, make_server: Callable[..., Server]
) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    ahead = make_server(repo, state_dir=str(tmp_path / "ahead"), database_url=pg_url)
    behind = make_server(repo, state_dir=str(tmp_path / "behind"), database_url=pg_url)
    for server in (ahead, behind):
        assert server.poller.run_once() == "published"
    client = ahead.app.test_client()
    doc = {"url": "http://127.0.0.1:9/x", "environments": ["staging"], "services": ["search"]}
    assert client.post("/v1/subscriptions", json=doc).status_code == 201
    first = ahead.publisher.served.revision
    newer = commit_all(repo, "more shards", {"base/search.yaml": "shards: [s9]\n"})
    assert ahead.poller.run_once() == "published"  # the hook reached this replica
    behind.mirror.fetch()  # the other has fetched the commit, and not published it yet
    assert behind.publisher.served.revision == first

    def outbox() -> tuple[str, list[tuple[str, str]]]:
        with ahead.engine.connect() as conn:
            cursor = conn.execute(sa.text("SELECT revision FROM outbox_cursor")).scalar_one()
            rows = conn.execute(sa.text("SELECT revision, state FROM deliveries ORDER BY id"))
            return cursor, [(r, s) for r, s in rows]

    assert outbox() == (newer, [(newer, "pending")])
    for _ in range(2):  # both replicas' safety ticks
        behind.notifier.catch_up()
        ahead.notifier.catch_up()
    # No change back to the first revision, and the one event is still the one to deliver.
    assert outbox() == (newer, [(newer, "pending")])
    assert behind.poller.run_once() == "published"
    assert outbox() == (newer, [(newer, "pending")])


def test_a_replica_that_has_not_fetched_the_newer_commit_leaves_the_outbox_and_a_rollback_is_written_once(
    tmp_path: Path, pg_url: str, make_server: Callable[..., Server]
) -> None:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    ahead = make_server(repo, state_dir=str(tmp_path / "ahead"), database_url=pg_url)
    behind = make_server(repo, state_dir=str(tmp_path / "behind"), database_url=pg_url)
    for server in (ahead, behind):
        assert server.poller.run_once() == "published"
    client = ahead.app.test_client()
    doc = {"url": "http://127.0.0.1:9/x", "environments": ["staging"], "services": ["search"]}
    assert client.post("/v1/subscriptions", json=doc).status_code == 201
    first = ahead.publisher.served.revision
    newer = commit_all(repo, "more shards", {"base/search.yaml": "shards: [s9]\n"})
    assert ahead.poller.run_once() == "published"

    def outbox() -> tuple[str, list[tuple[str, str | None, str]]]:
        with ahead.engine.connect() as conn:
            cursor = conn.execute(sa.text("SELECT revision FROM outbox_cursor")).scalar_one()
            rows = conn.execute(
                sa.text("SELECT revision, previous_revision, state FROM deliveries ORDER BY id")
            )
            return cursor, [(r, p, s) for r, p, s in rows]

    assert outbox() == (newer, [(newer, first, "pending")])
    behind.notifier.catch_up()  # its clone does not know `newer`: it cannot tell, so it waits
    assert outbox() == (newer, [(newer, first, "pending")])
    git(repo, "reset", "-q", "--hard", first)  # a force-push back
    assert ahead.poller.run_once() == "published"
    expected = (first, [(newer, first, "superseded"), (first, newer, "pending")])
    assert outbox() == expected
    assert behind.poller.run_once() == "unchanged"  # it serves `first` already
    behind.notifier.catch_up()
    ahead.notifier.catch_up()
    assert outbox() == expected  # one rollback, written by the replica that made it
