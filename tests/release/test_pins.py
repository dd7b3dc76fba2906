"""Pins on one server: an environment served from an earlier published revision (on the fast
read path too), publishes while pinned, announcements with the reason, errors, restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

from gitconf.bootstrap import Server
from gitconf.testing import commit_all
from tests.notify.conftest import FAST, deliver_until
from tests.notify.receiver import Receiver

ADMIN = "t-admin-0123456789abcdef"
RELEASER = "t-release-0123456789abcd"
READER = "t-reader-0123456789abcdef"
TOKENS = [
    {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
    {"name": "releaser", "token": RELEASER, "scopes": ["release:production", "read:*"]},
    {"name": "reader", "token": READER, "scopes": ["read:*"]},
]
PROD = "environments/production/payments.yaml"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()


class Pinned:
    """A server that published c1 then c2 (production's pool 50 -> 70)."""

    def __init__(self, server: Server, repo: Path) -> None:
        self.server = server
        self.repo = repo
        self.c1 = server.publisher.served.revision
        self.c2 = self.publish({PROD: "db:\n  pool: {max: 70}\n"})

    def publish(self, files: dict[str, str | None]) -> str:
        sha = commit_all(self.repo, "change", files)
        assert self.server.poller.run_once() == "published"
        return sha

    def pin(self, revision: str, reason: str = "pool too small", token: str = RELEASER) -> Any:
        return self.server.app.test_client().put(
            "/v1/environments/production/pin",
            json={"revision": revision, "reason": reason},
            headers=bearer(token),
        )

    def unpin(self, reason: str | None = "fixed", token: str = RELEASER) -> Any:
        body = {"reason": reason} if reason else None
        return self.server.app.test_client().delete(
            "/v1/environments/production/pin", json=body, headers=bearer(token)
        )

    def read(self, env: str = "production") -> tuple[int, str]:
        """(pool max, X-Gitconf-Revision) as the fast read path serves them: the first read
        (through ConfigReader), the second (its remembered reply) and Flask's agree."""
        path = f"/v1/config/{env}/payments"
        replies = [Client(self.server.wsgi).get(path, headers=bearer(READER)) for _ in range(2)]
        replies.append(self.server.app.test_client().get(path, headers=bearer(READER)))
        found = {
            (r.status_code, r.get_json()["db"]["pool"]["max"], r.headers["X-Gitconf-Revision"])
            for r in replies
        }
        assert len(found) == 1, found
        [(status, pool, revision)] = found
        assert status == 200
        return pool, revision


@pytest.fixture
def pinned(repo: Path, make_server: Callable[..., Server]) -> Pinned:
    server = make_server(repo, tokens=TOKENS, delivery=FAST)
    assert server.poller.run_once() == "published"
    return Pinned(server, repo)


def test_a_pin_is_served_on_the_fast_path_and_a_publish_while_pinned_is_not(
    pinned: Pinned,
) -> None:
    assert pinned.read() == (70, pinned.c2)
    reply = pinned.pin(pinned.c1)
    assert reply.status_code == 200, reply.get_json()
    doc = reply.get_json()
    assert (doc["served_revision"], doc["head"], doc["pinned_by"]) == (
        pinned.c1,
        pinned.c2,
        "releaser",
    )
    assert pinned.read() == (50, pinned.c1)
    assert pinned.read("production-eu") == (70, pinned.c2)  # its own environment: not pinned
    c3 = pinned.publish({PROD: "db:\n  pool: {max: 80}\n"})
    assert pinned.read() == (50, pinned.c1)  # compiled and recorded, not served here
    assert pinned.read("production-eu") == (80, c3)
    client = pinned.server.app.test_client()
    revisions = client.get("/v1/revisions", headers=bearer(ADMIN)).get_json()["revisions"]
    assert revisions[0]["revision"] == c3 and revisions[0]["state"] == "published"
    status = client.get("/v1/status", headers=bearer(ADMIN)).get_json()
    assert status["revision"] == c3 and status["pinned"] == {"production": pinned.c1}
    assert status["pins"]["production"]["reason"] == "pool too small"
    assert client.get("/readyz").get_json()["pins"] == {"production": pinned.c1}
    # ?ref= names a commit: the head's own configs, not the pin.
    head = Client(pinned.server.wsgi).get(
        f"/v1/config/production/payments?ref={c3}", headers=bearer(READER)
    )
    assert head.get_json()["db"]["pool"]["max"] == 80
    assert pinned.unpin().status_code == 200
    assert pinned.read() == (80, c3)
    assert client.get("/readyz").get_json().get("pins") is None


def test_pin_and_unpin_are_announced_with_their_reason(pinned: Pinned, receiver: Receiver) -> None:
    client = pinned.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    assert pinned.pin(pinned.c1, "pool too small for the sale").status_code == 200
    deliver_until(pinned.server, lambda: len(receiver.accepted()) == 1)
    c3 = pinned.publish({PROD: "db:\n  pool: {max: 80}\n"})  # nothing for a pinned config
    assert pinned.unpin("pool fixed in c3").status_code == 200
    deliver_until(pinned.server, lambda: len(receiver.accepted()) == 2)
    events = [r.event["data"] for r in receiver.accepted()]
    assert [(e["action"], e["reason"], e["revision"], e["previous_revision"]) for e in events] == [
        ("pin", "pool too small for the sale", pinned.c1, pinned.c2),
        ("unpin", "pool fixed in c3", c3, pinned.c1),
    ]
    assert events[0]["changed_keys"] == ["db.pool.max"]


def test_pin_actions_are_audited_with_their_actor(pinned: Pinned) -> None:
    assert pinned.pin(pinned.c1).status_code == 200
    assert pinned.unpin().status_code == 200
    assert pinned.pin(pinned.c1, token=READER).status_code == 403
    client = pinned.server.app.test_client()
    rows = client.get("/v1/audit?action=pin", headers=bearer(ADMIN)).get_json()["entries"]
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in rows] == [
        ("releaser", "pin.set", "production", "200"),
        ("releaser", "pin.clear", "production", "200"),
        ("reader", "pin.set", "production", "403 forbidden"),
    ]
    assert rows[0]["detail"] == {"revision": pinned.c1, "reason": "pool too small"}


