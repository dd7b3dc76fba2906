"""Several replicas on one PostgreSQL: heartbeats, and a push to one makes every one poll.

Each replica keeps a heartbeat row (its id, host, served revision), so /v1/status lists the
live replicas and an operator sees one stuck on an old revision. A poll request (a push
webhook) on one replica is broadcast with PostgreSQL NOTIFY; every replica LISTENs and polls
at once. The periodic poll stays the safety net, and nothing here is on the read path: with
PostgreSQL down, reads and publishing go on from memory.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from gitconf.clock import aware, utcnow
from gitconf.feature import Feature
from gitconf.store.heartbeats import CHANNEL, Heartbeats

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["Replica", "feature"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
LIVE_SECONDS = 30.0


class Replica:
    """This process as one replica among several sharing the store."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.engine = parts.engine
        self.heartbeats = Heartbeats(parts.engine)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = utcnow()
        self.listening = self.engine.dialect.name == "postgresql"
        self.error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.live = Gauge(
            "gitconf_replicas_live",
            "Replicas with a recent heartbeat in the shared store.",
            registry=parts.metrics.registry,
        )
        self.store_up = Gauge(
            "gitconf_store_up",
            "1 if the last heartbeat reached the store.",
            registry=parts.metrics.registry,
        )

    # -- heartbeat ---------------------------------------------------------------------------
    def beat(self) -> None:
        """Write this replica's heartbeat row; record an outage instead of raising."""
        if not self.parts.schema.ensure():
            self.error = self.parts.schema.error
            self.store_up.set(0)
            return
        served = self.parts.publisher.served
        row = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "listen": self.parts.settings.listen,
            "revision": served.revision if served else None,
            "heartbeat_at": utcnow(),
        }
        try:
            live = self.heartbeats.beat(self.id, row, self.started_at, LIVE_SECONDS)
            self.live.set(live)
            self.store_up.set(1)
            if self.error:
                log.info("the store is reachable again")
            self.error = None
        except Exception as exc:
            self.store_up.set(0)
            self.error = f"store unreachable: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
            log.warning("heartbeat failed: %s", self.error)

    def status(self) -> dict[str, Any]:
        """The replicas section of /v1/status."""
        doc: dict[str, Any] = {"self": self.id, "store_error": self.error, "replicas": []}
        try:
            rows = self.heartbeats.all()
        except Exception as exc:
            doc["store_error"] = f"store unreachable: {str(exc).splitlines()[0]}"
            return doc
        now = utcnow()
        served = self.parts.publisher.served
        live = 0
        for row in rows:
            age = (now - aware(row["heartbeat_at"])).total_seconds()
            if age > LIVE_SECONDS:
                continue
            live += 1
            doc["replicas"].append(
                {
                    "id": row["id"],
                    "host": row["host"],
                    "pid": row["pid"],
                    "listen": row["listen"],
                    "revision": row["revision"],
                    "behind": bool(served and row["revision"] != served.revision),
                    "heartbeat_age_seconds": round(age, 1),
                }
            )
        self.live.set(live)
        return doc

    # -- broadcast ---------------------------------------------------------------------------
    def broadcast(self) -> None:
        """Tell every replica to poll now (NOTIFY); a failure leaves them to their schedule."""
        if not self.listening:
            return
        try:
            self.heartbeats.notify(self.id)
        except Exception as exc:
            log.warning("cannot broadcast a poll request: %s", exc)

    def _listen(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.payload != self.id:
                                self.parts.poller.request(broadcast=False)
            except Exception as exc:
                log.warning("LISTEN %s failed (%s); retrying in %.1fs", CHANNEL, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _heartbeats(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(HEARTBEAT_SECONDS)

    def start(self) -> None:
        """Start the heartbeat and, on PostgreSQL, the listener."""
        targets = [self._heartbeats] + ([self._listen] if self.listening else [])
        for target in targets:
            thread = threading.Thread(target=target, name=f"gitconf-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads and remove this replica's row."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        try:
            self.heartbeats.remove(self.id)
        except Exception:
            log.warning("could not remove the heartbeat row of %s", self.id)


def feature(parts: Parts) -> tuple[Feature, Replica]:
    """Heartbeats, the poll broadcast and the replicas section of /v1/status."""
    replica = Replica(parts)
    parts.poller.on_request.append(replica.broadcast)
    parts.poll.on_published.append(lambda _old, _new: replica.beat())
    return Feature(
        "replicas", status=replica.status, start=replica.start, stop=replica.stop
    ), replica
