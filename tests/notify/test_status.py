"""What notifications report in /v1/status: a problem per subscription an operator must fix.

The `secret_env ... is not set` problem is in test_delivery.py, with the deliveries it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitconf.bootstrap import Server
from gitconf.testing import MINIMAL_MANIFEST
from tests.notify.conftest import deliver_until, publish, subscribe
from tests.notify.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_subscriptions_that_cannot_be_delivered_are_problems_at_their_line(
    notify_server: Callable[..., Server], repo: Path
) -> None:
    server = notify_server(environ={"GOOD_SECRET": SECRET, "WEAK_SECRET": "hunter2"})
    manifest = MINIMAL_MANIFEST + (
        "subscriptions:\n"
        "  - {name: good, url: 'http://127.0.0.1:9/hooks', secret_env: GOOD_SECRET}\n"
        "  - {name: unsigned, url: 'http://127.0.0.1:9/hooks'}\n"
        "  - {name: weak, url: 'http://127.0.0.1:9/hooks', secret_env: WEAK_SECRET}\n"
        "  - {name: metadata, url: 'http://169.254.169.254/latest', secret_env: GOOD_SECRET}\n"
    )
    publish(server, repo, {"gitconf.yaml": manifest})
    status = server.app.test_client().get("/v1/status").get_json()
    assert [p for p in status["problems"] if p["source"] == "notifications"] == [
        {
            "source": "notifications",
            "code": "subscription_secret",
            "message": "gitconf.yaml:10:5: subscription 'unsigned' has no secret_env: its "
            "deliveries cannot be signed and wait; add secret_env naming a variable that holds "
            "a whsec_ secret",
            "subscription": "unsigned",
        },
        {
            "source": "notifications",
            "code": "subscription_secret",
            "message": "gitconf.yaml:11:5: subscription 'weak': WEAK_SECRET is not a usable "
            "secret: a secret starts with 'whsec_' followed by base64",
            "subscription": "weak",
        },
        {
            "source": "notifications",
            "code": "subscription_target",
            "message": "gitconf.yaml:12:5: subscription 'metadata': address 169.254.169.254 is "
            "refused: link-local (169.254.0.0/16)",
            "subscription": "metadata",
        },
    ]


def test_the_notifications_section_counts_the_outbox(
    server: Server, repo: Path, receivers: Callable[..., Receiver]
) -> None:
    client = server.app.test_client()
    receiver = receivers()
    subscribe(client, receiver.url, environments=["staging"], services=["payments"])
    publish(server, repo, {"base/payments.yaml": "db: {host: db2.internal, port: 5432}\n"})
    deliver_until(server, lambda: len(receiver.accepted()) == 1)
    section = client.get("/v1/status").get_json()["notifications"]
    moves = section.pop("moves")
    assert [m["kind"] for m in moves] == ["publish", "baseline"]
    assert section == {
        "worker_running": False,  # the test runs the worker in its own thread
        "pending": 0,
        "delivered": 1,
        "dead": 0,
        "gone": 0,
        "superseded": 0,
        "store": {"ok": True, "error": None},
        "brokers": [],
    }
