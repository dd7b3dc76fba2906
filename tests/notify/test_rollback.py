"""A rollback: the branch force-pushed back to a commit that subscribers were told about."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitconf.bootstrap import Server
from gitconf.testing import git
from tests.notify.conftest import deliver_until, publish, subscribe
from tests.notify.receiver import Receiver


def rolled_back(server: Server, repo: Path, receiver: Receiver) -> tuple[str, str]:
    """Publish good, then bad, each heard by receiver; then roll back to good: (good, bad)."""
    subscribe(server.app.test_client(), receiver.url, environments=["staging"], services=["search"])
    good = publish(server, repo, {"base/search.yaml": "shards: [s1]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 1)
    bad = publish(server, repo, {"base/search.yaml": "shards: [s1, s2, s3]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 2)
    git(repo, "reset", "-q", "--hard", good)  # what a force-push of the older commit does
    assert server.poller.run_once() == "published"
    assert server.publisher.served.revision == good
    return good, bad


def test_a_rollback_to_an_older_revision_is_notified(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    good, bad = rolled_back(server, repo, receiver)
    deliver_until(server, lambda: len(receiver.accepted()) == 3, timeout=5)
    event = receiver.accepted()[2].event["data"]
    assert (event["revision"], event["previous_revision"]) == (good, bad)
    assert event["action"] == "rollback"
    assert event["etag"] == receiver.accepted()[0].event["data"]["etag"]


def test_the_change_after_a_rollback_is_measured_from_what_subscribers_last_heard(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    good, _ = rolled_back(server, repo, receiver)
    deliver_until(server, lambda: len(receiver.accepted()) == 3)
    fixed = publish(server, repo, {"base/search.yaml": "shards: [s1, s2]\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 4)
    event = receiver.accepted()[3].event["data"]
    assert (event["revision"], event["previous_revision"]) == (fixed, good)
    assert "action" not in event


def test_every_move_is_announced_even_one_that_repeats_an_earlier_one(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    good, bad = rolled_back(server, repo, receiver)  # bad -> good: the third event
    deliver_until(server, lambda: len(receiver.accepted()) == 3)
    git(repo, "reset", "-q", "--hard", bad)  # forward again: bad was announced before
    assert server.poller.run_once() == "published"
    deliver_until(server, lambda: len(receiver.accepted()) == 4)
    git(repo, "reset", "-q", "--hard", good)  # and back: the same move as the third
    assert server.poller.run_once() == "published"
    deliver_until(server, lambda: len(receiver.accepted()) == 5)
    moves = [
        (e.event["data"]["revision"], e.event["data"]["previous_revision"])
        for e in receiver.accepted()
    ]
    assert moves[2:] == [(good, bad), (bad, good), (good, bad)]
    assert len({e.event["id"] for e in receiver.accepted()}) == 5


def test_status_lists_the_moves_of_the_served_revision(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    good, bad = rolled_back(server, repo, receivers())
    moves = server.app.test_client().get("/v1/status").get_json()["notifications"]["moves"]
    assert [(m["kind"], m["revision"], m["previous_revision"]) for m in moves[:2]] == [
        ("rollback", good, bad),
        ("publish", bad, good),
    ]
    assert moves[0]["seq"] > moves[1]["seq"]