def test_refusals_name_the_field(pinned: Pinned) -> None:
    rejected = commit_all(pinned.repo, "bad", {"base/payments.yaml": "db: {port: nope}\n"})
    assert pinned.server.poller.run_once() == "rejected"
    unrelated = commit_all(pinned.repo, "not polled", {"base/search.yaml": "shards: []\n"})
    client = pinned.server.app.test_client()
    cases = [
        (pinned.pin("f" * 40), 404, "unknown_revision", "revision"),
        (pinned.pin("no such ref"), 422, "unknown_revision", "revision"),
        (pinned.pin(pinned.c2), 409, "revision_is_head", "revision"),
        (pinned.pin(rejected), 422, "not_published", "revision"),
        (pinned.pin(unrelated), 404, "unknown_revision", "revision"),  # not fetched yet
        (
            client.put(
                "/v1/environments/production/pin",
                json={"revision": pinned.c1},
                headers=bearer(RELEASER),
            ),
            400,
            "invalid_pin",
            "reason",
        ),
        (
            client.put(
                "/v1/environments/nowhere/pin",
                json={"revision": pinned.c1, "reason": "x"},
                headers=bearer(ADMIN),
            ),
            404,
            "unknown_environment",
            "environment",
        ),
        (pinned.unpin(), 404, "not_pinned", "environment"),
    ]
    for reply, status, code, field in cases:
        error = reply.get_json()["error"]
        assert (reply.status_code, error["code"], error.get("field")) == (status, code, field)
        assert error["message"].startswith(f"{field}: "), error["message"]
    staging = client.put(
        "/v1/environments/staging/pin",
        json={"revision": pinned.c1, "reason": "x"},
        headers=bearer(RELEASER),
    )
    assert (
        staging.status_code == 403 and "release:staging" in staging.get_json()["error"]["message"]
    )
    text = client.put(
        "/v1/environments/production/pin",
        data="revision=x",
        headers={**bearer(RELEASER), "Content-Type": "text/plain"},
    )
    assert text.status_code == 415


