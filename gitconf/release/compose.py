"""The served state with pins: the head's configs, but a pinned environment's from its pin.

Pure: the revisions it takes bodies from are handed in (`fetch` gives an earlier revision's
served form, compiled by the compile worker). Bodies are shared, not copied, so a pin costs
no memory beyond what the pinned revision adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gitconf.served import LiveRollout, ServedRevision

__all__ = ["compose", "plain_head"]

Fetch = Callable[[str], ServedRevision]


def plain_head(served: ServedRevision, fetch: Fetch) -> ServedRevision:
    """The head revision of served, every environment its own (compiled again after a
    restart, which persisted only the composed state)."""
    if not served.pinned:
        return served
    if served.unpinned is not None:
        return served.unpinned
    return fetch(served.revision)


def compose(
    head: ServedRevision,
    pins: Mapping[str, str],
    fetch: Fetch,
    previous: ServedRevision | None = None,
    move: tuple[str, str | None] | None = None,
    live: Mapping[str, tuple[str, int, str]] | None = None,
    candidate_pins: Mapping[str, str] | None = None,
) -> ServedRevision:
    """head with each pinned environment's configs taken from its pinned revision (from
    previous when it served that pin already, else from fetch); head itself without pins.

    live names the environments in a rollout, (id, percent, state) each: pins holds their
    stable revision, and their candidate is head composed with candidate_pins only."""
    pins = {env: sha for env, sha in pins.items() if sha != head.revision}
    if live:
        candidate = compose(head, candidate_pins or {}, fetch, previous)
        composed = compose(head, pins, fetch, previous, move)
        if composed is head:  # never mark the plain head itself: it is the candidate's base
            composed = _copy(head)
        composed.live = {
            env: LiveRollout(rid, percent, state, candidate)
            for env, (rid, percent, state) in live.items()
        }
        return composed
    if not pins:
        if move is None:
            return head
        head.move = move
        return head
    json = {k: v for k, v in head.json.items() if k[0] not in pins}
    secret_json = {k: v for k, v in head.secret_json.items() if k[0] not in pins}
    redacted = {k: v for k, v in head.redacted.items() if k[0] not in pins}
    services = set(head.services)
    environments = list(head.environments)
    for env, sha in sorted(pins.items()):
        source = previous if previous is not None and previous.pinned.get(env) == sha else None
        if source is not None and source.redacted and not source.secret_json:
            source = None  # read from disk, without the plaintext: compiled again
        if source is None:
            source = fetch(sha)
        json.update((k, v) for k, v in source.json.items() if k[0] == env)
        secret_json.update((k, v) for k, v in source.secret_json.items() if k[0] == env)
        redacted.update((k, v) for k, v in source.redacted.items() if k[0] == env)
        services.update(s for e, s in source.json if e == env)
        if env not in environments:
            environments.append(env)
    changed = {k: v for k, v in head.changed.items() if k[0] not in pins}
    return ServedRevision(
        revision=head.revision,
        environments=tuple(environments),
        services=tuple(sorted(services)),
        json=json,
        published_at=head.published_at,
        subscriptions=head.subscriptions,
        base=head.base,
        changed=changed,
        explainer=head.explainer,
        secret_json=secret_json,
        redacted=redacted,
        pinned=dict(pins),
        unpinned=head,
        move=move,
        rollouts=head.rollouts,
    )


def _copy(head: ServedRevision) -> ServedRevision:
    """A served state with head's bodies (shared) and no pins."""
    return ServedRevision(
        revision=head.revision,
        environments=head.environments,
        services=head.services,
        json=head.json,
        published_at=head.published_at,
        subscriptions=head.subscriptions,
        base=head.base,
        changed=head.changed,
        explainer=head.explainer,
        secret_json=head.secret_json,
        redacted=head.redacted,
        unpinned=head,
        move=head.move,
        rollouts=head.rollouts,
    )
