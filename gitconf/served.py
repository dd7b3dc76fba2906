"""The served revision: response bodies and ETags prepared at publish time, swapped atomically.

A Snapshot is the plain, persistable form of a compiled revision (values and provenance). A
ServedRevision holds the bytes the read path returns; building one from a Snapshot is the
only work publish does for reads, so a request is a dictionary lookup.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitconf.core.explain import explain_config
from gitconf.core.model import CompiledRevision, Manifest
from gitconf.core.render import render, to_json

__all__ = ["Body", "Publisher", "ServedRevision", "Snapshot", "snapshot_of"]

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

    def to_json(self) -> bytes:
        """The persisted form."""
        doc = {
            "version": SNAPSHOT_VERSION,
            "revision": self.revision,
            "published_at": self.published_at,
            "environments": list(self.environments),
            "services": list(self.services),
            "configs": [
                {
                    "environment": env,
                    "service": svc,
                    "value": value,
                    "explain": self.explain[(env, svc)],
                    "layers": self.layers[(env, svc)],
                }
                for (env, svc), value in self.values.items()
            ],
            "subscriptions": list(self.subscriptions),
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

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


def snapshot_of(sha: str, revision: CompiledRevision, published_at: str = "") -> Snapshot:
    """The snapshot of a compiled revision at commit sha."""
    return Snapshot(
        revision=sha,
        environments=revision.environments,
        services=revision.services,
        values={key: config.value for key, config in revision.configs.items()},
        explain={key: explain_config(config) for key, config in revision.configs.items()},
        layers={key: list(config.layers) for key, config in revision.configs.items()},
        published_at=published_at,
        subscriptions=subscription_docs(revision.manifest),
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
    """Prepare the JSON bodies of a snapshot, sharing bytes with equal bodies already served."""
    shared: dict[str, Body] = {}
    if previous is not None:
        for body in previous.json.values():
            shared.setdefault(body.etag, body)
    bodies: dict[tuple[str, str], Body] = {}
    for key, value in snapshot.values.items():
        body = make_body(to_json(value), "json")
        bodies[key] = shared.setdefault(body.etag, body)
    return ServedRevision(snapshot, bodies)


class Publisher:
    """Holds the served revision; swaps it whole and tells waiting readers."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._served: ServedRevision | None = None
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def served(self) -> ServedRevision | None:
        """The revision being served (a reader keeps the object it got: old or new, whole)."""
        return self._served

    def publish(self, snapshot: Snapshot, *, persist: bool = True) -> ServedRevision:
        """Serve snapshot from now on; persist it first so a restart serves it too."""
        served = prepare(snapshot, self._served)
        if persist and self.state_dir is not None:
            write_atomic(self.state_dir / "served.json", snapshot.to_json())
        with self._changed:
            self._served = served
            self._generation += 1
            self._changed.notify_all()
        return served

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
        """Block until a publish after generation, or timeout; return the current generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout)
            return self._generation

    @property
    def generation(self) -> int:
        """How many revisions were published by this process."""
        return self._generation


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader or a crash sees the old or the new content, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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
