"""The served revision: response bodies and ETags prepared at publish time, swapped atomically.

A Snapshot is the plain, persistable form of a compiled revision (values and provenance). A
ServedRevision holds the bytes the read path returns; building one from a Snapshot is the
only work publish does for reads, so a request is a dictionary lookup.

Publishing is incremental: the compile cache hands back the very same Config object for an
(environment, service) whose inputs did not change, so a snapshot reuses the previous one's
plain value, explain and persisted bytes for it, and prepare reuses its body. A commit that
changes one file re-encodes only the configs that file is a layer of.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitconf.core.explain import explain_config
from gitconf.core.model import CompiledRevision, Config, Manifest
from gitconf.core.render import render, to_json

__all__ = ["Body", "Publisher", "ServedRevision", "Snapshot", "prepare", "snapshot_of"]

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "env": "text/plain; charset=utf-8",
}
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Body:
    """One prepared response: bytes, strong ETag and content type."""

    data: bytes
    etag: str
    content_type: str


def make_body(data: bytes, fmt: str) -> Body:
    """A Body whose ETag is a hash of its bytes, so equal bytes keep equal ETags."""
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return Body(data, f'"{digest}"', CONTENT_TYPES[fmt])


@dataclass(frozen=True)
class Snapshot:
    """A compiled revision in plain values: what is persisted and served."""

    revision: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    values: dict[tuple[str, str], Any]
    explain: dict[tuple[str, str], list[dict[str, Any]]]
    layers: dict[tuple[str, str], list[str]]
    published_at: str = ""
    # The manifest's webhook subscribers, as plain dicts (see subscription_docs).
    subscriptions: tuple[dict[str, Any], ...] = ()
    # The compiled Configs the entries were made from (empty for a snapshot read from disk):
    # the next snapshot reuses an entry whose Config is the very same object.
    configs: Mapping[tuple[str, str], Config] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Each config's persisted JSON, encoded once and shared by later snapshots that reuse it.
    _encoded: dict[tuple[str, str], bytes] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> bytes:
        """The persisted form."""
        return b"".join(self.json_chunks())

    def json_chunks(self) -> Iterator[bytes]:
        """The persisted form in pieces, to write without building it whole."""
        # The same bytes as json.dumps of the whole document, but each config's part is encoded
        # once per Config and reused, so persisting after a one-file commit encodes a few.
        head = _dumps(
            {
                "version": SNAPSHOT_VERSION,
                "revision": self.revision,
                "published_at": self.published_at,
                "environments": list(self.environments),
                "services": list(self.services),
            }
        )
        yield head[:-1] + b',"configs":['
        for index, key in enumerate(self.values):
            if index:
                yield b","
            yield self._encoded_config(key)
        yield b'],"subscriptions":' + _dumps(list(self.subscriptions)) + b"}"

    def _encoded_config(self, key: tuple[str, str]) -> bytes:
        data = self._encoded.get(key)
        if data is None:
            env, svc = key
            data = self._encoded[key] = _dumps(
                {
                    "environment": env,
                    "service": svc,
                    "value": self.values[key],
                    "explain": self.explain[key],
                    "layers": self.layers[key],
                }
            )
        return data

    @classmethod
    def from_json(cls, data: bytes) -> Snapshot:
        """Read a persisted snapshot; ValueError if it is not one."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
            raise ValueError("not a gitconf snapshot of a known version")
        configs = doc["configs"]
        return cls(
            revision=doc["revision"],
            environments=tuple(doc["environments"]),
            services=tuple(doc["services"]),
            values={(c["environment"], c["service"]): c["value"] for c in configs},
            explain={(c["environment"], c["service"]): c["explain"] for c in configs},
            layers={(c["environment"], c["service"]): c["layers"] for c in configs},
            published_at=doc.get("published_at", ""),
            subscriptions=tuple(doc.get("subscriptions", ())),
        )


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def snapshot_of(
    sha: str,
    revision: CompiledRevision,
    published_at: str = "",
    previous: Snapshot | None = None,
) -> Snapshot:
    """The snapshot of a compiled revision at commit sha.

    With previous, every config whose Config object is the one previous was made from keeps
    previous's value, explain, layers and encoded bytes (the compile cache returns the same
    object only when the config's inputs are unchanged); the others are computed.
    """
    values: dict[tuple[str, str], Any] = {}
    explain: dict[tuple[str, str], list[dict[str, Any]]] = {}
    layers: dict[tuple[str, str], list[str]] = {}
    encoded: dict[tuple[str, str], bytes] = {}
    before = previous.configs if previous is not None else {}
    for key, config in revision.configs.items():
        if previous is not None and before.get(key) is config:
            values[key] = previous.values[key]
            explain[key] = previous.explain[key]
            layers[key] = previous.layers[key]
            # .get, not iteration: the persist thread may be filling previous's bytes now.
            data = previous._encoded.get(key)
            if data is not None:
                encoded[key] = data
        else:
            values[key] = config.value
            explain[key] = explain_config(config)
            layers[key] = list(config.layers)
    return Snapshot(
        revision=sha,
        environments=revision.environments,
        services=revision.services,
        values=values,
        explain=explain,
        layers=layers,
        published_at=published_at,
        subscriptions=subscription_docs(revision.manifest),
        configs=revision.configs,
        _encoded=encoded,
    )


