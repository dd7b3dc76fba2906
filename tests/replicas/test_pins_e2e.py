"""Pins across two real `gitconf serve` replicas on one PostgreSQL: a pin taken on one is
served by both (and after a restart), a publish while pinned leaves it, an unpin on the other
serves the head everywhere, and each move is announced once, with its reason and actor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

from gitconf.testing.server import ServeProcess, wait_until
from tests.notify.receiver import Receiver, verify
from tests.replicas.test_e2e import HOOK_SECRET, SUB_SECRET, Cluster, github_hook

ADMIN = "t-admin-0123456789abcdef"
RELEASER = "t-release-0123456789abcd"
TOKENS = [
    {"name": "ops", "token": ADMIN, "scopes": ["admin"]},
    {"name": "releaser", "token": RELEASER, "scopes": ["release:production", "read:*"]},
]
PROD = "environments/production/payments.yaml"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start(cluster: Cluster, name: str) -> ServeProcess:
    settings = {
        "database_url": cluster.database_url,
        "tokens": TOKENS,
        "hooks": {"github": {"secret": HOOK_SECRET}},
        "delivery": {"timeout": 5, "first_backoff": 0.05, "max_backoff": 0.5},
    }
    config = cluster.tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump(settings))
    replica = ServeProcess(cluster.bare, cluster.tmp / name, poll_interval=600, config=config)
    cluster.replicas.append(replica.start())
    return replica


def served(replica: ServeProcess, env: str = "production") -> tuple[int, str]:
    reply = replica.get(f"/v1/config/{env}/payments", headers=bearer(ADMIN))
    assert reply.status_code == 200, reply.text
    return reply.json()["db"]["pool"]["max"], reply.headers["X-Gitconf-Revision"]


def events(receiver: Receiver) -> list[dict[str, Any]]:
    return [verify(r, SUB_SECRET)["data"] for r in receiver.accepted()]


def test_pin_and_unpin_are_served_and_announced_by_every_replica(
    tmp_path: Path, pg_url: str
) -> None:
    cluster = Cluster(tmp_path, pg_url)
    receiver = Receiver().start()
    try:
        one, two = start(cluster, "one"), start(cluster, "two")
        c1 = served(one)[1]
        doc = {"url": receiver.url, "environments": ["production"], "services": ["payments"],
               "secret": SUB_SECRET}  # fmt: skip
        made = one.post("/v1/subscriptions", json=doc, headers=bearer(ADMIN))
        assert made.status_code == 201, made.text
        sub_id = made.json()["id"]
        c2 = cluster.push("bigger pool", {PROD: "db:\n  pool: {max: 70}\n"})
        assert github_hook(one, c2) == 202
        for replica in (one, two):
            wait_until(lambda r=replica: served(r) == (70, c2), 20, what="both to serve c2")
        wait_until(lambda: len(receiver.accepted()) == 1, 20, what="the c2 event")

        pin = requests.put(
            f"{one.url}/v1/environments/production/pin",
            json={"revision": c1, "reason": "pool 70 starves the db"},
            headers=bearer(RELEASER),
            timeout=20,
        )
        assert pin.status_code == 200, pin.text
        assert served(one) == (50, c1)  # served by the replica that took it when it answers
        wait_until(lambda: served(two) == (50, c1), 20, what="the other replica to serve the pin")
        for replica in (one, two):
            assert served(replica, "production-eu") == (70, c2)
            status = replica.get("/v1/status", headers=bearer(ADMIN)).json()
            assert status["pinned"] == {"production": c1}
            assert replica.get("/readyz").json()["pins"] == {"production": c1}
        wait_until(lambda: len(receiver.accepted()) == 2, 20, what="the pin event")

        two.kill()  # a restart keeps serving the pin, from before its first poll
        cluster.replicas.remove(two)
        two = start(cluster, "two")
        assert served(two) == (50, c1)

        c3 = cluster.push("pool for real", {PROD: "db:\n  pool: {max: 90}\n"})
        assert github_hook(two, c3) == 202
        for replica in (one, two):
            wait_until(
                lambda r=replica: served(r, "production-eu") == (90, c3), 20, what="c3 served"
            )
            assert served(replica) == (50, c1)  # compiled and recorded, not served pinned

        unpin = requests.delete(
            f"{two.url}/v1/environments/production/pin",
            json={"reason": "c3 sizes the pool"},
            headers=bearer(RELEASER),
            timeout=20,
        )
        assert unpin.status_code == 200, unpin.text
        for replica in (one, two):
            wait_until(lambda r=replica: served(r) == (90, c3), 20, what="both to serve c3")
        wait_until(lambda: len(receiver.accepted()) == 3, 20, what="the unpin event")
        # Every replica has moved; once the outbox says delivered, nothing more is sent.
        wait_until(
            lambda: all(
                d["state"] == "delivered"
                for d in one.get(
                    f"/v1/subscriptions/{sub_id}/deliveries", headers=bearer(ADMIN)
                ).json()["deliveries"]
            ),
            20,
        )
        moves = [(e.get("action"), e.get("reason"), e["revision"], e["previous_revision"])
                 for e in events(receiver)]  # fmt: skip
        assert moves == [
            (None, None, c2, c1),
            ("pin", "pool 70 starves the db", c1, c2),
            ("unpin", "c3 sizes the pool", c3, c1),
        ]
        audit = one.get("/v1/audit?action=pin", headers=bearer(ADMIN)).json()["entries"]
        assert [(e["actor"], e["action"], e["result"]) for e in audit] == [
            ("releaser", "pin.set", "200"),
            ("releaser", "pin.clear", "200"),
        ]
        assert audit[0]["replica"] != audit[1]["replica"]  # taken on one, cleared on two
    finally:
        receiver.stop()
        cluster.close()
