"""The served revision: response bodies and ETags prepared at publish time, swapped atomically.

A ServedRevision holds the bytes the read path returns: the JSON body of every config
(shared by every revision and config that has the same bytes), made by the compile worker.
Other formats and documents (YAML, env lines, a whole environment) are made from those bytes
on first request; explain documents come from the worker, which holds the provenance. No parse
tree and no compile cache lives in the serving process.

gitconf.publisher swaps the served revision whole and persists it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitconf.core.render import etag_of, render
from gitconf.release.bucket import on_candidate
from gitconf.store.snapshots import PersistedRevision
from gitconf.worker.messages import Built

__all__ = [
    "Body",
    "Explainer",
    "LiveRollout",
    "ServedRevision",
    "from_built",
    "from_persisted",
    "make_body",
    "with_secrets",
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


class LiveRollout(NamedTuple):
    """A rollout an environment is in: instances under percent are served candidate (the
    state with the environment's candidate revision) instead of this one."""

    id: str
    percent: int
    state: str  # running | paused | aborted
    candidate: ServedRevision


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
    # Configs with values decrypted from SOPS files: `json` holds them without those values
    # (what is persisted and what readers without the secrets: scope get); these are their
    # plaintext bodies (memory only) and how many values each redacts. A revision read from
    # disk has no plaintext until the compile worker sends it (secret_json is then empty).
    secret_json: dict[ConfigKey, Body] = field(default_factory=dict, repr=False)
    redacted: dict[ConfigKey, int] = field(default_factory=dict)
    # Environments pinned to an earlier published revision: their configs here are that
    # revision's (gitconf.release); `revision` is the branch head the others serve.
    pinned: dict[str, str] = field(default_factory=dict)
    # With pins: the head revision as compiled, every environment its own (None after a
    # restart, until it is needed and compiled again).
    unpinned: ServedRevision | None = field(default=None, repr=False, compare=False)
    # What made this the served state when it was not a new commit: (pin | unpin, reason),
    # and per environment when several moved at once (each event names its own).
    move: tuple[str, str | None] | None = None
    moves: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # The manifest's rollouts (gitconf.yaml `rollouts:`), and the rollouts environments are
    # in now: this state is their stable one (gitconf.release).
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: dict[str, LiveRollout] = field(default_factory=dict)
    _lazy: dict[tuple[str, str, str], Body] = field(default_factory=dict, repr=False)
    _lazy_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def state(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What is served: the head and the pins (what a served move moves)."""
        return self.revision, tuple(sorted(self.pinned.items()))

    def revision_of(self, env: str) -> str:
        """The revision environment env is served from (its pin, else the head)."""
        return self.pinned.get(env, self.revision)

    def view_for(self, env: str, instance: str | None) -> ServedRevision:
        """What an instance (X-Gitconf-Instance) reading env is served: the candidate of a
        rollout it falls in, else this."""
        live = self.live.get(env)
        if live is None or live.state == "aborted" or not instance:
            return self
        return live.candidate if on_candidate(live.id, instance, live.percent) else self

    def has(self, env: str, service: str) -> bool:
        """Whether the revision has a config for (env, service)."""
        return (env, service) in self.json

    def has_secrets(self, env: str, service: str) -> bool:
        """Whether the config holds values decrypted from SOPS files."""
        return (env, service) in self.redacted

    def secrets_ready(self, env: str, service: str) -> bool:
        """Whether its plaintext variant is here (not yet after a restart, until the compile
        worker has compiled the revision again)."""
        return (env, service) in self.secret_json or (env, service) not in self.redacted

    def value(self, env: str, service: str, plaintext: bool = False) -> Any:
        """One config as plain values (decoded from its served JSON); with plaintext, with its
        secrets (ValueError if they are not here yet)."""
        return json.loads(self._json_body(env, service, plaintext).data)

    def _json_body(self, env: str, service: str, plaintext: bool) -> Body:
        key = (env, service)
        if plaintext and key in self.redacted:
            body = self.secret_json.get(key)
            if body is None:
                raise ValueError(f"the secrets of {env}/{service} are not loaded yet")
            return body
        return self.json[key]

    def body(
        self, env: str, service: str, fmt: str = "json", plaintext: bool = False
    ) -> Body | None:
        """The prepared body of one config in a format, or None if there is no such config.

        plaintext: with its secrets (the plaintext variant); ValueError if not loaded yet."""
        if (env, service) not in self.json:
            return None
        secret = plaintext and (env, service) in self.redacted
        if fmt == "json":
            return self._json_body(env, service, secret)
        key = (env, service, fmt + "+secrets" if secret else fmt)
        body = self._lazy.get(key)
        if body is None:
            body = self._make(key, lambda: render(self.value(env, service, secret), fmt), fmt)
        return body

    def identity(self, key: ConfigKey) -> str | None:
        """What says whether a config changed: the ETag of its plaintext variant if it has one
        (a change to a secret alone leaves the other variant as it was), else of its body."""
        body = self.secret_json.get(key) or self.json.get(key)
        return body.etag if body is not None else None

    def identities(self) -> dict[ConfigKey, str]:
        """Every config's identity (see identity)."""
        return {key: self.identity(key) or "" for key in self.json}

    def environment_body(
        self,
        env: str,
        fmt: str = "json",
        services: tuple[str, ...] | None = None,
        plaintext: frozenset[str] = frozenset(),
    ) -> Body | None:
        """Every service of an environment in one document (or those of services), with the
        secrets of the services in plaintext."""
        if env not in self.environments:
            return None
        chosen = self.services if services is None else services
        shown = frozenset(s for s in plaintext if (env, s) in self.redacted)
        # "" or NUL-separated names: neither is a service name, so no config body's key.
        subset = "" if services is None or chosen == self.services else "\0" + "\0".join(chosen)
        if shown:
            subset += "\0+" + "\0".join(sorted(shown))
        key = (env, subset, fmt)
        body = self._lazy.get(key)
        if body is None:

            def build() -> bytes:
                doc = {
                    "environment": env,
                    "revision": self.revision_of(env),
                    "services": {
                        svc: self.value(env, svc, svc in shown)
                        for svc in chosen
                        if self.has(env, svc)
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
                data = explainer(self.revision_of(env), env, service)
                if data is None:
                    raise LookupError(
                        f"the compile worker has no {env}/{service} of {self.revision_of(env)}"
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


def _secret_bodies(
    etags: dict[ConfigKey, str], sent: dict[str, bytes], previous: ServedRevision | None
) -> dict[ConfigKey, Body] | None:
    """The plaintext variants: sent now, or the same bytes previous has; None if one is
    neither."""
    known = {b.etag: b for b in previous.secret_json.values()} if previous is not None else {}
    found: dict[ConfigKey, Body] = {}
    for key, etag in etags.items():
        body = known.get(etag)
        if body is None:
            data = sent.get(etag)
            if data is None:
                return None
            body = known[etag] = Body(data, etag, CONTENT_TYPES["json"])
        found[key] = body
    return found


def with_secrets(
    served: ServedRevision, etags: dict[ConfigKey, str], sent: dict[str, bytes]
) -> ServedRevision:
    """served with the plaintext variants the compile worker sent (after a restart)."""
    found = _secret_bodies(etags, sent, None) or {}
    served.secret_json = found
    return served


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
    secret_json = _secret_bodies(built.secret_etags, built.secret_bodies, previous)
    if secret_json is None:
        return None
    based = previous is not None and built.base == previous.revision
    return ServedRevision(
        revision=built.sha,
        environments=built.environments,
        services=built.services,
        json=bodies,
        secret_json=secret_json,
        redacted=dict(built.redacted),
        published_at=published_at,
        subscriptions=built.subscriptions,
        base=built.base if based else None,
        changed=built.changed if based else {},
        explainer=explainer,
        rollouts=dict(built.rollouts),
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
        redacted=dict(persisted.redacted),
        pinned=dict(persisted.pinned),
    )