def subscription_docs(manifest: Manifest) -> tuple[dict[str, Any], ...]:
    """The manifest's subscriptions as plain, persistable dicts."""
    return tuple(
        {
            "name": spec.name,
            "url": spec.url,
            "environments": list(spec.environments),
            "services": list(spec.services),
            "secret_env": spec.secret_env,
            "events": list(spec.events),
            "include_config": spec.include_config,
            "source": str(spec.source),
        }
        for spec in manifest.subscriptions
    )


@dataclass
class ServedRevision:
    """The bytes of one revision, by (environment, service) and format.

    JSON bodies are made at publish time; YAML, env, explain and whole-environment bodies on
    first request (each made once per revision).
    """

    snapshot: Snapshot
    json: dict[tuple[str, str], Body]
    _lazy: dict[tuple[str, str, str], Body] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def revision(self) -> str:
        """The commit sha."""
        return self.snapshot.revision

    def body(self, env: str, service: str, fmt: str = "json") -> Body | None:
        """The prepared body of one config in a format, or None if there is no such config."""
        if fmt == "json":
            return self.json.get((env, service))
        key = (env, service, fmt)
        body = self._lazy.get(key)
        if body is None:
            if (env, service) not in self.snapshot.values:
                return None
            body = self._make(key, lambda: render(self.snapshot.values[(env, service)], fmt), fmt)
        return body

    def environment_body(self, env: str, fmt: str = "json") -> Body | None:
        """Every service of an environment in one document."""
        if env not in self.snapshot.environments:
            return None
        key = (env, "", fmt)
        body = self._lazy.get(key)
        if body is None:

            def build() -> bytes:
                doc = {
                    "environment": env,
                    "revision": self.revision,
                    "services": {
                        svc: self.snapshot.values[(env, svc)]
                        for svc in self.snapshot.services
                        if (env, svc) in self.snapshot.values
                    },
                }
                return render(doc, fmt)

            body = self._make(key, build, fmt)
        return body

    def explain_body(self, env: str, service: str) -> Body | None:
        """The provenance of every leaf of one config, as JSON."""
        if (env, service) not in self.snapshot.values:
            return None
        key = (env, service, "explain")
        body = self._lazy.get(key)
        if body is None:

            def build() -> bytes:
                return to_json(
                    {
                        "environment": env,
                        "service": service,
                        "revision": self.revision,
                        "layers": self.snapshot.layers[(env, service)],
                        "leaves": self.snapshot.explain[(env, service)],
                    }
                )

            body = self._make(key, build, "json")
        return body

    def _make(self, key: tuple[str, str, str], build: Callable[[], bytes], fmt: str) -> Body:
        with self._lock:
            body = self._lazy.get(key)
            if body is None:
                body = self._lazy[key] = make_body(build(), fmt)
            return body


