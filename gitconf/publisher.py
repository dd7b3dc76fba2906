"""The Publisher: holds the served revision, swaps it whole, tells listeners, persists it.

A reader sees the old revision or the new one, never a mix. The revision is persisted off
the poll thread (gitconf.store.snapshots), retrying with backoff when the disk refuses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitconf.served import Explainer, ServedRevision, from_persisted
from gitconf.store.snapshots import SnapshotStore

__all__ = ["PersistStatus", "Publisher", "ServedListener"]

log = logging.getLogger(__name__)


class ServedListener(Protocol):
    """Something told when the served revision changes, and when the server stops."""

    def published(self, old: ServedRevision | None, new: ServedRevision) -> None:
        """new is served now instead of old (called on the publishing thread)."""

    def close(self) -> None:
        """The server is stopping: end what waits for a change."""


@dataclass
class PersistStatus:
    """How persisting the served revision went, for /v1/status, /readyz and /metrics."""

    persisted: str | None = None  # the revision on disk
    error: str | None = None
    failures: int = 0
    # Why the revision on disk at start was not served (damaged, unreadable), if it was not.
    load_error: str | None = None


class Publisher:
    """Holds the served revision; swaps it whole, tells waiting readers, then persists it.

    Until start() the write happens in publish's caller after the swap; between start() and
    stop() a writer thread does it, so publishing never waits for the disk.
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self.store = SnapshotStore(state_dir / "served.db") if state_dir is not None else None
        self.persist = PersistStatus()
        self._served: ServedRevision | None = None
        self._changed = threading.Condition()
        self._generation = 0
        self._closing = False
        self._writer: _Writer | None = None
        # Told of each swap, on the publishing thread, and of close_waiters (long polls and
        # streams on the event loop: gitconf.server.waits, gitconf.server.watch).
        self.listeners: list[ServedListener] = []

    @property
    def served(self) -> ServedRevision | None:
        """The revision being served (a reader keeps the object it got: old or new, whole)."""
        return self._served

    def publish(self, served: ServedRevision, *, persist: bool = True) -> ServedRevision:
        """Serve served from now on, then persist it so a restart serves it too.

        Readers see the new revision before it is on disk. A crash in between leaves the
        previously persisted revision, which was published, so good, too: a restart serves it
        at once and its first poll catches up.
        """
        with self._changed:
            previous, self._served = self._served, served
            self._generation += 1
            self._changed.notify_all()
        for listener in self.listeners:
            try:
                listener.published(previous, served)
            except Exception:
                log.exception("a listener of the served revision failed")
        if persist and self.store is not None:
            writer = self._writer
            if writer is not None:
                writer.submit(served)
            else:
                self._persist(served)
        return served

    def _persist(self, served: ServedRevision) -> None:
        """Write served to disk; on failure record why (and raise, for the writer to retry)."""
        assert self.store is not None
        try:
            self.store.write(
                revision=served.revision,
                published_at=served.published_at,
                environments=served.environments,
                services=served.services,
                subscriptions=served.subscriptions,
                etags=served.etags(),
                body_of={b.etag: b.data for b in served.json.values()},
                redacted=served.redacted,
                pinned=served.pinned,
            )
        except Exception as exc:
            self.persist.failures += 1
            self.persist.error = (
                f"cannot persist revision {served.revision[:12]} to {self.store.path}: {exc}; "
                "it is served from memory, and a restart would serve "
                + (
                    f"the older {self.persist.persisted[:12]}"
                    if self.persist.persisted
                    else "nothing"
                )
                + " until this succeeds (retrying)"
            )
            log.error("%s", self.persist.error)
            raise
        if self.persist.error:
            log.info(
                "persisted revision %s again after %d failure(s)",
                served.revision[:12],
                self.persist.failures,
            )
        self.persist.persisted = served.revision
        self.persist.error = None

    @property
    def persist_behind(self) -> bool:
        """Whether the revision on disk is not the served one."""
        served = self._served
        return (
            served is not None
            and self.store is not None
            and self.persist.persisted != served.revision
        )

    def start(self) -> None:
        """Persist in a writer thread from now on (the latest revision wins)."""
        if self._writer is None and self.store is not None:
            self._writer = _Writer(self._persist)
            served = self._served
            if served is not None and self.persist.persisted != served.revision:
                self._writer.submit(served)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the last published revision is on disk (or failed); False on timeout."""
        writer = self._writer
        return writer.flush(timeout) if writer is not None else True

    def stop(self) -> None:
        """Write what is pending and end the writer thread; later publishes write in place."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
        if self.store is not None:
            self.store.close()

    def load_persisted(self, explainer: Explainer | None = None) -> ServedRevision | None:
        """Serve the revision persisted by an earlier run, if there is a sound one.

        DamagedSnapshot if it cannot be trusted (nothing is served from it then).
        """
        if self.store is None:
            return None
        assert self.state_dir is not None
        _remove_leftovers(self.state_dir)
        persisted = self.store.load()
        if persisted is None:
            return None
        self.persist.persisted = persisted.revision
        return self.publish(from_persisted(persisted, explainer), persist=False)

    def wait_for_change(self, generation: int, timeout: float) -> int:
        """Block until a publish after generation, or timeout, or close_waiters(); return the
        current generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation or self._closing, timeout)
            return self._generation

    def close_waiters(self) -> None:
        """End every wait_for_change now and from now on: the server is stopping."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        for listener in self.listeners:
            listener.close()

    @property
    def closing(self) -> bool:
        """Whether close_waiters() was called."""
        return self._closing

    @property
    def generation(self) -> int:
        """How many revisions were published by this process."""
        return self._generation


def _remove_leftovers(state_dir: Path) -> None:
    """Files of the snapshot format before served.db, and temporary files a crash left."""
    for path in state_dir.glob(".served.json.*"):
        path.unlink(missing_ok=True)
    legacy = state_dir / "served.json"
    if legacy.exists():
        log.info("removing %s: revisions are persisted in served.db now", legacy)
        legacy.unlink(missing_ok=True)


class _Writer:
    """A thread that persists the latest revision submitted; ones it had no time for are
    skipped, and a failed write is retried with backoff until a newer one replaces it."""

    RETRY_FIRST = 1.0
    RETRY_MAX = 60.0

    def __init__(self, write: Callable[[ServedRevision], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending: ServedRevision | None = None
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="gitconf-persist", daemon=True)
        self._thread.start()

    def submit(self, served: ServedRevision) -> None:
        """Write served soon, instead of any older one still waiting."""
        with self._cond:
            self._pending = served
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or being written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def stop(self) -> None:
        """Write what is pending (one try), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        delay = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                served, self._pending = self._pending, None
                if served is None:
                    return
                self._busy = True
            try:
                self._write(served)
                delay = 0.0
            except Exception:
                with self._cond:
                    if self._pending is None:
                        self._pending = served  # nothing newer: try this one again
                    self._busy = False
                    self._cond.notify_all()
                    if self._stopping:
                        return
                    delay = min(delay * 2, self.RETRY_MAX) if delay else self.RETRY_FIRST
                    self._cond.wait_for(lambda: self._stopping, delay)
                continue
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
