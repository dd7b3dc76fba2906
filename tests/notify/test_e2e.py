"""A real `gitconf serve` process: subscriptions over HTTP, and kill -9 at bad moments."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitconf.testing import MINIMAL_MANIFEST, commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.notify.receiver import Received, Receiver, Reply, verify

SETTINGS = "delivery: {timeout: 5, first_backoff: 0.05, max_backoff: 0.2}\n"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def serve(repo: Path, tmp_path: Path, **env: str) -> ServeProcess:
    config = tmp_path / "server.yaml"
    config.write_text(SETTINGS)
    return ServeProcess(repo, tmp_path / "state", config=config, env=env)


def deliveries(server: ServeProcess, sub_id: str) -> list[dict[str, Any]]:
    response = server.get(f"/v1/subscriptions/{sub_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def test_subscribe_over_http_and_receive_a_signed_event(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    target = receivers()
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with serve(repo, tmp_path) as server:
        created = server.post(
            "/v1/subscriptions",
            json={"url": target.url, "environments": ["production*"], "services": ["payments"]},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        sha = commit_all(
            repo, "pool", {"environments/production/payments.yaml": "db: {pool: {max: 60}}\n"}
        )
        wait_until(lambda: len(target.accepted()) == 2, what="two deliveries")
        events = sorted((verify(r, secret) for r in target.accepted()), key=lambda e: e["subject"])
        assert [e["subject"] for e in events] == ["production-eu/payments", "production/payments"]
        data = events[1]["data"]
        assert (data["revision"], data["changed_keys"]) == (sha, ["db.pool.max"])
        # What a subscriber does next: fetch with the ETag it was told, then with its own.
        fetched = server.get(data["fetch_url"].removeprefix(server.url))
        assert fetched.json()["db"]["pool"]["max"] == 60
        assert fetched.headers["ETag"] == data["etag"]
        again = server.get(
            data["fetch_url"].removeprefix(server.url), headers={"If-None-Match": data["etag"]}
        )
        assert again.status_code == 304
        status = server.get("/v1/status").json()
        assert status["notifications"]["worker_running"] is True
        assert server.stop() == 0


def test_kill_9_with_a_delivery_queued_and_in_flight_loses_nothing(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    mode = {"now": "fail"}
    hung = threading.Event()

    def respond(_i: int, _request: Received) -> Reply | threading.Event:
        if mode["now"] == "fail":
            return Reply(500)
        if mode["now"] == "hang":
            return hung
        return Reply(204)

    target = receivers(respond)
    manifest = MINIMAL_MANIFEST + (
        "subscriptions:\n"
        "  - name: search-staging\n"
        f"    url: {target.url}/hook\n"
        "    environments: [staging]\n"
        "    services: [search]\n"
        "    secret_env: SEARCH_HOOK_SECRET\n"
    )
    repo = make_repo(tmp_path / "config", {**BASE_FILES, "gitconf.yaml": manifest})
    sub_id = "git_search-staging"

    # 1. The subscriber fails; the delivery is queued with failed attempts; kill -9.
    server = serve(repo, tmp_path, SEARCH_HOOK_SECRET=SECRET).start()
    sha = commit_all(repo, "shards", {"base/search.yaml": "shards: [s1, s2, s3]\n"})
    wait_until(lambda: len(target.received) >= 2, what="failed attempts")
    assert deliveries(server, sub_id)[0]["attempts"], "attempts are recorded"
    server.kill()
    wait_until(lambda: len(target.received) == target.count, what="the receiver to settle")

    # 2. Restarted, it resumes at once; kill -9 while an attempt is in flight.
    mode["now"] = "hang"
    before = target.count  # requests that arrived, answered or not
    server = serve(repo, tmp_path, SEARCH_HOOK_SECRET=SECRET).start()
    wait_until(lambda: target.count > before, what="an attempt in flight")
    server.kill()

    # 3. Restarted again: the delivery the killed process held is delivered.
    mode["now"] = "ok"
    with serve(repo, tmp_path, SEARCH_HOOK_SECRET=SECRET) as server:
        wait_until(lambda: target.accepted(), what="the delivery after the restart")
        (accepted,) = target.accepted()
        event = verify(accepted, SECRET)
        assert event["subject"] == "staging/search"
        assert event["data"]["revision"] == sha
        ids = {r.headers["webhook-id"] for r in target.received}
        assert ids == {event["id"]}, "the same event id on every attempt, across restarts"
        # The receiver records a request before it answers: wait for the server to record it.
        delivery = wait_until(
            lambda: (d := deliveries(server, sub_id)[0])["state"] == "delivered" and d,
            what="the delivery recorded as delivered",
        )
        assert len(deliveries(server, sub_id)) == 1
        codes = [a["status_code"] for a in delivery["attempts"]]
        assert codes[-1] == 204 and set(codes[:-1]) == {500}
        assert server.stop() == 0
    hung.set()  # the attempt the kill cut off ends; its answer goes to a dead process
    wait_until(lambda: len(target.received) == target.count, what="the cut-off attempt to end")
    assert {r.headers["webhook-id"] for r in target.received} == {event["id"]}
