"""Change sets and CloudEvents 1.0 bodies: pure functions, no I/O, no clock.

A change set compares the served ETags of two revisions: a config whose ETag changed,
appeared or vanished is one Change. Each matching subscription gets one event per Change.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

__all__ = [
    "CHANGED",
    "EVENT_TYPES",
    "REJECTED",
    "Change",
    "change_set",
    "changed_event",
    "encode",
    "matches",
    "rejected_event",
]

CHANGED = "io.gitconf.config.changed"
REJECTED = "io.gitconf.revision.rejected"
EVENT_TYPES = (CHANGED, REJECTED)
# A config rewritten wholesale could list thousands of keys; the fetch URL has them all.
MAX_KEYS = 1000

Kind = Literal["added", "changed", "removed"]


class Change(NamedTuple):
    """One (environment, service) whose served bytes differ between two revisions."""

    environment: str
    service: str
    kind: Kind
    etag: str | None
    previous_etag: str | None
    keys: tuple[str, ...]
    config: Any


def change_set(
    old_etags: Mapping[tuple[str, str], str],
    new_etags: Mapping[tuple[str, str], str],
    keys: Mapping[tuple[str, str], Sequence[str]],
    config_of: Callable[[tuple[str, str]], Any] = lambda _key: None,
    *,
    old_ids: Mapping[tuple[str, str], str] | None = None,
    new_ids: Mapping[tuple[str, str], str] | None = None,
) -> list[Change]:
    """Every config that changed, appeared or vanished, sorted by (environment, service).

    A config changed when its identity changed (old_ids/new_ids: the ETag of its plaintext
    variant when it has secrets, so a change to a secret alone counts); the ETags reported are
    those of the bodies without secrets. keys holds the changed key paths of each (from the
    compile worker); config_of gives a config's new value, for subscribers that want it.
    """
    before_ids = old_etags if old_ids is None else old_ids
    after_ids = new_etags if new_ids is None else new_ids
    changes = []
    for key in sorted(old_etags.keys() | new_etags.keys()):
        if before_ids.get(key) == after_ids.get(key):
            continue
        before, after = old_etags.get(key), new_etags.get(key)
        kind: Kind = "added" if before is None else "removed" if after is None else "changed"
        config = config_of(key) if after is not None else None
        changes.append(
            Change(key[0], key[1], kind, after, before, tuple(keys.get(key, ())), config)
        )
    return changes


def matches(environments: Iterable[str], services: Iterable[str], env: str, service: str) -> bool:
    """Whether an environment glob and a service glob both match (case-sensitive fnmatch)."""
    return any(fnmatch.fnmatchcase(env, g) for g in environments) and any(
        fnmatch.fnmatchcase(service, g) for g in services
    )


def _envelope(
    event_id: str, source: str, kind: str, subject: str, time: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": kind,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }


def changed_event(
    change: Change,
    *,
    event_id: str,
    source: str,
    time: str,
    revision: str,
    previous_revision: str | None,
    base_url: str,
    include_config: bool = False,
    action: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The `io.gitconf.config.changed` CloudEvent of one change.

    action says what moved the served revision when it was not a publish of a newer commit
    (rollback, pin, unpin), with the reason a person gave."""
    data: dict[str, Any] = {
        "environment": change.environment,
        "service": change.service,
        "revision": revision,
        "previous_revision": previous_revision,
        "change": change.kind,
        "etag": change.etag,
        "previous_etag": change.previous_etag,
        "changed_keys": list(change.keys[:MAX_KEYS]),
        "changed_keys_truncated": len(change.keys) > MAX_KEYS,
        "fetch_url": f"{base_url}/v1/config/{change.environment}/{change.service}",
    }
    if action is not None:
        data["action"] = action
    if reason is not None:
        data["reason"] = reason
    if include_config:
        data["config"] = change.config
    subject = f"{change.environment}/{change.service}"
    return _envelope(event_id, source, CHANGED, subject, time, data)


def rejected_event(
    *,
    event_id: str,
    source: str,
    time: str,
    revision: str,
    served_revision: str | None,
    problems: Sequence[str],
) -> dict[str, Any]:
    """The `io.gitconf.revision.rejected` CloudEvent of a commit that was not published."""
    data = {"revision": revision, "served_revision": served_revision, "problems": list(problems)}
    return _envelope(event_id, source, REJECTED, revision, time, data)


def encode(event: Mapping[str, Any]) -> bytes:
    """The event's JSON bytes: what is stored, signed and sent, byte for byte."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
