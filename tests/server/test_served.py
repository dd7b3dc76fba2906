"""gitconf.served: incremental publish equals a fresh one; persisting off the poll thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2
import pytest

import gitconf.served as served_module
from gitconf.bootstrap import Server
from gitconf.core.compile import compile_fileset
from gitconf.git.read import fileset_from_commit
from gitconf.served import Publisher, ServedRevision, Snapshot, prepare, snapshot_of
from gitconf.testing import commit_all

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


def fresh(server: Server) -> ServedRevision:
    """The served revision of the mirror's head, compiled and prepared with no cache at all."""
    repo = pygit2.Repository(str(server.mirror.path))
    commit = repo[server.mirror.head()].peel(pygit2.Commit)
    result = compile_fileset(fileset_from_commit(repo, commit))
    assert result.revision is not None, result.problems
    return prepare(snapshot_of(str(commit.id), result.revision))


def whole_document(snapshot: Snapshot) -> bytes:
    """The persisted form as one json.dumps of the whole document (how it used to be made)."""
    doc = {
        "version": served_module.SNAPSHOT_VERSION,
        "revision": snapshot.revision,
        "published_at": snapshot.published_at,
        "environments": list(snapshot.environments),
        "services": list(snapshot.services),
        "configs": [
            {
                "environment": env,
                "service": svc,
                "value": value,
                "explain": snapshot.explain[(env, svc)],
                "layers": snapshot.layers[(env, svc)],
            }
            for (env, svc), value in snapshot.values.items()
        ],
        "subscriptions": list(snapshot.subscriptions),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def assert_same(served: ServedRevision, expected: ServedRevision) -> None:
    """Every body, ETag, explain and persisted byte of served equals expected's."""
    ours, theirs = served.snapshot, expected.snapshot
    assert served.revision == expected.revision
    assert (ours.environments, ours.services) == (theirs.environments, theirs.services)
    assert list(ours.values) == list(theirs.values)
    assert ours.values == theirs.values
    assert ours.explain == theirs.explain
    assert ours.layers == theirs.layers
    assert ours.subscriptions == theirs.subscriptions
    assert {k: (b.data, b.etag, b.content_type) for k, b in served.json.items()} == {
        k: (b.data, b.etag, b.content_type) for k, b in expected.json.items()
    }
    for env, svc in theirs.values:
        for fmt in ("yaml", "env"):
            assert served.body(env, svc, fmt) == expected.body(env, svc, fmt)
        assert served.explain_body(env, svc) == expected.explain_body(env, svc)
    for env in theirs.environments:
        assert served.environment_body(env) == expected.environment_body(env)
    assert ours.to_json() == whole_document(ours)
    undated = json.loads(ours.to_json()) | {"published_at": ""}
    assert undated == json.loads(theirs.to_json())


def test_incremental_publish_equals_a_fresh_publish_commit_after_commit(
    server: Server, repo: Path
) -> None:
    assert_same(server.publisher.served, fresh(server))
    for files in COMMITS:
        before = server.publisher.served
        commit_all(repo, "step", files)
        assert server.poller.run_once() == "published", (files, server.poll.revisions.recent(1))
        served = server.publisher.served
        assert served is not before
        assert_same(served, fresh(server))
        # Configs the commit left alone keep the very bodies and entries they had.
        for key, config in served.snapshot.configs.items():
            if before.snapshot.configs.get(key) is config:
                assert served.json[key] is before.json[key]
                assert served.snapshot.explain[key] is before.snapshot.explain[key]


def test_a_one_file_commit_encodes_only_its_configs(
    server: Server, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[Any] = []
    real = served_module.to_json
    monkeypatch.setattr(
        served_module, "to_json", lambda value: encoded.append(value) or real(value)
    )
    commit_all(repo, "one overlay", {"environments/production/payments.yaml": "db: {port: 1}\n"})

    assert server.poller.run_once() == "published"

    # payments in production and in production-eu, which extends it.
    assert len(encoded) == 2
    assert server.publisher.served.json[("production", "payments")].data == real(
        {"region": "us-east-1", "db": {"host": "db.internal", "port": 1, "pool": {"max": 10}}}
    )


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
    assert again.publisher.served.snapshot == latest.snapshot
    first.publisher.stop()


def test_stopping_the_server_writes_the_pending_revision(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo)
    server.publisher.start()
    gate = threading.Event()
    real = served_module.write_atomic

    def held(path: Path, data: Any) -> None:
        assert gate.wait(30), "the test never opened the gate"
        real(path, data)

    monkeypatch.setattr(served_module, "write_atomic", held)
    assert server.poller.run_once() == "published"  # served at once, though not yet written
    state = server.publisher.state_dir
    assert state is not None and not (state / "served.json").exists()
    sha = commit_all(repo, "step", COMMITS[0])
    assert server.poller.run_once() == "published"

    gate.set()
    server.stop()

    assert Snapshot.from_json((state / "served.json").read_bytes()).revision == sha


def test_the_writer_writes_the_latest_snapshot_and_skips_the_ones_it_had_no_time_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    started = threading.Event()
    written: list[str] = []

    def held(path: Path, data: Any) -> None:
        started.set()
        assert gate.wait(30), "the test never opened the gate"
        written.append(json.loads(b"".join(data))["revision"])

    monkeypatch.setattr(served_module, "write_atomic", held)
    publisher = Publisher(tmp_path)
    publisher.start()
    for revision in ("a", "b", "c"):
        snapshot = Snapshot(
            revision,
            ("dev",),
            ("app",),
            {("dev", "app"): {"n": revision}},
            {("dev", "app"): []},
            {("dev", "app"): []},
        )
        publisher.publish(snapshot)
        assert publisher.served.revision == revision  # swapped before anything is written
        assert started.wait(30)
    assert not publisher.flush(timeout=0.01)

    gate.set()
    assert publisher.flush(timeout=30)
    publisher.stop()

    assert written == ["a", "c"]


def test_without_a_writer_publish_persists_before_it_returns(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path)
    snapshot = Snapshot(
        "a", ("dev",), ("app",), {("dev", "app"): 1}, {("dev", "app"): []}, {("dev", "app"): []}
    )

    publisher.publish(snapshot)

    assert (tmp_path / "served.json").read_bytes() == whole_document(snapshot)
    assert Publisher(tmp_path).load_persisted().snapshot == snapshot
