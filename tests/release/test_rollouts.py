"""Rollouts on one server: a new commit is a candidate for a stable share of instances, raised
step by step, replaced by a newer commit, promoted or aborted (announced), and audited."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

from gitconf.bootstrap import Server
from gitconf.core.manifest import parse_manifest
from gitconf.release.bucket import bucket, on_candidate
from gitconf.store.rollouts import rollouts
from gitconf.testing import MINIMAL_MANIFEST, commit_all, make_repo
from gitconf.testing.server import wait_until
from tests.conftest import BASE_FILES
from tests.notify.conftest import FAST, deliver_until
from tests.notify.receiver import Receiver

ADMIN = "t-admin-0123456789abcdef"
RELEASER = "t-release-0123456789abcd"
TOKENS = [
    {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
    {"name": "releaser", "token": RELEASER, "scopes": ["release:production", "read:*"]},
    {"name": "reader", "token": "t-reader-0123456789abcd", "scopes": ["read:*"]},
]
PROD = "environments/production/payments.yaml"
ROLLOUTS = "rollouts:\n  production: {steps: [25, 50], bake: 3600}\n"
IDS = [f"pod-{n}" for n in range(400)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_bucket_is_stable_and_spread_evenly() -> None:
    assert bucket("production.abc", "pod-1") == bucket("production.abc", "pod-1")
    points = [bucket("production.abc", i) for i in IDS]
    assert all(0 <= p < 100 for p in points)
    under = sum(p < 25 for p in points)
    assert 75 <= under <= 125
    # Raising the percent only adds instances; another rollout shuffles them anew.
    quarter = {i for i in IDS if on_candidate("production.abc", i, 25)}
    half = {i for i in IDS if on_candidate("production.abc", i, 50)}
    assert quarter < half
    assert quarter != {i for i in IDS if on_candidate("production.def", i, 25)}
    assert not on_candidate("production.abc", None, 100) and not on_candidate("x", "", 100)


def test_the_manifest_checks_its_rollouts() -> None:
    good, problems = parse_manifest((MINIMAL_MANIFEST + ROLLOUTS).encode())
    assert problems == [] and good is not None
    assert good.rollouts == {"production": {"steps": [25, 50, 100], "bake": 3600.0}}
    bad = MINIMAL_MANIFEST + "rollouts:\n  nowhere: {steps: [50, 25]}\n"
    _, problems = parse_manifest(bad.encode())
    assert [p.key_path for p in problems] == ["rollouts.nowhere", "rollouts.nowhere.steps"]
    assert "must rise" in problems[1].message


class Rolling:
    """A server whose production rolls out: c1 served, c2 the candidate at 25 %."""

    def __init__(self, server: Server, repo: Path) -> None:
        self.server = server
        self.repo = repo
        self.c1 = server.publisher.served.revision
        self.pools = {self.c1: 50}
        self.c2 = self.publish(70)

    def publish(self, pool: int) -> str:
        sha = commit_all(self.repo, "change", {PROD: f"db:\n  pool: {{max: {pool}}}\n"})
        assert self.server.poller.run_once() == "published"
        self.pools[sha] = pool
        return sha

    def revision_of(self, instance: str | None) -> str:
        headers = {**bearer(ADMIN), **({"X-Gitconf-Instance": instance} if instance else {})}
        reply = Client(self.server.wsgi).get("/v1/config/production/payments", headers=headers)
        assert reply.status_code == 200
        revision: str = reply.headers["X-Gitconf-Revision"]
        assert reply.get_json()["db"]["pool"]["max"] == self.pools[revision]
        return revision

    def on_candidate(self) -> set[str]:
        return {i for i in IDS if self.revision_of(i) != self.c1}

    def act(self, action: str, reason: str | None = None, token: str = RELEASER) -> Any:
        return self.server.app.test_client().post(
            f"/v1/rollouts/production/{action}",
            json={"reason": reason} if reason else None,
            headers=bearer(token),
        )

    def show(self) -> dict[str, Any]:
        reply = self.server.app.test_client().get("/v1/rollouts/production", headers=bearer(ADMIN))
        assert reply.status_code == 200, reply.get_json()
        doc: dict[str, Any] = reply.get_json()
        return doc


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()


@pytest.fixture
def rolling(tmp_path: Path, make_server: Callable[..., Server]) -> Rolling:
    repo = make_repo(
        tmp_path / "config", {**BASE_FILES, "gitconf.yaml": MINIMAL_MANIFEST + ROLLOUTS}
    )
    server = make_server(repo, tokens=TOKENS, delivery=FAST)
    assert server.poller.run_once() == "published"
    return Rolling(server, repo)


def test_a_new_commit_is_served_to_a_stable_quarter_then_half_of_the_instances(
    rolling: Rolling,
) -> None:
    assert rolling.revision_of(None) == rolling.c1  # unidentified: the stable revision
    assert rolling.revision_of("pod-x") in (rolling.c1, rolling.c2)
    quarter = rolling.on_candidate()
    assert 75 <= len(quarter) <= 125
    assert rolling.on_candidate() == quarter  # the same instances on every poll
    assert (
        Client(rolling.server.wsgi)
        .get("/v1/config/production-eu/payments", headers=bearer(ADMIN))
        .headers["X-Gitconf-Revision"]
        == rolling.c2
    )  # not in a rollout: served at once
    doc = rolling.show()
    assert (doc["state"], doc["percent"], doc["stable"], doc["candidate"]) == (
        "running",
        25,
        rolling.c1,
        rolling.c2,
    )
    seen = {i["instance"]: i["revision"] for i in doc["instances"]}
    assert set(seen) == set(IDS) | {"pod-x"}
    assert {i for i, rev in seen.items() if rev == rolling.c2 and i != "pod-x"} == quarter
    promoted = rolling.act("promote", "error rate flat")
    assert promoted.status_code == 200, promoted.get_json()
    assert promoted.get_json()["percent"] == 50
    half = rolling.on_candidate()
    assert quarter < half and 160 <= len(half) <= 240
    assert rolling.act("promote").get_json()["state"] == "promoted"
    assert rolling.revision_of(None) == rolling.c2 == rolling.revision_of("pod-1")


def test_abort_returns_everyone_to_stable_and_is_announced(
    rolling: Rolling, receiver: Receiver
) -> None:
    client = rolling.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    assert rolling.on_candidate()
    aborted = rolling.act("abort", "p99 latency doubled")
    assert aborted.status_code == 200 and aborted.get_json()["state"] == "aborted"
    assert rolling.on_candidate() == set()
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 1)
    data = receiver.accepted()[0].event["data"]
    assert (data["action"], data["reason"], data["revision"], data["previous_revision"]) == (
        "abort",
        "p99 latency doubled",
        rolling.c1,
        rolling.c2,
    )
    assert rolling.act("promote").status_code == 409  # nothing left to promote
    # A newer commit starts a new rollout from the stable revision.
    c3 = rolling.publish(60)
    again = rolling.show()
    assert (again["state"], again["stable"], again["candidate"]) == ("running", rolling.c1, c3)


def test_a_newer_commit_replaces_the_candidate_and_bake_advances_the_steps(
    rolling: Rolling,
) -> None:
    quarter = rolling.on_candidate()
    c3 = rolling.publish(75)
    doc = rolling.show()
    assert (doc["candidate"], doc["replaced_candidates"], doc["percent"]) == (c3, [rolling.c2], 25)
    assert doc["last_action"]["action"] == "replaced"
    rolling.c2 = c3
    assert rolling.on_candidate() == quarter  # the same rollout id: the same instances first
    # The bake ends (the step began an hour ago): the next tick moves to the next step.
    with rolling.server.engine.begin() as conn:
        conn.execute(
            rollouts.update().values(
                step_started_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3601)
            )
        )
    assert rolling.server.poller.run_once() == "published"
    assert rolling.show()["percent"] == 50
    assert quarter < rolling.on_candidate()


def test_actions_need_the_release_scope_and_are_audited(rolling: Rolling) -> None:
    assert rolling.act("pause").status_code == 200
    assert rolling.act("pause").status_code == 409
    assert rolling.act("resume").status_code == 200
    assert rolling.act("launch").status_code == 404
    client = rolling.server.app.test_client()
    # The read scope shows a rollout but does not act on it.
    reader = bearer("t-reader-0123456789abcd")
    assert client.get("/v1/rollouts/production", headers=reader).status_code == 200
    refused = rolling.act("abort", token="t-reader-0123456789abcd")
    assert refused.status_code == 403
    assert "release:production" in refused.get_json()["error"]["message"]
    assert client.get("/v1/rollouts/staging", headers=reader).status_code == 404
    rows = client.get("/v1/audit?action=rollout", headers=bearer(ADMIN)).get_json()["entries"]
    assert [(r["actor"], r["action"], r["result"]) for r in rows] == [
        ("releaser", "rollout.pause", "200"),
        ("releaser", "rollout.pause", "409 rollout_state"),
        ("releaser", "rollout.resume", "200"),
        ("releaser", "rollout", "404 unknown_action"),
        ("reader", "rollout.abort", "403 forbidden"),
    ]
    with rolling.server.engine.connect() as conn:
        assert conn.execute(sa.select(rollouts.c.state)).scalar_one() == "running"


def test_a_long_poll_is_answered_when_a_step_moves_its_instance_to_the_candidate(
    rolling: Rolling, receiver: Receiver
) -> None:
    client = rolling.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    rollout_id = rolling.show()["id"]
    moving = next(i for i in IDS if 25 <= bucket(rollout_id, i) < 50)
    headers = {**bearer(ADMIN), "X-Gitconf-Instance": moving}
    first = client.get("/v1/config/production/payments", headers=headers)
    assert first.headers["X-Gitconf-Revision"] == rolling.c1
    answered: list[Any] = []

    def wait() -> None:
        answered.append(
            rolling.server.app.test_client().get(
                "/v1/config/production/payments?wait=20",
                headers={**headers, "If-None-Match": first.headers["ETag"]},
            )
        )

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_until(lambda: rolling.server.reader.waiting == 1, 10, what="the long poll to wait")
    assert rolling.act("promote").status_code == 200  # 50 %: this instance moves
    waiter.join(20)
    [reply] = answered
    assert reply.status_code == 200
    assert reply.headers["X-Gitconf-Revision"] == rolling.c2
    # At 100 % everyone is on the candidate: announced as a promotion.
    assert rolling.act("promote", "all good").get_json()["state"] == "promoted"
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 1)
    data = receiver.accepted()[0].event["data"]
    assert (data["action"], data["reason"], data["revision"], data["previous_revision"]) == (
        "promote",
        "all good",
        rolling.c2,
        rolling.c1,
    )


def test_a_pin_wins_over_a_rollout_and_its_unpin_returns_to_the_rollout(
    rolling: Rolling, receiver: Receiver
) -> None:
    client = rolling.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    c2 = rolling.c2
    rolling.c2 = rolling.publish(75)  # the candidate now; c2 is an earlier published revision
    pin = client.put(
        "/v1/environments/production/pin",
        json={"revision": c2, "reason": "hold at 70"},
        headers=bearer(RELEASER),
    )
    assert pin.status_code == 200, pin.get_json()
    assert {rolling.revision_of(i) for i in [None, *IDS]} == {c2}  # everyone: the pin
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 1)
    unpin = client.delete(
        "/v1/environments/production/pin", json={"reason": "back to the rollout"},
        headers=bearer(RELEASER),
    )  # fmt: skip
    assert unpin.status_code == 200
    assert rolling.revision_of(None) == rolling.c1 and rolling.on_candidate()
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 2)
    moves = [(e.event["data"]["action"], e.event["data"]["revision"]) for e in receiver.accepted()]
    assert moves == [("pin", c2), ("unpin", rolling.c1)]


def test_a_pin_during_a_rollout_announces_the_canaries_move_and_the_unpin_their_return(
    rolling: Rolling, receiver: Receiver
) -> None:
    client = rolling.server.app.test_client()
    doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"]}
    assert client.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
    canaries = rolling.on_candidate()
    assert canaries
    pinned = client.put(
        "/v1/environments/production/pin",
        json={"revision": rolling.c1, "reason": "candidate looks wrong"},
        headers=bearer(RELEASER),
    )
    assert pinned.status_code == 200, pinned.get_json()
    assert rolling.on_candidate() == set()  # the canaries are on the pin now
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 1)
    first = receiver.accepted()[0].event["data"]
    assert (first["action"], first["reason"], first["revision"], first["previous_revision"]) == (
        "pin", "candidate looks wrong", rolling.c1, rolling.c2,
    )  # fmt: skip
    unpinned = client.delete(
        "/v1/environments/production/pin", json={"reason": "false alarm"}, headers=bearer(RELEASER)
    )
    assert unpinned.status_code == 200, unpinned.get_json()
    assert rolling.on_candidate() == canaries  # the same instances, back on the candidate
    deliver_until(rolling.server, lambda: len(receiver.accepted()) == 2)
    second = receiver.accepted()[1].event["data"]
    assert (second["action"], second["reason"], second["revision"], second["previous_revision"]) == (
        "unpin", "false alarm", rolling.c2, rolling.c1,
    )  # fmt: skip