def test_a_pin_survives_a_restart(
    pinned: Pinned, make_server: Callable[..., Server], repo: Path
) -> None:
    assert pinned.pin(pinned.c1).status_code == 200
    pinned.server.publisher.flush(10)
    pinned.server.stop()
    again = make_server(repo, tokens=TOKENS)  # the same state dir and store
    served = again.publisher.served
    assert served is not None and served.pinned == {"production": pinned.c1}  # before a poll
    after = Pinned.__new__(Pinned)
    after.server, after.repo = again, repo
    assert after.read() == (50, pinned.c1)
    assert again.poller.run_once() == "unchanged"
    assert after.read() == (50, pinned.c1)
    assert after.unpin().status_code == 200  # the head is compiled again for it
    assert after.read() == (70, pinned.c2)


def test_a_store_that_is_down_is_a_503_and_the_served_state_stays(pinned: Pinned) -> None:
    with pinned.server.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE pins RENAME TO pins_away"))
    reply = pinned.pin(pinned.c1)
    assert reply.status_code == 503
    error = reply.get_json()["error"]
    assert error["code"] == "store_unavailable" and error["message"].startswith("the pin store")
    assert pinned.read() == (70, pinned.c2)
    with pinned.server.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE pins_away RENAME TO pins"))
    assert pinned.pin(pinned.c1).status_code == 200


def test_a_pin_supersedes_the_change_a_subscriber_has_not_received_yet(
    pinned: Pinned, receiver: Receiver
) -> None:
    client = pinned.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    made = client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN))
    c3 = pinned.publish({PROD: "db:\n  pool: {max: 80}\n"})  # queued, not delivered yet
    assert pinned.pin(pinned.c1).status_code == 200
    deliver_until(pinned.server, lambda: len(receiver.accepted()) == 1)
    data = receiver.accepted()[0].event["data"]
    assert (data["action"], data["revision"], data["previous_revision"]) == ("pin", pinned.c1, c3)
    found = client.get(
        f"/v1/subscriptions/{made.get_json()['id']}/deliveries", headers=bearer(ADMIN)
    ).get_json()["deliveries"]
    assert [(d["revision"], d["state"]) for d in found] == [
        (pinned.c1, "delivered"),
        (c3, "superseded"),
    ]


def test_two_pins_moved_in_one_poll_each_announce_their_own_action_and_reason(
    pinned: Pinned, receiver: Receiver
) -> None:
    # Another replica unpins production-eu and pins production between two polls here:
    # one served move, whose events each say what happened to their environment.
    server = pinned.server
    client = server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production*"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    eu = client.put(
        "/v1/environments/production-eu/pin",
        json={"revision": pinned.c1, "reason": "eu pool"},
        headers=bearer(ADMIN),
    )
    assert eu.status_code == 200, eu.get_json()
    deliver_until(server, lambda: len(receiver.accepted()) == 1)
    store = server.poll.pins
    assert store is not None
    store.unpin("production-eu", "eu fixed", "other-replica")
    store.pin("production", pinned.c1, "prod pool regression", "other-replica")
    server.poller.run_once()
    deliver_until(server, lambda: len(receiver.accepted()) == 3)
    moved = {
        r.event["data"]["environment"]: (r.event["data"]["action"], r.event["data"]["reason"])
        for r in receiver.accepted()[1:]
    }
    assert moved == {
        "production": ("pin", "prod pool regression"),
        "production-eu": ("unpin", "eu fixed"),
    }
