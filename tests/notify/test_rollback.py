"""A rollback: the branch force-pushed back to a commit that subscribers were told about."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitconf.bootstrap import Server
from gitconf.testing import git
from tests.notify.conftest import deliver_until, publish, subscribe
from tests.notify.receiver import Receiver


def test_a_rollback_to_an_older_revision_is_notified(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    receiver = receivers()
    subscribe(client, receiver.url, environments=["staging"], services=["search"])
    good = publish(server, repo, {"base/search.yaml": "shards: [s1]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 1)
    publish(server, repo, {"base/search.yaml": "shards: [s1, s2, s3]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 2)
    git(repo, "reset", "-q", "--hard", good)  # what a force-push of the older commit does
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == good
    deliver_until(server, lambda: len(receiver.accepted()) == 3, timeout=3)


def test_a_roll_forward_after_a_rollback_is_notified(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    receiver = receivers()
    subscribe(client, receiver.url, environments=["staging"], services=["search"])
    good = publish(server, repo, {"base/search.yaml": "shards: [s1]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 1)
    bad = publish(server, repo, {"base/search.yaml": "shards: [s1, s2, s3]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 2)
    for target, count in [(good, 3), (bad, 4), (good, 5)]:
        git(repo, "reset", "-q", "--hard", target)
        assert server.poller.run_once() == "published"
        deliver_until(server, lambda count=count: len(receiver.accepted()) == count)
    events = [r.event for r in receiver.accepted()]
    assert [(e["data"]["revision"], e["data"]["previous_revision"]) for e in events[2:]] == [
        (good, bad),
        (bad, good),
        (good, bad),
    ]
