"""The compile worker's limits: a hostile commit is rejected, the worker replaced, reads go on."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from gitconf.bootstrap import Server
from gitconf.testing import commit_all
from gitconf.testing.server import ServeProcess, wait_until

# A pattern that backtracks exponentially: each extra "a" doubles the time (27 took 14 s).
REDOS_SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}
}
"""
REDOS = {"schemas/search.schema.json": REDOS_SCHEMA, "base/search.yaml": f"name: {'a' * 34}!\n"}


def test_a_compile_past_the_cpu_limit_is_rejected_and_the_worker_replaced(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, compile={"timeout": 1})
    assert server.poller.run_once() == "published"
    good = server.publisher.served.revision
    first_worker = server.compiler.pid
    bad = commit_all(repo, "hostile pattern", REDOS)

    assert server.poller.run_once() == "rejected"

    assert server.publisher.served.revision == good
    [record] = server.poll.revisions.recent(state="rejected")
    assert record["revision"] == bad
    [problem] = record["problems"]
    assert problem["message"].startswith("compiling this revision took more than 1 s of CPU time")
    assert "the largest files were " in problem["message"]
    assert "compile.timeout" in problem["hint"]
    assert server.compiler.restarts == 1
    # The next commit gets a new worker, and is served.
    fixed = commit_all(repo, "fixed", {"base/search.yaml": "name: aaa\n"})
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == fixed
    assert server.compiler.pid not in (None, first_worker)


def test_a_compile_past_the_memory_limit_is_rejected(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, compile={"max_memory": "256MiB"})
    assert server.poller.run_once() == "published"
    # A million keys, within a file size limit raised for it: parsing them needs more than
    # 256 MiB.
    keys = "".join(f"k{n}: {n}\n" for n in range(1_000_000))
    manifest = (repo / "gitconf.yaml").read_text() + "  max_file_size: 100000000\n"
    commit_all(repo, "huge", {"gitconf.yaml": manifest, "base/search.yaml": keys})

    assert server.poller.run_once() == "rejected"

    [record] = server.poll.revisions.recent(state="rejected")
    message = record["problems"][0]["message"]
    assert message.startswith("compiling this revision needed more than 256.0 MiB of memory")
    assert "base/search.yaml (" in message
    status = server.app.test_client().get("/v1/status").get_json()
    assert status["compile_worker"]["restarts"] == 1
    assert "compile.max_memory" in status["compile_worker"]["last_exit"]


def test_a_rejection_for_a_limit_is_made_again_under_other_limits(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    first = make_server(repo, compile={"timeout": 1})
    assert first.poller.run_once() == "published"
    commit_all(repo, "slow", {**REDOS, "base/search.yaml": f"name: {'a' * 22}!\n"})
    assert first.poller.run_once() == "rejected"
    first.stop()

    second = make_server(repo, compile={"timeout": 60})
    assert second.poller.run_once() == "rejected"  # compiled again: a schema error this time
    [record] = second.poll.revisions.recent(state="rejected")
    assert "does not match '^(a+)+$'" in record["problems"][0]["text"]
    assert second.compiler.sent["Compile"] == 1


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_the_worker_runs_in_the_idle_scheduling_class_and_dies_with_the_server(
    repo: Path, tmp_path: Path
) -> None:
    with ServeProcess(repo, tmp_path / "state") as served:
        pid = wait_until(
            lambda: served.get("/v1/status").json()["compile_worker"]["pid"],
            what="a compile worker",
        )
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        # Kill -9 the serving process alone: the worker must not outlive it.
        os.kill(_parent(pid), signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), what=f"worker {pid} to end")


def test_reads_answer_while_a_hostile_commit_compiles(repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("compile: {timeout: 20}\n")
    with ServeProcess(repo, tmp_path / "state", config=config) as served:
        url = f"{served.url}/v1/config/production/payments"
        expected = requests.get(url, timeout=5).content
        commit_all(repo, "hostile pattern", REDOS)
        # The worker is busy once the poll has seen the new head and not decided on it yet.
        wait_until(
            lambda: (
                served.get("/v1/status").json()["poll"]["branch_head"]
                != served.get("/readyz").json()["revision"]
            ),
            what="the hostile compile to start",
        )
        for _ in range(20):
            reply = requests.get(url, timeout=2)  # a stalled server would time out here
            assert reply.content == expected
            assert requests.get(f"{served.url}/v1/status", timeout=2).status_code == 200


def test_a_ref_past_a_limit_is_refused_once_and_answered_from_memory_after(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, compile={"timeout": 1})
    assert server.poller.run_once() == "published"
    bad = commit_all(repo, "hostile pattern", REDOS)
    commit_all(repo, "fixed", {"base/search.yaml": "name: aaa\n"})
    assert server.poller.run_once() == "published"
    client = server.app.test_client()
    replies: list[int] = []

    def read() -> None:
        with server.app.test_client() as own:
            replies.append(own.get(f"/v1/config/staging/search?ref={bad}").status_code)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert replies == [422] * 4
    assert server.compiler.sent["Revision"] == 1  # one compile for the four requests
    again = client.get(f"/v1/config/staging/search?ref={bad}")
    assert again.status_code == 422
    assert "took more than 1 s of CPU time" in again.get_json()["error"]["problems"][0]
    assert server.compiler.sent["Revision"] == 1


@pytest.mark.parametrize("size", ["127MiB", "lots", "2 furlongs"])
def test_a_bad_memory_limit_is_refused_with_the_setting_named(
    repo: Path, make_server: Callable[..., Server], size: str
) -> None:
    from gitconf.settings import SettingsError

    with pytest.raises(SettingsError, match=r"^compile\.max_memory: "):
        make_server(repo, compile={"max_memory": size})
