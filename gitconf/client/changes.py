"""A change of the config a client holds: old and new copy, the dotted keys that differ."""

from __future__ import annotations

from typing import Any, NamedTuple

from gitconf.core.diff import diff_values

__all__ = ["Change", "change_between"]


class Change(NamedTuple):
    """What a watch callback receives.

    old is None for the first copy of a client that held none; changed lists the dotted key
    paths (`db.pool.max`, lists whole: `hosts`) that were added, removed or changed.
    """

    old: Any
    new: Any
    changed: tuple[str, ...]
    revision: str | None
    etag: str | None = None


def change_between(old: Any, new: Any, revision: str | None, etag: str | None) -> Change | None:
    """The Change from old to new, or None when no key differs (say only key order moved)."""
    keys = tuple(k.key for k in diff_values(old, new))
    if old is not None and not keys:
        return None
    return Change(old, new, keys, revision, etag)
