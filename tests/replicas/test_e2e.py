"""Three real `gitconf serve` replicas on one PostgreSQL database and one bare repository."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from gitconf.testing import commit_all, git, make_repo, signed_github_push
from gitconf.testing.proxy import TcpProxy
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.notify.receiver import DROP, Receiver, Reply, verify

HOOK_SECRET = "replica-hook-secret"
SUB_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Cluster:
    """A bare repository, a work clone that pushes to it, and replicas serving it."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp = tmp_path
        self.work = make_repo(tmp_path / "work", dict(BASE_FILES))
        self.bare = tmp_path / "config.git"
        git(tmp_path, "clone", "-q", "--bare", str(self.work), str(self.bare))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.database_url = database_url
        self.replicas: list[ServeProcess] = []

    def start(
        self, name: str, *, database_url: str | None = None, **delivery: float
    ) -> ServeProcess:
        settings = {
            "database_url": database_url or self.database_url,
            "hooks": {"github": {"secret": HOOK_SECRET}},
            "delivery": {"timeout": 5, "first_backoff": 0.05, "max_backoff": 0.5, **delivery},
        }
        config = self.tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(settings))
        replica = ServeProcess(self.bare, self.tmp / name, poll_interval=600, config=config)
        self.replicas.append(replica.start())
        return replica

    def push(self, message: str, files: dict[str, str | None]) -> str:
        sha = commit_all(self.work, message, files)
        git(self.work, "push", "-q", "origin", "main")
        return sha

    def close(self) -> None:
        for replica in self.replicas:
            replica.kill()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    made = Cluster(tmp_path, pg_url)
    yield made
    made.close()


def github_hook(replica: ServeProcess, sha: str) -> int:
    body, headers = signed_github_push(HOOK_SECRET, sha)
    return replica.post("/v1/hooks/github", data=body, headers=headers).status_code


def serves(replica: ServeProcess, sha: str) -> bool:
    response = replica.get("/v1/config/production/payments")
    return response.headers.get("X-Gitconf-Revision") == sha


def subscribe(replica: ServeProcess, url: str, **extra: Any) -> str:
    response = replica.post(
        "/v1/subscriptions",
        json={
            "url": url,
            "environments": ["*"],
            "services": ["payments"],
            "secret": SUB_SECRET,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["id"]
    return sub_id


def keys(receiver: Receiver) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for received in receiver.accepted():
        data = verify(received, SUB_SECRET)["data"]
        counts[(data["environment"], data["service"], data["revision"])] += 1
    return counts


def test_a_hook_to_one_replica_makes_all_serve_and_each_change_is_delivered_once(
    cluster: Cluster,
) -> None:
    replicas = [cluster.start(f"r{i}") for i in range(3)]
    receiver = Receiver().start()
    try:
        sub_id = subscribe(replicas[1], receiver.url)
        sha = cluster.push(
            "payments everywhere", {"base/payments.yaml": "db: {host: db9, port: 5432}\n"}
        )
        assert github_hook(replicas[0], sha) == 202
        for replica in replicas:
            wait_until(lambda r=replica: serves(r, sha), 20, what=f"{replica.url} to serve {sha}")
        expected = {(env, "payments", sha) for env in ("staging", "production", "production-eu")}
        wait_until(lambda: set(keys(receiver)) == expected, 30, what="the three deliveries")
        # Every replica has published; once the outbox says delivered, nothing more is sent.
        wait_until(
            lambda: all(
                d["state"] == "delivered"
                for d in replicas[2]
                .get(f"/v1/subscriptions/{sub_id}/deliveries")
                .json()["deliveries"]
            ),
            20,
        )
        assert all(count == 1 for count in keys(receiver).values()), keys(receiver)
        status = replicas[2].get("/v1/status").json()
        live = status["replicas"]["replicas"]
        assert len(live) == 3
        assert {r["revision"] for r in live} == {sha}
        wait_until(lambda: "gitconf_replicas_live 3.0" in replicas[0].get("/metrics").text, 15)
    finally:
        receiver.stop()


def test_a_dead_replicas_claimed_delivery_is_taken_over_after_its_lease(cluster: Cluster) -> None:
    release = threading.Event()
    holder = cluster.start("holder", timeout=2, lease=3)

    def respond(n: int, _request: object) -> Reply:
        if not release.is_set():  # the holder's attempts hang until it is dead, then go nowhere
            release.wait(60)
            return DROP
        return Reply(204)

    receiver = Receiver(respond).start()
    try:
        subscribe(holder, receiver.url, environments=["production"])
        sha = cluster.push(
            "prod payments", {"environments/production/payments.yaml": "db: {pool: {max: 9}}\n"}
        )
        assert github_hook(holder, sha) == 202
        # The holder's first attempt hangs in the receiver: the row is claimed and leased.
        wait_until(lambda: receiver.count >= 1, 20, what="the held attempt")
        other = cluster.start("other", timeout=2, lease=3)
        wait_until(lambda: serves(other, sha), 20)
        holder.kill()
        release.set()
        [delivered] = wait_until(lambda: receiver.accepted(), 30, what="the takeover")
        data = verify(delivered, SUB_SECRET)["data"]
        assert (data["environment"], data["service"], data["revision"]) == (
            "production",
            "payments",
            sha,
        )
    finally:
        release.set()
        receiver.stop()


def test_postgres_cut_and_restored_loses_nothing(cluster: Cluster) -> None:
    target = sa.make_url(cluster.database_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    url = target.set(port=proxy.port).render_as_string(hide_password=False)
    receiver = Receiver().start()
    try:
        replica = cluster.start("cut", database_url=url)
        subscribe(replica, receiver.url, environments=["staging"])
        proxy.cut()
        sha = cluster.push(
            "during the outage", {"base/payments.yaml": "db: {host: dbx, port: 5432}\n"}
        )
        assert github_hook(replica, sha) == 202
        # Reads and publishing go on from memory while the store is unreachable.
        wait_until(lambda: serves(replica, sha), 20, what="publishing without the store")
        status = wait_until(
            lambda: (s := replica.get("/v1/status").json())["replicas"]["store_error"] and s, 30
        )
        assert "unreachable" in status["replicas"]["store_error"]
        assert receiver.received == []
        proxy.restore()
        [delivered] = wait_until(
            lambda: receiver.accepted(), 60, what="the delivery after the outage"
        )
        data = verify(delivered, SUB_SECRET)["data"]
        assert (data["environment"], data["revision"]) == ("staging", sha)
    finally:
        receiver.stop()
        proxy.close()


def test_a_change_posted_to_one_replica_is_served_by_every_replica(cluster: Cluster) -> None:
    one, two = cluster.start("one"), cluster.start("two")
    base = git(cluster.bare, "rev-parse", "main")
    wait_until(lambda: serves(one, base) and serves(two, base), 20, what="both replicas serve")
    reply = one.post(
        "/v1/changes",
        json={
            "base": base,
            "edits": [
                {"environment": "production", "service": "payments", "set": {"db.pool.max": 77}}
            ],
        },
    )
    assert reply.status_code == 201, reply.text
    sha = reply.json()["commit"]
    assert git(cluster.bare, "rev-parse", "main") == sha  # the remote is the truth
    # The replica that took it polls at once and tells the other one (no hook, no timer).
    wait_until(lambda: serves(one, sha) and serves(two, sha), 20, what="both serve the change")
    body = two.get("/v1/config/production/payments").json()
    assert body["db"]["pool"]["max"] == 77
