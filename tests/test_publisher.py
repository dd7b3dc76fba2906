"""gitconf.served: incremental publish equals a fresh one; persisting off the poll thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

import gitconf.publisher as publisher_module
import gitconf.store.snapshots as snapshots_module
from gitconf.bootstrap import Server
from gitconf.core.diff import diff_values
from gitconf.publisher import Publisher
from gitconf.served import Body, ServedRevision, from_built
from gitconf.store.snapshots import SnapshotStore
from gitconf.testing import commit_all
from gitconf.testing.server import wait_until
from gitconf.worker.messages import Built
from gitconf.worker.service import CompileService

# One step each: an overlay, base, a whole environment, a new and a removed service, a schema
# (every config validated again), the manifest, and a commit that changes nothing served.
COMMITS: list[dict[str, str | bytes | None]] = [
    {"environments/production/payments.yaml": "db:\n  pool: {max: 60}\n"},
    {"base/_all.yaml": "region: us-east-2\n"},
    {"environments/staging/_all.yaml": "debug: true\n"},
    {
        "schemas/billing.schema.json": '{"type": "object"}\n',
        "base/billing.yaml": "currency: EUR\nlimits: [1, 2]\n",
    },
    {"schemas/search.schema.json": None, "base/search.yaml": None},
    {"schemas/payments.schema.json": '{"type": "object", "required": ["db"]}\n'},
    {
        "gitconf.yaml": "version: 1\nenvironments:\n  staging: {}\n  production: {}\n",
        "environments/production-eu/_all.yaml": None,
    },
    {"README.md": "outside the config paths\n"},
]


def fresh(server: Server) -> tuple[ServedRevision, CompileService]:
    """The served revision of the mirror's head, compiled cold by a worker of its own."""
    service = CompileService(server.mirror.path)
    head = server.mirror.head()
    assert head is not None
    built = service.revision(head)
    assert isinstance(built, Built), built
    served = from_built(built, None, explainer=lambda sha, env, svc: service.explain(sha, env, svc))
    assert served is not None
    return served, service


def assert_same(served: ServedRevision, expected: ServedRevision) -> None:
    """Every body and ETag served equals expected's, in every format and document."""
    assert served.revision == expected.revision
    assert (served.environments, served.services) == (expected.environments, expected.services)
    assert served.subscriptions == expected.subscriptions
    assert list(served.json) == list(expected.json)
    assert {k: (b.data, b.etag, b.content_type) for k, b in served.json.items()} == {
        k: (b.data, b.etag, b.content_type) for k, b in expected.json.items()
    }
    for env, svc in expected.json:
        for fmt in ("yaml", "env"):
            assert served.body(env, svc, fmt) == expected.body(env, svc, fmt)
        assert served.explain_body(env, svc) == expected.explain_body(env, svc)
    for env in expected.environments:
        assert served.environment_body(env) == expected.environment_body(env)


def test_incremental_publish_equals_a_fresh_publish_commit_after_commit(
    server: Server, repo: Path
) -> None:
    assert_same(server.publisher.served, fresh(server)[0])
    for files in COMMITS:
        before = server.publisher.served
        commit_all(repo, "step", files)
        assert server.poller.run_once() == "published", (files, server.poll.revisions.recent(1))
        served = server.publisher.served
        assert served is not before
        expected, _ = fresh(server)
        assert_same(served, expected)
        # The changed keys the worker sent are those a cold diff finds, config by config.
        assert served.base == before.revision
        differ = {
            k for k in before.json.keys() | served.json.keys()
            if (before.json.get(k) or Body(b"", "", "")).etag
            != (served.json.get(k) or Body(b"", "", "")).etag
        }  # fmt: skip
        assert set(served.changed) == differ
        for key in differ:
            old = before.value(*key) if before.has(*key) else None
            new = served.value(*key) if served.has(*key) else None
            assert served.changed[key] == tuple(c.key for c in diff_values(old, new)), key
        # Configs with the same bytes share one body, across revisions too.
        for key, body in served.json.items():
            if key in before.json and before.json[key].etag == body.etag:
                assert body is before.json[key]


