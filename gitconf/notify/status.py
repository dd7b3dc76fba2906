"""What notifications report in /v1/status: problems to fix, and the outbox in numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitconf.notify.targets import TargetRefused, check_url
from gitconf.signing import parse_secret

if TYPE_CHECKING:
    from gitconf.notify.notifier import Notifier

__all__ = ["problems", "section"]


def problems(notifier: Notifier) -> list[dict[str, Any]]:
    """What an operator must fix, for /v1/status."""
    out: list[dict[str, Any]] = []
    if notifier.store_error:
        out.append(
            _problem(
                "outbox_store",
                f"notifications: {notifier.store_error}; the revision is served, and its "
                "notifications are queued once the database accepts writes again",
            )
        )
    if notifier.worker.last_error:
        out.append(_problem("delivery_worker", f"notifications: {notifier.worker.last_error}"))
    if notifier.brokers is not None:
        out += notifier.brokers.problems()
    served = notifier.publisher.served
    for doc in served.subscriptions if served else ():
        where = f"{doc.get('source') or 'gitconf.yaml'}: subscription {doc['name']!r}"
        env = doc.get("secret_env")
        if not env:
            out.append(
                _problem(
                    "subscription_secret",
                    f"{where} has no secret_env: its deliveries cannot be signed and wait; "
                    "add secret_env naming a variable that holds a whsec_ secret",
                    doc["name"],
                )
            )
        elif not notifier.environ.get(env):
            out.append(
                _problem(
                    "subscription_secret",
                    f"{where}: secret_env {env!r} is not set in the server's environment; "
                    "its deliveries wait. Set it and restart gitconf serve",
                    doc["name"],
                )
            )
        else:
            try:
                parse_secret(notifier.environ[env])
            except ValueError as exc:
                out.append(
                    _problem(
                        "subscription_secret",
                        f"{where}: {env} is not a usable secret: {exc}",
                        doc["name"],
                    )
                )
        try:
            check_url(doc["url"], notifier.targets, resolve=False)
        except TargetRefused as exc:
            out.append(_problem("subscription_target", f"{where}: {exc}", doc["name"]))
    return out


def section(notifier: Notifier) -> dict[str, Any]:
    """The notifications section of /v1/status."""
    counts = notifier.worker.counts
    return {
        "worker_running": notifier.worker.running,
        "pending": counts.get("pending", 0),
        "delivered": counts.get("delivered", 0),
        "dead": counts.get("dead", 0),
        "gone": counts.get("gone", 0),
        "superseded": counts.get("superseded", 0),
        "store": {"ok": notifier.store_error is None, "error": notifier.store_error},
        "brokers": notifier.brokers.section() if notifier.brokers is not None else [],
        # The latest moves of the served revision (publish, rollback, pin, unpin), each
        # announced once under its sequence number.
        "moves": _moves(notifier),
    }


def _moves(notifier: Notifier) -> list[dict[str, Any]] | None:
    try:
        return notifier.outbox.moves(notifier.cursor_key, limit=5)
    except Exception:  # the store being down is in "store" and problems already
        return None


def _problem(code: str, message: str, subscription: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"source": "notifications", "code": code, "message": message}
    if subscription is not None:
        doc["subscription"] = subscription
    return doc
