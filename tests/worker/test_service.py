"""CompileService (the worker's requests, in-process): incremental equals cold, forks leave the
head's cache alone, explain, diffs and changed keys."""

from __future__ import annotations

from pathlib import Path

import pygit2

from gitconf.core.compile import compile_fileset
from gitconf.core.diff import diff_revisions
from gitconf.core.explain import explain_config
from gitconf.git.read import fileset_from_commit
from gitconf.testing import commit_all
from gitconf.worker.messages import Built, Refused
from gitconf.worker.service import CompileService
from tests.test_publisher import COMMITS


def cold(repo: Path, sha: str) -> Built:
    built = CompileService(repo / ".git").revision(sha)
    assert isinstance(built, Built)
    return built


def head(repo: Path) -> str:
    return str(pygit2.Repository(str(repo)).head.target)


def test_each_compile_equals_a_cold_one_and_a_ref_between_them_changes_nothing(
    repo: Path,
) -> None:
    service = CompileService(repo / ".git")
    shas = [head(repo)]
    built = service.compile(shas[0], None)
    assert isinstance(built, Built)
    for files in COMMITS:
        shas.append(commit_all(repo, "step", files))
        # An older revision asked for in between (a ?ref= read) must not disturb the next
        # incremental compile.
        assert isinstance(service.revision(shas[0]), Built)
        built = service.compile(shas[-1], shas[-2])
        assert isinstance(built, Built)
        expected = cold(repo, shas[-1])
        assert built.etags == expected.etags
        for etag, data in built.bodies.items():
            assert expected.bodies[etag] == data
        assert (built.environments, built.services) == (expected.environments, expected.services)


def test_explain_and_diff_agree_with_the_core(repo: Path) -> None:
    service = CompileService(repo / ".git")
    first = head(repo)
    second = commit_all(repo, "step", COMMITS[0])
    assert isinstance(service.compile(first, None), Built)
    assert isinstance(service.compile(second, first), Built)
    git = pygit2.Repository(str(repo))
    old = compile_fileset(fileset_from_commit(git, git[first].peel(pygit2.Commit))).revision
    new = compile_fileset(fileset_from_commit(git, git[second].peel(pygit2.Commit))).revision
    assert old is not None and new is not None

    assert service.diff(first, second) == diff_revisions(old, new)
    import json

    doc = json.loads(service.explain(second, "production", "payments") or b"")
    assert doc["leaves"] == explain_config(new.configs[("production", "payments")])
    assert doc["layers"] == list(new.configs[("production", "payments")].layers)
    assert service.explain(second, "production", "nope") is None
    etags, _ids, changed = service.changes(first, second)  # type: ignore[misc]
    assert changed == {
        ("production", "payments"): ("db.pool.max",),
        ("production-eu", "payments"): ("db.pool.max",),
    }
    assert etags == cold(repo, first).etags


def test_a_restarted_worker_compiles_the_served_revision_first_and_sends_only_changes(
    repo: Path,
) -> None:
    first = head(repo)
    second = commit_all(repo, "step", COMMITS[0])
    service = CompileService(repo / ".git")  # a fresh worker: it holds nothing

    built = service.compile(second, first)

    assert isinstance(built, Built)
    assert built.base == first
    assert set(built.changed) == {("production", "payments"), ("production-eu", "payments")}
    assert len(built.bodies) == 2


def test_an_invalid_ref_is_refused_and_remembered(repo: Path) -> None:
    first = head(repo)
    bad = commit_all(repo, "break", {"base/payments.yaml": "db: [1\n"})
    service = CompileService(repo / ".git")
    assert isinstance(service.compile(first, None), Built)
    refused = service.revision(bad)
    assert isinstance(refused, Refused)
    assert refused.problems[0].source.path == "base/payments.yaml"
    assert service.revision(bad) is refused


def test_the_base_layers_of_a_service_merged_alone(repo: Path) -> None:
    import json

    service = CompileService(repo / ".git")
    first = head(repo)
    found = service.base(first, "payments")
    assert found is not None
    assert found.layers == ("base/_all.yaml", "base/payments.yaml")
    # Not production's pool.max of 50: no environment's layer is merged in.
    assert json.loads(found.body) == {
        "region": "us-east-1",
        "db": {"host": "db.internal", "port": 5432, "pool": {"max": 10}},
    }
    assert found.secret_body is None and found.redacted == 0
    assert found.origins["db.pool.max"] == "base/payments.yaml:4:15"
    assert found.origins["region"] == "base/_all.yaml:1:9"
    assert service.base(first, "nope") is None
    # A later commit, and a service that only has base/_all (none here has no file at all).
    second = commit_all(repo, "step", {"base/_all.yaml": "region: eu\n"})
    later = service.base(second, "search")
    assert later is not None
    assert json.loads(later.body) == {"region": "eu", "shards": ["s1", "s2"]}
    # An invalid commit has no base layers to serve.
    bad = commit_all(repo, "bad", {"base/payments.yaml": "db: [\n"})
    assert service.base(bad, "payments") is None