def test_a_one_file_commit_sends_and_persists_only_its_configs(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo)
    assert server.poller.run_once() == "published"
    written: list[int] = []
    real = SnapshotStore.write
    monkeypatch.setattr(
        SnapshotStore, "write", lambda self, **kw: written.append(real(self, **kw)) or written[-1]
    )
    commit_all(repo, "one overlay", {"environments/production/payments.yaml": "db: {port: 1}\n"})

    assert server.poller.run_once() == "published"

    served = server.publisher.served
    # payments in production and in production-eu, which extends it: two new bodies.
    assert set(served.changed) == {("production", "payments"), ("production-eu", "payments")}
    assert written == [2]
    assert served.value("production", "payments") == {
        "region": "us-east-1",
        "db": {"host": "db.internal", "port": 1, "pool": {"max": 10}},
    }


def test_the_worker_encodes_only_the_configs_a_commit_changed(repo: Path, tmp_path: Path) -> None:
    import gitconf.worker.service as service_module

    service = CompileService(repo / ".git")
    first = str(pygit2.Repository(str(repo)).head.target)
    assert isinstance(service.compile(first, None), Built)
    encoded: list[object] = []
    real = service_module.to_json
    service_module.to_json = lambda value: encoded.append(value) or real(value)  # type: ignore[assignment]
    try:
        second = commit_all(
            repo, "one", {"environments/production/payments.yaml": "db: {port: 1}\n"}
        )
        built = service.compile(second, first)
    finally:
        service_module.to_json = real  # type: ignore[assignment]
    assert isinstance(built, Built)
    assert len(encoded) == 2
    assert len(built.bodies) == 2
    assert built.base == first


