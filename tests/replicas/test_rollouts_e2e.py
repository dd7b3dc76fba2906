"""A rollout across two real `gitconf serve` replicas on one PostgreSQL: 400 instances, the
same quarter on the candidate on every poll and on both replicas, half after a promote (the
quarter among them), everyone back on stable after an abort, announced once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from gitconf.release.bucket import bucket
from gitconf.testing import MINIMAL_MANIFEST
from gitconf.testing.server import ServeProcess, wait_until
from tests.notify.receiver import Receiver, verify
from tests.replicas.test_e2e import SUB_SECRET, Cluster, github_hook
from tests.replicas.test_pins_e2e import ADMIN, PROD, RELEASER, bearer, start
from tests.server.test_watch import Stream

IDS = [f"pod-{n:03d}" for n in range(400)]


def candidates(replica: ServeProcess, stable: str) -> set[str]:
    """The instances replica serves another revision of production/payments than stable."""
    found = set()
    with requests.Session() as session:
        for instance in IDS:
            reply = session.get(
                f"{replica.url}/v1/config/production/payments",
                headers={**bearer(ADMIN), "X-Gitconf-Instance": instance},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            if reply.headers["X-Gitconf-Revision"] != stable:
                found.add(instance)
    return found


def rollout(replica: ServeProcess) -> dict[str, object]:
    reply = replica.get("/v1/rollouts/production", headers=bearer(ADMIN))
    assert reply.status_code == 200, reply.text
    doc: dict[str, object] = reply.json()
    return doc


def act(replica: ServeProcess, action: str, reason: str) -> dict[str, object]:
    reply = requests.post(
        f"{replica.url}/v1/rollouts/production/{action}",
        json={"reason": reason},
        headers=bearer(RELEASER),
        timeout=20,
    )
    assert reply.status_code == 200, reply.text
    doc: dict[str, object] = reply.json()
    return doc


def test_a_rollout_splits_the_same_instances_on_both_replicas(tmp_path: Path, pg_url: str) -> None:
    cluster = Cluster(tmp_path, pg_url)
    rollouts = "rollouts:\n  production: {steps: [25, 50, 100], bake: 3600}\n"
    c1 = cluster.push("roll production out", {"gitconf.yaml": MINIMAL_MANIFEST + rollouts})
    receiver = Receiver().start()
    try:
        one, two = start(cluster, "one"), start(cluster, "two")
        doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"],
               "secret": SUB_SECRET}  # fmt: skip
        assert one.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN)).status_code == 201
        c2 = cluster.push("bigger pool", {PROD: "db:\n  pool: {max: 70}\n"})
        assert github_hook(one, c2) == 202
        for replica in (one, two):
            wait_until(
                lambda r=replica: (
                    r.get("/v1/rollouts/production", headers=bearer(ADMIN)).ok
                    and rollout(r)["candidate"] == c2
                ),
                20,
                what="the rollout on both replicas",
            )
            assert (rollout(replica)["state"], rollout(replica)["percent"]) == ("running", 25)
        quarter = candidates(one, c1)
        assert 400 * 0.18 <= len(quarter) <= 400 * 0.32, len(quarter)
        assert candidates(one, c1) == quarter  # the same instances on every poll
        assert candidates(two, c1) == quarter  # and on the other replica

        # An instance of the next quarter long-polls replica one; a promote on two moves it.
        rollout_id = str(rollout(one)["id"])
        moving = next(i for i in IDS if 25 <= bucket(rollout_id, i) < 50)
        headers = {**bearer(ADMIN), "X-Gitconf-Instance": moving}
        etag = one.get("/v1/config/production/payments", headers=headers).headers["ETag"]
        answered: list[requests.Response] = []
        waiter = threading.Thread(
            target=lambda: answered.append(
                one.get(
                    "/v1/config/production/payments?wait=30",
                    headers={**headers, "If-None-Match": etag},
                    timeout=40,
                )
            )
        )
        waiter.start()
        # It watches too; so does an instance that stays on stable.
        stays = next(i for i in IDS if bucket(rollout_id, i) >= 50)
        streams = {
            name: Stream(
                f"{one.url}/v1/watch?environments=production&services=payments",
                {**bearer(ADMIN), "X-Gitconf-Instance": name},
            )
            for name in (moving, stays)
        }
        wait_until(
            lambda: (
                "gitconf_long_polls_waiting 1.0" in one.get("/metrics").text
                and "gitconf_watch_streams 2.0" in one.get("/metrics").text
            ),
            10,
            what="the wait and the streams",
        )
        assert act(two, "promote", "error rate flat")["percent"] == 50
        waiter.join(30)
        [moved] = answered
        assert moved.status_code == 200 and moved.headers["X-Gitconf-Revision"] == c2
        event = streams[moving].next_event()
        assert event["event"] == "config.changed"
        data = json.loads(event["data"])
        assert (data["environment"], data["revision"], data["previous_revision"]) == (
            "production", c2, c1,
        )  # fmt: skip
        for stream in streams.values():
            stream.close()
        stayed = []
        while not streams[stays].blocks.empty():
            stayed.append(streams[stays].blocks.get())
        assert [b for b in stayed if "event" in b] == []  # still on stable: nothing changed
        wait_until(lambda: rollout(one)["percent"] == 50, 20)
        wait_until(lambda: "rollouts" in one.get("/v1/status", headers=bearer(ADMIN)).json()
                   and one.get("/v1/status", headers=bearer(ADMIN)).json()["rollouts"]
                   ["production"]["percent"] == 50, 20, what="replica one at 50 %")  # fmt: skip
        half = candidates(one, c1)
        assert quarter < half and 400 * 0.43 <= len(half) <= 400 * 0.57, len(half)
        assert candidates(two, c1) == half
        seen = {i["instance"]: i["revision"] for i in rollout(two)["instances"]}  # type: ignore[attr-defined]
        assert set(seen) == set(IDS)
        assert {i for i, rev in seen.items() if rev == c2} == half

        assert act(one, "abort", "p99 doubled")["state"] == "aborted"
        wait_until(lambda: rollout(two)["state"] == "aborted", 20)
        wait_until(
            lambda: (
                two.get("/v1/status", headers=bearer(ADMIN)).json()["rollouts"]["production"][
                    "state"
                ]
                == "aborted"
            ),
            20,
            what="replica two to serve the abort",
        )
        for replica in (one, two):
            assert candidates(replica, c1) == set()
        wait_until(lambda: len(receiver.accepted()) == 1, 20, what="the abort event")
        [event] = [verify(r, SUB_SECRET)["data"] for r in receiver.accepted()]
        assert (event["action"], event["reason"], event["revision"], event["previous_revision"]) == (
            "abort", "p99 doubled", c1, c2,
        )  # fmt: skip
        audit = one.get("/v1/audit?action=rollout", headers=bearer(ADMIN)).json()["entries"]
        assert [(e["actor"], e["action"], e["result"]) for e in audit] == [
            ("releaser", "rollout.promote", "200"),
            ("releaser", "rollout.abort", "200"),
        ]
    finally:
        receiver.stop()
        cluster.close()
