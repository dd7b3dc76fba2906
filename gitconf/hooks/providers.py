"""What each Git host's event says was pushed: pure parsing of verified payloads.

Every parser turns an event name and a decoded JSON body into `Push` values, one per ref
the event updated; `decide` picks the one that concerns the tracked branch (or a branch of
spring.labels), or says why the event is ignored.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from gitconf.errors import GitconfError

__all__ = ["EVENT_HEADERS", "PROVIDERS", "PayloadError", "Push", "decide", "parse"]

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket", "generic")

# The header naming the event, per provider, first found wins (Forgejo and Gogs send their own).
EVENT_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("X-GitHub-Event",),
    "gitlab": ("X-Gitlab-Event",),
    "gitea": ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-GitHub-Event"),
    "bitbucket": ("X-Event-Key",),
    "generic": (),
}


class PayloadError(GitconfError):
    """A verified event whose body lacks what its kind must carry."""


class Push(NamedTuple):
    """One ref update an event reports; `kind` is "push", "ping" or the host's event name."""

    kind: str
    ref: str | None = None
    after: str | None = None
    deleted: bool = False


def _zero(sha: str | None) -> bool:
    # 40 zeros (SHA-1) or 64 (SHA-256 repositories): the ref no longer exists.
    return sha is not None and sha != "" and set(sha) == {"0"}


def _text(doc: Any, key: str, where: str) -> str | None:
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"{where}{key}: {value!r} is not a string")
    return value


def _required(doc: Any, key: str, where: str = "") -> str:
    value = _text(doc, key, where)
    if not value:
        raise PayloadError(f"{where}{key}: missing; a push event names the updated ref")
    return value


def _hub_push(doc: dict[str, Any]) -> Push:
    """The GitHub push shape, which GitLab and Gitea share: ref, before, after."""
    after = _text(doc, "after", "")
    return Push("push", _required(doc, "ref"), after, doc.get("deleted") is True or _zero(after))


def github(event: str | None, doc: dict[str, Any]) -> list[Push]:
    """GitHub: X-GitHub-Event push or ping."""
    if event == "push":
        return [_hub_push(doc)]
    return [Push("ping" if event == "ping" else event or "unnamed")]


def gitlab(event: str | None, doc: dict[str, Any]) -> list[Push]:
    """GitLab: Push Hook, Tag Push Hook, or a System Hook whose object_kind is push."""
    kind = doc.get("object_kind")
    if event in ("Push Hook", "Tag Push Hook") or (
        event in ("System Hook", None) and kind in ("push", "tag_push")
    ):
        return [_hub_push(doc)]
    return [Push(event or str(kind or "unnamed"))]


def gitea(event: str | None, doc: dict[str, Any]) -> list[Push]:
    """Gitea, Forgejo and Gogs: the push event (a deleted branch comes as a delete event)."""
    if event == "push":
        return [_hub_push(doc)]
    return [Push(event or "unnamed")]


_BITBUCKET_PREFIX = {"branch": "refs/heads/", "named_branch": "refs/heads/", "tag": "refs/tags/"}


def _cloud_change(change: Any, i: int) -> Push:
    where = f"push.changes[{i}]."
    if not isinstance(change, dict):
        raise PayloadError(f"{where[:-1]}: not an object")
    new, old = change.get("new"), change.get("old")
    state = new if isinstance(new, dict) else old
    if not isinstance(state, dict):
        raise PayloadError(f"{where}new and {where}old: both missing")
    name = _required(state, "name", where + ("new." if state is new else "old."))
    kind = state.get("type")
    prefix = _BITBUCKET_PREFIX.get(kind) if isinstance(kind, str) else None
    # Cloud names the branch without refs/heads/; any other type can never be the branch.
    ref = prefix + name if prefix else f"{kind}:{name}"
    target = new.get("target") if isinstance(new, dict) else None
    after = _text(target, "hash", where + "new.target.")
    return Push("push", ref, after, not isinstance(new, dict) or _zero(after))


def _server_change(change: Any, i: int) -> Push:
    where = f"changes[{i}]."
    if not isinstance(change, dict):
        raise PayloadError(f"{where[:-1]}: not an object")
    ref_doc = change.get("ref")
    ref = _text(ref_doc, "id", where + "ref.") or _required(change, "refId", where)
    after = _text(change, "toHash", where)
    return Push("push", ref, after, change.get("type") == "DELETE" or _zero(after))


def bitbucket(event: str | None, doc: dict[str, Any]) -> list[Push]:
    """Bitbucket Cloud (repo:push) and Data Center (repo:refs_changed, diagnostics:ping)."""
    if event == "repo:push":
        push = doc.get("push")
        changes = push.get("changes") if isinstance(push, dict) else None
        if not isinstance(changes, list):
            raise PayloadError("push.changes: missing; a repo:push event lists its changes")
        return [_cloud_change(c, i) for i, c in enumerate(changes)]
    if event == "repo:refs_changed":
        changes = doc.get("changes")
        if not isinstance(changes, list):
            raise PayloadError("changes: missing; a repo:refs_changed event lists its changes")
        return [_server_change(c, i) for i, c in enumerate(changes)]
    return [Push("ping" if event == "diagnostics:ping" else event or "unnamed")]


def generic(event: str | None, doc: dict[str, Any]) -> list[Push]:
    """A signed script: `{"ref", "before", "after"}`; without a ref, a plain request to poll."""
    ref = _text(doc, "ref", "")
    if ref is not None and not ref.startswith("refs/"):
        ref = "refs/heads/" + ref
    after = _text(doc, "after", "")
    return [Push("push", ref, after, doc.get("deleted") is True or _zero(after))]


_PARSERS: dict[str, Callable[[str | None, dict[str, Any]], list[Push]]] = {
    "github": github,
    "gitlab": gitlab,
    "gitea": gitea,
    "bitbucket": bitbucket,
    "generic": generic,
}


def parse(provider: str, event: str | None, doc: dict[str, Any]) -> list[Push]:
    """The ref updates of a provider's event; PayloadError if a push lacks its ref."""
    return _PARSERS[provider](event, doc)


def _is_label(ref: str, labels: Sequence[str]) -> bool:
    """Whether ref is a branch that one of the label globs matches."""
    name = ref.removeprefix("refs/heads/")
    return name != ref and any(fnmatch.fnmatchcase(name, glob) for glob in labels)


def decide(pushes: list[Push], branch: str, labels: Sequence[str] = ()) -> tuple[Push | None, str]:
    """The push that moves the tracked branch (or, created, moved or deleted, a branch that a
    glob of labels, spring.labels, matches), or None and why the event is ignored."""
    tracked = "refs/heads/" + branch
    reasons: list[str] = []
    for push in pushes:
        if push.kind != "push":
            reasons.append(f"{push.kind!r} events are not pushes")
        elif push.ref is None:
            return push, ""
        elif push.ref != tracked and _is_label(push.ref, labels):
            return push, ""  # the mirror fetches it: poll, so a label serves the push soon
        elif push.ref != tracked:
            what = "a tag" if push.ref.startswith("refs/tags/") else "not the tracked branch"
            reasons.append(f"{push.ref} is {what}; gitconf tracks {tracked}")
        elif push.deleted:
            reasons.append(f"{tracked} was deleted; the last good revision keeps serving")
        else:
            return push, ""
    return None, "; ".join(reasons) or "the event updates no ref"
