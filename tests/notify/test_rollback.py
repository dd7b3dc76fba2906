"""A rollback: the branch force-pushed back to a commit that subscribers were told about."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitconf.bootstrap import Server
from gitconf.testing import git
from tests.notify.conftest import deliver_until, publish, subscribe
from tests.notify.receiver import Receiver


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the outbox's unique key (subscription, environment, service, revision) "
    "skips the rollback's events as duplicates of those sent when that revision was new; that "
    "key also hides the change sets a replica that is behind writes, so replicas must stop "
    "moving the cursor back before the key can change",
)
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
