"""Deliveries from a real Server to real receivers on 127.0.0.1, driven step by step.

Every delivery a receiver accepts is verified with the `standardwebhooks` library and
against the CloudEvents required attributes (tests/notify/receiver.py: verify).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from gitconf.bootstrap import Server
from gitconf.testing import MINIMAL_MANIFEST, commit_all, git
from gitconf.testing.server import wait_until
from tests.notify.conftest import (
    FAST,
    deliver_until,
    deliveries,
    notifier_of,
    publish,
    subscribe,
)
from tests.notify.receiver import DROP, Receiver, Reply, fail_first, verify

NEW_HOST = {"base/payments.yaml": "db:\n  host: db2.internal\n  port: 5432\n  pool: {max: 10}\n"}


def shards(n: int) -> dict[str, str | bytes | None]:
    return {"base/search.yaml": f"shards: [{', '.join(f's{i}' for i in range(n))}]\n"}


def test_a_change_reaches_each_matching_subscriber_signed(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    everything, production, staging_search = receivers(), receivers(), receivers()
    all_sub = subscribe(client, everything.url + "/all")
    prod_sub = subscribe(
        client, production.url, environments=["production*"], services=["payments"]
    )
    subscribe(client, staging_search.url, environments=["staging"], services=["search"])
    before = server.publisher.served.revision
    sha = publish(server, repo, NEW_HOST)

    deliver_until(
        server, lambda: len(everything.accepted()) == 3 and len(production.accepted()) == 2
    )
    assert staging_search.received == []
    events = [verify(r, all_sub["secret"]) for r in everything.accepted()]
    assert sorted(e["subject"] for e in events) == [
        "production-eu/payments",
        "production/payments",
        "staging/payments",
    ]
    assert {r.path for r in everything.accepted()} == {"/all"}
    prod_events = [verify(r, prod_sub["secret"]) for r in production.accepted()]
    assert sorted(e["subject"] for e in prod_events) == [
        "production-eu/payments",
        "production/payments",
    ]
    for event in events:
        assert event["type"] == "io.gitconf.config.changed"
        assert event["source"] == server.settings.base_url()
        data = event["data"]
        assert (data["revision"], data["previous_revision"]) == (sha, before)
        assert data["change"] == "changed"
        assert data["changed_keys"] == ["db.host"]
        assert "config" not in data
        # The event's ETag is the one the config is served with: a fetch with it is a 304.
        path = data["fetch_url"].removeprefix(server.settings.base_url())
        assert path == f"/v1/config/{data['environment']}/{data['service']}"
        fetched = client.get(path)
        assert fetched.headers["ETag"] == data["etag"]
        assert client.get(path, headers={"If-None-Match": data["etag"]}).status_code == 304

    # Nothing is delivered twice, and an unchanged revision queues nothing.
    assert notifier_of(server).worker.deliver_due() == 0
    assert server.poller.run_once(forced=True) == "unchanged"
    assert len(everything.received) == 3
    listed = deliveries(client, all_sub["id"])
    assert [d["state"] for d in listed] == ["delivered"] * 3
    assert all(len(d["attempts"]) == 1 and d["attempts"][0]["status_code"] == 204 for d in listed)


def test_a_failing_subscriber_is_retried_until_it_succeeds_then_left_alone(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    elsewhere = receivers()
    script = [
        Reply(500, {}, b"boom"),
        Reply(429, {"Retry-After": "0"}),
        DROP,
        Reply(302, {"Location": elsewhere.url + "/moved"}),
        Reply(503, {"Retry-After": "0"}),
    ]
    flaky = receivers(lambda i, _r: script[i] if i < len(script) else Reply(200, {}, b"ok"))
    sub = subscribe(client, flaky.url, environments=["staging"], services=["search"])
    publish(server, repo, shards(3))

    deliver_until(server, lambda: flaky.accepted())
    ids = {r.headers["webhook-id"] for r in flaky.received}
    assert len(flaky.received) == 6 and len(ids) == 1, "one event id on every attempt"
    assert elsewhere.received == [], "redirects are not followed"
    for attempt in flaky.received:
        verify(attempt, sub["secret"])
    (delivery,) = deliveries(client, sub["id"])
    assert delivery["id"] in ids
    assert (delivery["environment"], delivery["service"], delivery["state"]) == (
        "staging",
        "search",
        "delivered",
    )
    codes = [a["status_code"] for a in delivery["attempts"]]
    assert codes == [500, 429, None, 302, 503, 200]
    errors = [a["error"] for a in delivery["attempts"]]
    assert errors[:2] == ["HTTP 500", "HTTP 429"]
    assert errors[2].startswith("connection failed: ")
    assert (
        errors[3]
        == f"HTTP 302 redirect to {elsewhere.url + '/moved'!r} not followed; point the subscription at the final URL"
    )
    assert errors[5] is None
    assert all(a["latency_ms"] >= 0 and a["at"].endswith("Z") for a in delivery["attempts"])

    assert notifier_of(server).worker.deliver_due() == 0
    assert len(flaky.received) == 6, "nothing is delivered again after a success"
    metrics = client.get("/metrics").text
    assert 'gitconf_webhook_deliveries_total{outcome="retried"} 5.0' in metrics
    assert 'gitconf_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics


def test_retries_back_off(
    notify_server: Callable[..., Server], repo: Path, receivers: Callable[..., Receiver]
) -> None:
    server = notify_server(delivery={"first_backoff": 0.2, "max_backoff": 0.4})
    client = server.app.test_client()
    flaky = receivers(fail_first(3))
    subscribe(client, flaky.url, environments=["staging"], services=["search"])
    publish(server, repo, shards(3))
    deliver_until(server, lambda: flaky.accepted())
    sub_id = client.get("/v1/subscriptions").get_json()["subscriptions"][0]["id"]
    (delivery,) = deliveries(client, sub_id)
    times = [dt.datetime.fromisoformat(a["at"]) for a in delivery["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.15, gaps  # about 0.2 s (±20%)
    assert gaps[1] >= 0.3, gaps  # about 0.4 s: doubled, at max_backoff


def test_a_newer_revision_supersedes_an_undelivered_older_one(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    up = threading.Event()
    target = receivers(lambda _i, _r: Reply(204) if up.is_set() else Reply(500))
    sub = subscribe(client, target.url, environments=["staging"], services=["search"])
    first = publish(server, repo, shards(3))
    deliver_until(server, lambda: len(target.received) >= 1)
    second = publish(server, repo, shards(4))
    up.set()
    deliver_until(server, lambda: target.accepted())
    (accepted,) = target.accepted()
    event = verify(accepted, sub["secret"])
    assert (event["data"]["revision"], event["data"]["previous_revision"]) == (second, first)
    newer, older = deliveries(client, sub["id"])
    assert (newer["revision"], newer["state"]) == (second, "delivered")
    assert (older["revision"], older["state"], older["superseded_by"]) == (
        first,
        "superseded",
        second,
    )
    assert notifier_of(server).worker.deliver_due() == 0
    assert len(target.accepted()) == 1


def test_410_gone_disables_the_subscription(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    gone = receivers(lambda _i, _r: Reply(410))
    sub = subscribe(client, gone.url, services=["payments"])
    publish(server, repo, NEW_HOST)
    deliver_until(server, lambda: gone.received)
    assert notifier_of(server).worker.deliver_due() == 0
    assert len(gone.received) == 1
    shown = client.get(f"/v1/subscriptions/{sub['id']}").get_json()
    assert shown["disabled_at"] is not None
    assert "410 Gone" in shown["disabled_reason"]
    assert shown["deliveries"] == {
        "pending": 0,
        "delivered": 0,
        "dead": 0,
        "gone": 1,
        "superseded": 0,
        "cancelled": 2,
    }
    (ended,) = client.get(f"/v1/subscriptions/{sub['id']}/deliveries?state=gone").get_json()[
        "deliveries"
    ]
    assert (ended["state"], ended["last_status"], ended["next_attempt_at"]) == ("gone", 410, None)
    metrics = client.get("/metrics").text
    assert "gitconf_webhook_gone_deliveries 1.0" in metrics
    assert "gitconf_webhook_dead_deliveries 0.0" in metrics
    assert 'gitconf_webhook_deliveries_total{outcome="gone"} 1.0' in metrics
    notifications = client.get("/v1/status").get_json()["notifications"]
    assert (notifications["gone"], notifications["dead"]) == (1, 0)
    publish(server, repo, shards(5))
    assert client.get(f"/v1/subscriptions/{sub['id']}").get_json()["deliveries"]["pending"] == 0


def test_a_delivery_is_dead_after_max_age(
    notify_server: Callable[..., Server], repo: Path, receivers: Callable[..., Receiver]
) -> None:
    # Long enough for a retry even when one attempt takes 0.4 s on a loaded machine.
    server = notify_server(delivery={"max_age": 1.5})
    client = server.app.test_client()
    down = receivers(lambda _i, _r: Reply(500))
    sub = subscribe(client, down.url, environments=["staging"], services=["search"])
    publish(server, repo, shards(3))
    deliver_until(server, lambda: deliveries(client, sub["id"])[0]["state"] == "dead")
    (delivery,) = deliveries(client, sub["id"])
    assert len(delivery["attempts"]) >= 2
    assert delivery["next_attempt_at"] is None
    metrics = client.get("/metrics").text
    assert "gitconf_webhook_dead_deliveries 1.0" in metrics
    assert 'gitconf_webhook_deliveries_total{outcome="dead"} 1.0' in metrics
    assert client.get("/v1/status").get_json()["notifications"]["dead"] == 1


def test_include_config_and_rejected_revisions(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    target = receivers()
    sub = subscribe(
        client,
        target.url,
        environments=["staging"],
        services=["payments"],
        include_config=True,
        events=["io.gitconf.config.changed", "io.gitconf.revision.rejected"],
    )
    plain = receivers()
    subscribe(client, plain.url)  # changes only: never hears of a rejection
    good = publish(server, repo, NEW_HOST)
    deliver_until(server, lambda: target.accepted())
    event = verify(target.accepted()[0], sub["secret"])
    assert event["data"]["config"] == {
        "region": "us-east-1",
        "db": {"host": "db2.internal", "port": 5432, "pool": {"max": 10}},
    }
    plain_before = len(plain.received)

    bad = commit_all(repo, "break", {"base/payments.yaml": "db: {port: nope}\n"})
    assert server.poller.run_once() == "rejected"
    deliver_until(server, lambda: len(target.accepted()) == 2)
    rejected = verify(target.accepted()[1], sub["secret"])
    assert rejected["type"] == "io.gitconf.revision.rejected"
    assert rejected["subject"] == bad
    assert rejected["data"]["revision"] == bad
    assert rejected["data"]["served_revision"] == good
    assert any(
        "db.port: 'nope' is not of type 'integer'" in p for p in rejected["data"]["problems"]
    )
    assert len(plain.received) == plain_before


def test_subscriptions_declared_in_the_manifest(
    notify_server: Callable[..., Server], repo: Path, receivers: Callable[..., Receiver]
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    server = notify_server(environ={"PAY_HOOK_SECRET": secret})
    client = server.app.test_client()
    payments, orphan = receivers(), receivers()
    manifest = MINIMAL_MANIFEST + (
        "subscriptions:\n"
        "  - name: payments-prod\n"
        f"    url: {payments.url}/hooks/config\n"
        '    environments: ["production*"]\n'
        "    services: [payments]\n"
        "    secret_env: PAY_HOOK_SECRET\n"
        "  - name: orphan\n"
        f"    url: {orphan.url}\n"
        "    secret_env: ORPHAN_HOOK_SECRET\n"
    )
    publish(server, repo, {"gitconf.yaml": manifest})
    listed = {s["name"]: s for s in client.get("/v1/subscriptions").get_json()["subscriptions"]}
    assert listed["payments-prod"]["origin"] == "manifest"
    assert listed["payments-prod"]["secret_env"] == "PAY_HOOK_SECRET"
    assert listed["payments-prod"]["declared_at"].startswith("gitconf.yaml:")
    refused = client.delete(f"/v1/subscriptions/{listed['payments-prod']['id']}")
    assert refused.status_code == 409
    assert "declared in gitconf.yaml" in refused.get_json()["error"]["message"]

    status = client.get("/v1/status")
    assert status.status_code == 200
    problems = [
        p["message"] for p in status.get_json()["problems"] if p["source"] == "notifications"
    ]
    assert len(problems) == 1
    assert "subscription 'orphan': secret_env 'ORPHAN_HOOK_SECRET' is not set" in problems[0]
    assert problems[0].startswith("gitconf.yaml:")

    publish(server, repo, NEW_HOST)
    deliver_until(server, lambda: len(payments.accepted()) == 2)
    for received in payments.accepted():
        assert received.path == "/hooks/config"
        assert verify(received, secret)["data"]["environment"].startswith("production")
    assert orphan.received == [], "nothing unsigned is ever sent"
    waiting = deliveries(client, listed["orphan"]["id"])
    assert len(waiting) == 3 and {d["state"] for d in waiting} == {"pending"}
    tried = [a for d in waiting for a in d["attempts"]]
    assert tried and all("'ORPHAN_HOOK_SECRET' is not set" in a["error"] for a in tried)

    # Removed from the manifest: the subscription goes, and its waiting deliveries with it.
    publish(server, repo, {"gitconf.yaml": MINIMAL_MANIFEST})
    assert client.get("/v1/subscriptions").get_json()["subscriptions"] == []
    assert notifier_of(server).outbox.counts() == {"delivered": 2, "cancelled": 3}


def test_a_slow_subscriber_does_not_delay_the_others(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    release = threading.Event()
    slow = receivers(lambda i, _r: release if i == 0 else Reply(204))
    fast = receivers()
    subscribe(client, slow.url, environments=["staging"])
    subscribe(client, fast.url, environments=["staging"])
    notifier_of(server).worker.start()
    publish(server, repo, NEW_HOST)  # the poll wakes the worker: no explicit delivery here
    publish(server, repo, shards(3))
    wait_until(lambda: len(fast.accepted()) == 2, what="the fast subscriber's deliveries")
    assert slow.count == 1 and slow.accepted() == [], "the slow one is still on its first"
    release.set()
    wait_until(lambda: len(slow.accepted()) == 2, what="the slow subscriber's deliveries")


def test_the_status_counts_catch_up_within_a_second_of_the_last_delivery(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    target = receivers()
    subscribe(client, target.url, environments=["staging"])
    notifier_of(server).worker.start()
    for n in (3, 4, 5):  # deliveries well within a second of each other: counts throttled
        publish(server, repo, shards(n))
        wait_until(lambda n=n: len(target.accepted()) == n - 2, what=f"delivery {n - 2}")

    def counted() -> Any:
        return client.get("/v1/status").get_json()["notifications"]["delivered"] == 3

    # Not the 5 s of the safety-net tick: the counts are taken again once the throttle ends.
    wait_until(counted, timeout=2.5, what="/v1/status counting the 3 deliveries")


def test_a_locked_database_is_reported_and_nothing_is_lost(
    server: Server,
    repo: Path,
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = server.app.test_client()
    target = receivers()
    subscribe(client, target.url, environments=["staging"])
    outbox = notifier_of(server).outbox

    def locked(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("INSERT INTO deliveries ...", {}, Exception("database is locked"))

    monkeypatch.setattr(outbox, "enqueue", locked)
    sha = publish(server, repo, NEW_HOST)
    assert server.publisher.served.revision == sha, "the revision is published regardless"
    assert client.get("/v1/config/staging/payments").json["db"]["host"] == "db2.internal"
    status = client.get("/v1/status").get_json()
    assert status["notifications"]["store"]["ok"] is False
    (problem,) = [p for p in status["problems"] if p["code"] == "outbox_store"]
    assert "database is locked" in problem["message"]
    assert 'gitconf_outbox_errors_total{operation="enqueue"} 1.0' in client.get("/metrics").text

    second = publish(server, repo, shards(3))  # still locked: both change sets wait
    monkeypatch.undo()
    notifier_of(server).catch_up()  # the worker's safety-net tick does this
    deliver_until(server, lambda: len(target.accepted()) == 2)
    subjects = sorted(r.event["subject"] for r in target.accepted())
    assert subjects == ["staging/payments", "staging/search"]
    assert {r.event["data"]["revision"] for r in target.accepted()} == {second}
    assert client.get("/v1/status").get_json()["notifications"]["store"]["ok"] is True
    assert git(repo, "rev-parse", "HEAD") == second


def test_the_first_revision_is_a_baseline_and_a_restart_writes_a_missed_change_set(
    repo: Path,
    make_server: Callable[..., Server],
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_server(repo, delivery=FAST)
    target = receivers()
    sub = subscribe(first.app.test_client(), target.url, environments=["staging"])
    assert first.poller.run_once() == "published"
    assert notifier_of(first).outbox.counts() == {}, "nothing changed for a subscriber"

    monkeypatch.setattr(notifier_of(first).outbox, "enqueue", lambda *a, **k: 1 / 0)
    sha = publish(first, repo, NEW_HOST)  # the process dies before the outbox took it
    first.engine.dispose()

    again = make_server(repo, delivery=FAST)  # a restart: serves the persisted revision
    assert again.publisher.served.revision == sha
    notifier_of(again).catch_up()  # what start() does
    deliver_until(again, lambda: target.accepted())
    (event,) = [verify(r, sub["secret"]) for r in target.accepted()]
    assert event["subject"] == "staging/payments"
    assert event["data"]["revision"] == sha


def test_the_outbox_on_postgresql(
    pg_url: str,
    notify_server: Callable[..., Server],
    repo: Path,
    receivers: Callable[..., Receiver],
) -> None:
    server = notify_server(database_url=pg_url)
    client = server.app.test_client()
    target = receivers(fail_first(1))
    sub = subscribe(client, target.url, services=["payments"])
    first = publish(server, repo, NEW_HOST)
    # production-eu sets its own region: its payments config does not change again.
    second = publish(server, repo, NEW_HOST | {"base/_all.yaml": "region: eu\n"})
    deliver_until(server, lambda: len(target.accepted()) == 3)
    events = {verify(r, sub["secret"])["subject"]: r.event["data"] for r in target.accepted()}
    assert {k: v["revision"] for k, v in events.items()} == {
        "staging/payments": second,
        "production/payments": second,
        "production-eu/payments": first,
    }
    states = sorted(d["state"] for d in deliveries(client, sub["id"]))
    assert states == ["delivered"] * 3 + ["superseded"] * 2


def test_retry_after_holds_every_delivery_to_that_subscriber(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    busy = receivers(lambda i, _r: Reply(429, {"Retry-After": "1"}) if i == 0 else Reply(204))
    sub = subscribe(client, busy.url, services=["payments"])
    publish(server, repo, NEW_HOST)
    deliver_until(server, lambda: len(busy.accepted()) == 3)
    attempts = sorted(
        dt.datetime.fromisoformat(a["at"])
        for d in deliveries(client, sub["id"])
        for a in d["attempts"]
    )
    assert len(attempts) == 4
    assert all((later - attempts[0]).total_seconds() >= 0.95 for later in attempts[1:])


def test_retry_after_replaces_the_backoff_however_often_it_is_sent(
    notify_server: Callable[..., Server], repo: Path, receivers: Callable[..., Receiver]
) -> None:
    # Backoffs of 0.5, 1, 2, 4 s: a pause longer than asked is the backoff showing through.
    server = notify_server(delivery={"first_backoff": 0.5, "max_backoff": 600})
    client = server.app.test_client()
    busy = receivers(fail_first(4, Reply(429, {"Retry-After": "1"})))
    sub = subscribe(client, busy.url, environments=["staging"], services=["search"])
    publish(server, repo, shards(3))
    deliver_until(server, lambda: busy.accepted(), timeout=30)
    (delivery,) = deliveries(client, sub["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [429, 429, 429, 429, 204]
    times = [dt.datetime.fromisoformat(a["at"]) for a in delivery["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(0.95 <= gap < 2.0 for gap in gaps), gaps


def test_a_store_that_is_down_at_start_is_reported_not_fatal(
    tmp_path: Path, repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, database_url=f"sqlite:///{tmp_path / 'missing' / 'gitconf.db'}")
    assert server.poller.run_once() == "published", "publishing does not need the store"
    client = server.app.test_client()
    assert client.get("/v1/config/staging/payments").status_code == 200
    status = client.get("/v1/status").get_json()
    messages = [p["message"] for p in status["problems"] if p["source"] == "notifications"]
    assert any("unable to open database file" in m for m in messages), messages
    down = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"})
    assert down.status_code == 503
    assert down.get_json()["error"]["code"] == "store_unavailable"
    (tmp_path / "missing").mkdir()
    notifier = notifier_of(server)
    notifier.tick()  # the worker's safety net: the tables are made once the store is back
    assert notifier.store_error is None
    assert client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"}).status_code == 201


def test_an_event_the_subscriber_keeps_refusing_does_not_hold_back_the_others(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()

    def picky(_i: int, request: Any) -> Reply:
        return Reply(400) if b'"subject":"staging/payments"' in request.body else Reply(204)

    target = receivers(picky)
    sub = subscribe(client, target.url, environments=["staging"])
    publish(server, repo, NEW_HOST)  # staging/payments: queued first, refused every time
    publish(server, repo, shards(3))  # staging/search: queued behind it
    deliver_until(server, lambda: target.accepted())
    (accepted,) = target.accepted()
    assert accepted.event["subject"] == "staging/search"
    states = {d["service"]: d["state"] for d in deliveries(client, sub["id"])}
    assert states == {"payments": "pending", "search": "delivered"}
