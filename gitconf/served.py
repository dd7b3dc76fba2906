"""The served revision: response bodies and ETags prepared at publish time, swapped atomically.

A ServedRevision holds the bytes the read path returns: the JSON body of every config
(shared by every revision and config that has the same bytes), made by the compile worker.
Other formats and documents (YAML, env lines, a whole environment) are made from those bytes
on first request; explain documents come from the worker, which holds the provenance. No parse
tree and no compile cache lives in the serving process.

The Publisher swaps the whole revision (a reader sees old or new, never a mix), wakes waiting
readers, and persists it off the poll thread (gitconf.store.snapshots), retrying with backoff
when the disk refuses.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gitconf.core.render import etag_of, render
from gitconf.store.snapshots import DamagedSnapshot, PersistedRevision, SnapshotStore
from gitconf.worker.messages import Built

__all__ = [
    "Body",
    "DamagedSnapshot",
    "PersistStatus",
    "Publisher",
    "ServedRevision",
    "from_built",
    "from_persisted",
    "make_body",
]

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "env": "text/plain; charset=utf-8",
}
# Bodies made on request (YAML, env, explain, whole environments) kept per revision; past
# this, each is made anew per request instead of growing the process.
LAZY_BYTES = 64 * 1024 * 1024
ConfigKey = tuple[str, str]
Explainer = Callable[[str, str, str], bytes | None]


@dataclass(frozen=True, slots=True)
class Body:
    """One prepared response: bytes, strong ETag and content type."""

    data: bytes
    etag: str
    content_type: str


def make_body(data: bytes, fmt: str) -> Body:
    """A Body whose ETag is a hash of its bytes, so equal bytes keep equal ETags."""
    return Body(data, etag_of(data), CONTENT_TYPES[fmt])


@dataclass
class ServedRevision:
    """The bytes of one revision, by (environment, service) and format."""

    revision: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    json: dict[ConfigKey, Body]
    published_at: str = ""
    # The manifest's webhook subscribers, as plain dicts.
    subscriptions: tuple[dict[str, Any], ...] = ()
    # The revision `changed` is relative to, and the changed key paths of each config whose
    # body differs from base's (None: not known, as for a revision loaded from disk).
    base: str | None = None
    changed: dict[ConfigKey, tuple[str, ...]] = field(default_factory=dict)
    explainer: Explainer | None = field(default=None, repr=False, compare=False)
    _lazy: dict[tuple[str, str, str], Body] = field(default_factory=dict, repr=False)
    _lazy_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def has(self, env: str, service: str) -> bool:
        """Whether the revision has a config for (env, service)."""
        return (env, service) in self.json

    def value(self, env: str, service: str) -> Any:
        """One config as plain values (decoded from its served JSON)."""
        return json.loads(self.json[(env, service)].data)

    def body(self, env: str, service: str, fmt: str = "json") -> Body | None:
        """The prepared body of one config in a format, or None if there is no such config."""
        if fmt == "json":
            return self.json.get((env, service))
        key = (env, service, fmt)
        body = self._lazy.get(key)
        if body is None:
            if (env, service) not in self.json:
                return None
            body = self._make(key, lambda: render(self.value(env, service), fmt), fmt)
        return body

    def environment_body(self, env: str, fmt: str = "json") -> Body | None:
        """Every service of an environment in one document."""
        if env not in self.environments:
            return None
        key = (env, "", fmt)
        body = self._lazy.get(key)
        if body is None:

            def build() -> bytes:
                doc = {
                    "environment": env,
                    "revision": self.revision,
                    "services": {
                        svc: self.value(env, svc) for svc in self.services if self.has(env, svc)
                    },
                }
                return render(doc, fmt)

            body = self._make(key, build, fmt)
        return body

    def explain_body(self, env: str, service: str) -> Body | None:
        """The provenance of every leaf of one config, as JSON (from the compile worker)."""
        if (env, service) not in self.json or self.explainer is None:
            return None
        key = (env, service, "explain")
        body = self._lazy.get(key)
        if body is None:
            explainer = self.explainer

            def build() -> bytes:
                data = explainer(self.revision, env, service)
                if data is None:
                    raise LookupError(
                        f"the compile worker has no {env}/{service} of {self.revision}"
                    )
                return data

            body = self._make(key, build, "json")
        return body

    def _make(self, key: tuple[str, str, str], build: Callable[[], bytes], fmt: str) -> Body:
        with self._lock:
            body = self._lazy.get(key)
            if body is not None:
                return body
        body = make_body(build(), fmt)
        with self._lock:
            if self._lazy_bytes + len(body.data) <= LAZY_BYTES:
                body = self._lazy.setdefault(key, body)
                self._lazy_bytes += len(body.data)
        return body

    def etags(self) -> dict[ConfigKey, str]:
        """Every config's ETag."""
        return {key: body.etag for key, body in self.json.items()}

    def size(self) -> int:
        """The bytes of its distinct JSON bodies."""
        return sum(len(b.data) for b in {id(b): b for b in self.json.values()}.values())


def _bodies_by_etag(revisions: Iterable[ServedRevision | None]) -> dict[str, Body]:
    shared: dict[str, Body] = {}
    for revision in revisions:
        if revision is not None:
            for body in revision.json.values():
                shared.setdefault(body.etag, body)
    return shared


def from_built(
    built: Built,
    previous: ServedRevision | None,
    *,
    published_at: str = "",
    explainer: Explainer | None = None,
) -> ServedRevision | None:
    """The served form of a revision the worker built; None if a body it did not send is not
    previous's either (the worker's idea of what is served was wrong: ask for every body)."""
    shared = _bodies_by_etag([previous]) if built.bodies.keys() != built.etags.values() else {}
    bodies: dict[ConfigKey, Body] = {}
    for key, etag in built.etags.items():
        body = shared.get(etag)
        if body is None:
            data = built.bodies.get(etag)
            if data is None:
                return None
            body = shared[etag] = Body(data, etag, CONTENT_TYPES["json"])
        bodies[key] = body
    based = previous is not None and built.base == previous.revision
    return ServedRevision(
        revision=built.sha,
        environments=built.environments,
        services=built.services,
        json=bodies,
        published_at=published_at,
        subscriptions=built.subscriptions,
        base=built.base if based else None,
        changed=built.changed if based else {},
        explainer=explainer,
    )


def from_persisted(
    persisted: PersistedRevision, explainer: Explainer | None = None
) -> ServedRevision:
    """The served form of a revision read from disk."""
    shared: dict[str, Body] = {}
    bodies = {}
    for key, etag in persisted.etags.items():
        body = shared.get(etag)
        if body is None:
            body = shared[etag] = Body(persisted.bodies[etag], etag, CONTENT_TYPES["json"])
        bodies[key] = body
    return ServedRevision(
        revision=persisted.revision,
        environments=persisted.environments,
        services=persisted.services,
        json=bodies,
        published_at=persisted.published_at,
        subscriptions=persisted.subscriptions,
        explainer=explainer,
    )


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