def prepare(snapshot: Snapshot, previous: ServedRevision | None = None) -> ServedRevision:
    """Prepare the JSON bodies of a snapshot, sharing bytes with equal bodies already served.

    A config whose value is the very object previous was prepared from (snapshot_of reuses
    it for an unchanged config) keeps previous's body without being encoded again.
    """
    before = previous.snapshot.values if previous is not None else {}
    shared: dict[str, Body] | None = None
    bodies: dict[tuple[str, str], Body] = {}
    for key, value in snapshot.values.items():
        if previous is not None and before.get(key) is value:
            bodies[key] = previous.json[key]
            continue
        if shared is None:
            shared = {}
            if previous is not None:
                for old in previous.json.values():
                    shared.setdefault(old.etag, old)
        body = make_body(to_json(value), "json")
        bodies[key] = shared.setdefault(body.etag, body)
    return ServedRevision(snapshot, bodies)


class Publisher:
    """Holds the served revision; swaps it whole, tells waiting readers, then persists it.

    Until start() the write happens in publish's caller after the swap; between start() and
    stop() a writer thread does it, so publishing never waits for the disk.
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._served: ServedRevision | None = None
        self._changed = threading.Condition()
        self._generation = 0
        self._closing = False
        self._writer: _Writer | None = None

    @property
    def served(self) -> ServedRevision | None:
        """The revision being served (a reader keeps the object it got: old or new, whole)."""
        return self._served

    def publish(self, snapshot: Snapshot, *, persist: bool = True) -> ServedRevision:
        """Serve snapshot from now on, then persist it so a restart serves it too.

        Readers see the new revision before it is on disk. A crash in between leaves the
        previously persisted snapshot, which was published, so good, too: a restart serves it
        at once and its first poll catches up. The file is only ever replaced whole.
        """
        served = prepare(snapshot, self._served)
        with self._changed:
            self._served = served
            self._generation += 1
            self._changed.notify_all()
        if persist and self.state_dir is not None:
            writer = self._writer
            if writer is not None:
                writer.submit(snapshot)
            else:
                self._persist(snapshot)
        return served

    def _persist(self, snapshot: Snapshot) -> None:
        assert self.state_dir is not None
        try:
            write_atomic(self.state_dir / "served.json", snapshot.json_chunks())
        except OSError as exc:  # what is in memory is served; a restart serves the older file
            log.error("cannot persist revision %s: %s", snapshot.revision[:12], exc)

    def start(self) -> None:
        """Persist in a writer thread from now on (the latest snapshot wins)."""
        if self._writer is None and self.state_dir is not None:
            self._writer = _Writer(self._persist)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the last published snapshot is on disk; False on timeout."""
        writer = self._writer
        return writer.flush(timeout) if writer is not None else True

    def stop(self) -> None:
        """Write what is pending and end the writer thread; later publishes write in place."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()

    def load_persisted(self) -> ServedRevision | None:
        """Serve the snapshot persisted by an earlier run, if there is a sound one."""
        if self.state_dir is None:
            return None
        path = self.state_dir / "served.json"
        try:
            snapshot = Snapshot.from_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a usable snapshot: {exc}") from exc
        return self.publish(snapshot, persist=False)

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

    @property
    def closing(self) -> bool:
        """Whether close_waiters() was called."""
        return self._closing

    @property
    def generation(self) -> int:
        """How many revisions were published by this process."""
        return self._generation


class _Writer:
    """A thread that persists the latest snapshot submitted; ones it had no time for are skipped."""

    def __init__(self, write: Callable[[Snapshot], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending: Snapshot | None = None
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="gitconf-persist", daemon=True)
        self._thread.start()

    def submit(self, snapshot: Snapshot) -> None:
        """Write snapshot soon, instead of any older one still waiting."""
        with self._cond:
            self._pending = snapshot
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or being written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def stop(self) -> None:
        """Write what is pending, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                snapshot, self._pending = self._pending, None
                if snapshot is None:
                    return
                self._busy = True
            try:
                self._write(snapshot)
            except Exception:
                log.exception("persisting revision %s failed", snapshot.revision[:12])
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write a file so that a reader or a crash sees the old or the new content, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
