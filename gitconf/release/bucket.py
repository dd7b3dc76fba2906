"""Which instances a rollout serves its candidate: a stable hash of (rollout id, instance).

The hash puts each instance at a fixed point from 0 to 100 for a rollout, so raising the
percent only adds instances (those under 25 are under 50 too), every replica agrees without
asking the store, and a client keeps its revision from one poll to the next. The point is the
first 15 hex digits of SHA-1 of "<rollout id>.<instance>", over 0xFFFFFFFFFFFFFFF.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["bucket", "on_candidate"]

_SCALE = 0xFFFFFFFFFFFFFFF


def bucket(rollout: str, instance: str) -> float:
    """The instance's point in the rollout, from 0 to 100."""
    digest = hashlib.sha1(f"{rollout}.{instance}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16) / _SCALE * 100


_INSTANCE = re.compile(r"[A-Za-z0-9._:/@-]{1,255}")


def instance_name(header: str | None) -> str | None:
    """The X-Gitconf-Instance a reader sent, if it is a usable name (letters, digits and
    `._:/@-`, at most 255): anything else (control characters, NUL, which PostgreSQL's text
    refuses, a name too long to store) makes the reader unidentified, served the stable side."""
    if header is None or _INSTANCE.fullmatch(header) is None:
        return None
    return header


def on_candidate(rollout: str, instance: str | None, percent: float) -> bool:
    """Whether the instance is served the candidate at percent (an unnamed one never is)."""
    return bool(instance) and bucket(rollout, instance or "") < percent