def test_a_restart_serves_the_latest_revision_once_the_writer_flushed(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    first = make_server(repo)
    first.publisher.start()
    assert first.poller.run_once() == "published"
    for files in COMMITS[:3]:
        commit_all(repo, "step", files)
        assert first.poller.run_once() == "published"
    latest = first.publisher.served
    assert first.publisher.flush(timeout=30)

    again = make_server(repo)

    assert again.publisher.served is not None
    assert again.publisher.served.revision == latest.revision
    assert again.publisher.served.etags() == latest.etags()
    assert {k: b.data for k, b in again.publisher.served.json.items()} == {
        k: b.data for k, b in latest.json.items()
    }
    # The explain of a revision loaded from disk comes from the worker, as for any other.
    body = again.publisher.served.explain_body("production", "payments")
    assert body == latest.explain_body("production", "payments")
    first.publisher.stop()


def test_stopping_the_server_writes_the_pending_revision(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo)
    server.publisher.start()
    gate = threading.Event()
    real = SnapshotStore.write

    def held(self: SnapshotStore, **kwargs: object) -> int:
        assert gate.wait(30), "the test never opened the gate"
        return real(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SnapshotStore, "write", held)
    assert server.poller.run_once() == "published"  # served at once, though not yet written
    sha = commit_all(repo, "step", COMMITS[0])
    assert server.poller.run_once() == "published"

    gate.set()
    server.stop()

    state = server.publisher.state_dir
    assert state is not None
    persisted = SnapshotStore(state / "served.db").load()
    assert persisted is not None and persisted.revision == sha


def _revision(name: str, value: bytes) -> ServedRevision:
    body = Body(value, f'"{name}"', "application/json")
    return ServedRevision(name, ("dev",), ("app",), {("dev", "app"): body})


def test_the_writer_writes_the_latest_revision_and_skips_the_ones_it_had_no_time_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    started = threading.Event()
    written: list[str] = []

    def held(self: SnapshotStore, **kwargs: object) -> int:
        started.set()
        assert gate.wait(30), "the test never opened the gate"
        written.append(str(kwargs["revision"]))
        return 0

    monkeypatch.setattr(SnapshotStore, "write", held)
    publisher = Publisher(tmp_path)
    publisher.start()
    for revision in ("a", "b", "c"):
        publisher.publish(_revision(revision, b"{}"))
        assert publisher.served.revision == revision  # swapped before anything is written
        assert started.wait(30)
    assert not publisher.flush(timeout=0.01)

    gate.set()
    assert publisher.flush(timeout=30)
    publisher.stop()

    assert written == ["a", "c"]


def test_without_a_writer_publish_persists_before_it_returns(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path)
    data = b'{"n": 1}\n'
    from gitconf.core.render import etag_of

    served = ServedRevision(
        "a", ("dev",), ("app",), {("dev", "app"): Body(data, etag_of(data), "application/json")}
    )

    publisher.publish(served)

    again = Publisher(tmp_path).load_persisted()
    assert again is not None
    assert again.revision == "a"
    assert again.json[("dev", "app")].data == data


def test_a_full_disk_is_reported_and_retried_until_the_revision_is_on_disk(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo)
    server.publisher.start()
    assert server.poller.run_once() == "published"
    assert server.publisher.flush(timeout=30)
    good = server.publisher.served.revision
    monkeypatch.setattr(publisher_module._Writer, "RETRY_FIRST", 0.05)
    store = server.publisher.store
    assert store is not None
    conn = store._connect()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # SQLite answers SQLITE_FULL ("database or disk is full") past max_page_count, as on a
    # full disk.
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = "x" * 200_000
    sha = commit_all(repo, "big", {"base/_all.yaml": f"region: us-east-1\nnote: {big}\n"})
    assert server.poller.run_once() == "published"  # served from memory regardless
    wait_until(lambda: server.publisher.persist.error, what="the persist failure")
    assert "full" in server.publisher.persist.error
    client = server.app.test_client()
    status = client.get("/v1/status").get_json()
    assert status["persistence"] == {
        "revision": good,
        "behind": True,
        "error": server.publisher.persist.error,
    }
    assert [p["code"] for p in status["problems"]] == ["persist_failed"]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["persistence"] == "behind"
    assert b"gitconf_persist_behind 1.0" in client.get("/metrics").data

    conn.execute("PRAGMA max_page_count = 1073741823")  # space is back

    wait_until(lambda: server.publisher.persist.persisted == sha, timeout=30, what="the retry")
    assert server.publisher.persist.error is None
    assert client.get("/v1/status").get_json()["problems"] == []
    assert "persistence" not in client.get("/readyz").get_json()
    server.publisher.stop()
    persisted = SnapshotStore(server.publisher.store.path).load()
    assert persisted is not None and persisted.revision == sha


def test_an_altered_snapshot_is_not_served_and_the_clone_is_compiled_instead(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    first = make_server(repo)
    assert first.poller.run_once() == "published"
    good = first.publisher.served
    first.stop()
    path = first.publisher.state_dir / "served.db"
    with sqlite3.connect(path) as conn:
        conn.execute('UPDATE bodies SET data = CAST(\'{"db": {"port": 1}}\' AS BLOB)')

    second = make_server(repo)

    assert second.publisher.served is None
    assert "does not match its digest" in second.publisher.persist.load_error
    status = second.app.test_client().get("/v1/status").get_json()
    assert [p["code"] for p in status["problems"]] == ["snapshot_unusable"]
    repo.rename(repo.with_name("gone"))  # the remote is down too
    assert second.poller.run_once() == "error"  # the fetch failed...
    assert second.publisher.served is not None  # ...but the clone's head is served
    assert second.publisher.served.etags() == good.etags()


def test_leftovers_of_the_old_snapshot_format_are_removed_at_start(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    first = make_server(repo)
    assert first.poller.run_once() == "published"
    first.stop()
    state = first.publisher.state_dir
    (state / ".served.json.abc123").write_bytes(b"x" * 1000)
    (state / "served.json").write_bytes(b"{}")

    second = make_server(repo)

    assert second.publisher.served is not None
    assert not (state / ".served.json.abc123").exists()
    assert not (state / "served.json").exists()


def test_old_indexes_and_their_bodies_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots_module, "KEEP_REVISIONS", 2)
    store = SnapshotStore(tmp_path / "served.db")
    for n in range(4):
        data = f"{n}".encode()
        etag = f'"{n}"'
        store.write(
            revision=f"r{n}",
            published_at="",
            environments=["dev"],
            services=["app"],
            subscriptions=[],
            etags={("dev", "app"): etag},
            body_of={etag: data},
        )
    with sqlite3.connect(tmp_path / "served.db") as conn:
        assert {r[0] for r in conn.execute("SELECT sha FROM revisions")} == {"r2", "r3"}
        assert {r[0] for r in conn.execute("SELECT digest FROM bodies")} == {"2", "3"}
