"""Labels naming other branches (spring.labels): a real bare remote with branches, a real server.

The remote is a bare repository that a working copy pushes to, as a Git host is; the server is
a real `gitconf serve` (its compile worker compiles a label's commit on demand) or, for the
single-flight check, a Server in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.spring.conftest import FILES, build_server

RELEASE = "release/2024.1"
RELEASE_PATH = "release(_)2024.1"  # `(_)` for `/`, as Spring clients write it


class Remote(NamedTuple):
    work: Path  # the working copy that pushes
    bare: Path  # the remote the server fetches

    def push(self, branch: str) -> str:
        git(self.work, "push", "-q", "--force", str(self.bare), f"{branch}:{branch}")
        return git(self.bare, "rev-parse", branch)

    def commit_on(self, branch: str, files: dict[str, str | bytes | None]) -> str:
        git(self.work, "checkout", "-q", branch)
        commit_all(self.work, f"change {branch}", files)
        git(self.work, "checkout", "-q", "main")
        return self.push(branch)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    work = make_repo(tmp_path / "work", dict(FILES))
    git(work, "checkout", "-q", "-b", RELEASE)
    commit_all(
        work, "release pool", {"environments/production/payments.yaml": "db: {pool: {max: 70}}\n"}
    )
    git(work, "checkout", "-q", "-b", "dev", "main")
    commit_all(
        work, "dev pool", {"environments/production/payments.yaml": "db: {pool: {max: 5}}\n"}
    )
    git(work, "checkout", "-q", "main")
    git(work, "branch", "release/same", "main")  # at the tracked branch's commit
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return Remote(work, bare)


@pytest.fixture
def served(remote: Remote, tmp_path: Path) -> Iterator[ServeProcess]:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"spring": {"labels": ["release/*"]}}))
    with ServeProcess(remote.bare, tmp_path / "state", config=config) as server:
        yield server


def pool_max(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["propertySources"][0]["source"]["db.pool.max"]


def test_a_label_names_a_branch_that_matches_the_globs(
    served: ServeProcess, remote: Remote
) -> None:
    release = git(remote.bare, "rev-parse", RELEASE)
    response = served.get(f"/payments/production/{RELEASE_PATH}")
    assert pool_max(response) == 70
    doc = response.json()
    assert doc["label"] == RELEASE
    assert doc["version"] == release
    assert doc["propertySources"][0]["name"] == f"gitconf:production/payments@{release}"
    assert response.headers["X-Gitconf-Revision"] == release
    # The documents, the v1 API's ?ref= and the tracked branch, each as it should be.
    document = served.get(f"/{RELEASE_PATH}/payments-production.json")
    assert document.json()["db"]["pool"]["max"] == 70
    v1 = served.get("/v1/config/production/payments", params={"ref": RELEASE})
    assert v1.json()["db"]["pool"]["max"] == 70
    assert pool_max(served.get("/payments/production")) == 50
    assert pool_max(served.get("/payments/production/main")) == 50


def test_a_branch_outside_the_globs_is_refused_saying_why(served: ServeProcess) -> None:
    response = served.get("/payments/production/dev")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_label"
    assert "not a branch this server serves" in error["message"]
    assert "spring.labels ['release/*']" in error["message"]
    missing = served.get("/payments/production/release(_)1999")
    assert missing.status_code == 404
    assert (
        "matches spring.labels ['release/*'], but no branch of that name"
        in (missing.json()["error"]["message"])
    )


def test_a_label_branch_follows_its_pushes(served: ServeProcess, remote: Remote) -> None:
    path = f"/payments/production/{RELEASE_PATH}"
    assert pool_max(served.get(path)) == 70
    moved = remote.commit_on(
        RELEASE, {"environments/production/payments.yaml": "db: {pool: {max: 80}}\n"}
    )
    wait_until(lambda: pool_max(served.get(path)) == 80, what="the label's new commit")
    assert served.get(path).json()["version"] == moved
    assert pool_max(served.get("/payments/production")) == 50  # the tracked branch is as it was


def test_a_label_branch_at_the_served_commit_is_not_remembered_past_its_push(
    served: ServeProcess, remote: Remote
) -> None:
    """Answers at the served revision are remembered until the next publish: not those at a
    label branch, which can move while the tracked branch does not."""
    path = "/payments/production/release(_)same"
    first = served.get(path)
    assert first.json()["version"] == git(remote.bare, "rev-parse", "main")
    assert pool_max(served.get(path)) == 50  # asked twice: it would be remembered now
    moved = remote.commit_on(
        "release/same", {"environments/production/payments.yaml": "db: {pool: {max: 51}}\n"}
    )
    wait_until(lambda: served.get(path).json()["version"] == moved, what="the moved label")
    assert pool_max(served.get(path)) == 51


def test_a_new_and_a_deleted_label_branch(served: ServeProcess, remote: Remote) -> None:
    git(remote.work, "branch", "release/2025.1", "main")
    remote.push("release/2025.1")
    wait_until(
        lambda: served.get("/payments/production/release(_)2025.1").status_code == 200,
        what="the new branch",
    )
    git(remote.bare, "branch", "-q", "-D", RELEASE)
    wait_until(
        lambda: served.get(f"/payments/production/{RELEASE_PATH}").status_code == 404,
        what="the deleted branch to be refused",
    )


def test_an_invalid_commit_on_a_label_branch_is_422(served: ServeProcess, remote: Remote) -> None:
    remote.commit_on(RELEASE, {"base/payments.yaml": "db: [\n"})
    wait_until(
        lambda: served.get(f"/payments/production/{RELEASE_PATH}").status_code == 422,
        what="the invalid commit",
    )
    error = served.get(f"/payments/production/{RELEASE_PATH}").json()["error"]
    assert error["code"] == "invalid_revision"
    assert pool_max(served.get("/payments/production")) == 50


def test_status_and_metrics_show_the_label_branches(served: ServeProcess) -> None:
    status = served.get("/v1/status").json()["spring"]
    assert status["labels"] == ["release/*"]
    assert status["label_branches"] == [RELEASE, "release/same"]
    assert status["label_branches_skipped"] == 0
    metrics = served.get("/metrics").text
    assert "gitconf_spring_label_branches 2.0" in metrics
    assert "gitconf_spring_label_branches_skipped 0.0" in metrics


def test_many_requests_for_one_label_compile_it_once(remote: Remote, tmp_path: Path) -> None:
    server = build_server(remote.bare, tmp_path / "state", spring={"labels": ["release/*"]})
    try:
        before = server.compiler.sent["Revision"]
        answers: list[Any] = []

        def ask() -> None:
            client = server.app.test_client()
            answers.append(client.get(f"/payments/production/{RELEASE_PATH}"))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert [a.status_code for a in answers] == [200] * 8
        assert {a.get_json()["version"] for a in answers} == {
            git(remote.bare, "rev-parse", RELEASE)
        }
        assert server.compiler.sent["Revision"] - before == 1  # one compile, through RefCache
    finally:
        server.engine.dispose()
