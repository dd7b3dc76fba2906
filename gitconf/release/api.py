"""`PUT|DELETE|GET /v1/environments/<env>/pin`: serve an environment from an earlier published
revision until unpinned (scope `release:<env>`).

A pin is written to the store (shared by the replicas, kept across restarts), served here at
once, and every other replica is told to poll (PostgreSQL NOTIFY), which serves it there too.
A publish while pinned is compiled and recorded, but the pinned environment keeps its pin.
Pinning and unpinning are announced to subscribers like any change, with the reason given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import Blueprint, Response, request
from jsonschema import Draft202012Validator
from sqlalchemy.exc import SQLAlchemyError

from gitconf.git.remote import Mirror
from gitconf.jobs.poll import PollContext, Poller
from gitconf.served import ServedRevision
from gitconf.server.audit_api import actor, record
from gitconf.server.auth import Principal, may_not
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.jsonbody import check_body, read_json
from gitconf.server.responses import json_response, store_down
from gitconf.store.pins import Pin, PinStore

__all__ = ["PinContext", "make_blueprint"]

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_REASON = 1000
# A reason is one line of text: no control characters (a newline would forge log lines, a NUL
# is refused by PostgreSQL's text).
REASON_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
NOTE = 'send {"revision": "<commit>", "reason": "why"}; see docs/releases.md'
_PIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["revision", "reason"],
    "additionalProperties": False,
    "properties": {
        "revision": {"type": "string", "minLength": 4, "maxLength": 255},
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REASON,
            "pattern": REASON_PATTERN,
        },
    },
}
_UNPIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REASON,
            "pattern": REASON_PATTERN,
        }
    },
}


@dataclass
class PinContext:
    """What the pin routes use."""

    pins: PinStore
    poll: PollContext
    poller: Poller
    mirror: Mirror
    fetch: Callable[[str], ServedRevision]

    def status(self) -> dict[str, Any]:
        """The pins section of /v1/status: what this replica serves pinned, and why."""
        served = self.poll.publisher.served
        known = self.poll.pinned or {}
        return {
            env: {
                "revision": sha,
                **({k: v for k, v in known[env].doc().items() if k != "revision"}
                   if env in known else {}),
            }
            for env, sha in sorted((served.pinned if served is not None else {}).items())
        }  # fmt: skip


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    return Draft202012Validator(_PIN_SCHEMA), Draft202012Validator(_UNPIN_SCHEMA)


def release_caller(env: str, kind: str = "release") -> tuple[Principal, ServedRevision]:
    """The caller of a release route on env and the served revision; 403 without the scope
    (kind read: a release scope or a read scope of env), 404 for an unknown environment."""
    d = deps()
    principal = d.reader.principal(request.headers.get("Authorization"))
    allowed = principal.may("release", env) or (kind == "read" and principal.can_read(env))
    if not allowed:
        raise may_not(principal, kind, env)
    served = d.reader.revision(None)
    if env not in served.environments:
        raise ApiError(
            404,
            "unknown_environment",
            f"environment: unknown environment {env!r}; known: {', '.join(served.environments)}",
            field="environment",
        )
    return principal, served


def _body(what: str, unpin: bool) -> dict[str, Any]:
    if unpin and not request.content_length and request.content_type is None:
        return {}  # DELETE without a body: no reason given
    doc = read_json(request, what=what, limit=MAX_BODY, max_depth=4, shape=NOTE)
    if unpin and doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_pin", f"the body must be a JSON object; {NOTE}")
    check_body(doc, _validators()[1 if unpin else 0], "invalid_pin", NOTE)
    return doc


def _pinnable(ctx: PinContext, env: str, served: ServedRevision, ref: str) -> str:
    """The commit ref names, if env may be pinned to it; ApiError naming the field if not."""
    refs = deps().reader.refs
    try:
        sha = refs.resolve(ref)
    except ApiError as exc:
        raise ApiError(
            404 if exc.status == 404 else 422,
            "unknown_revision",
            f"revision: {ref!r} is no commit of the repository ({exc.message})",
            field="revision",
        ) from None
    head = served.revision
    if sha == head:
        raise ApiError(
            409,
            "revision_is_head",
            f"revision: {sha[:12]} is the head served now; a pin serves an earlier "
            "published revision (to freeze the head, pin it once a later commit exists)",
            field="revision",
        )
    state = ctx.poll.revisions.state_of(sha)
    if state != "published":
        verdict = f"it was {state}" if state else "gitconf never saw it"
        raise ApiError(
            422,
            "not_published",
            f"revision: {sha[:12]} was never published ({verdict}); only a revision gitconf "
            "published may be pinned (see GET /v1/revisions)",
            field="revision",
        )
    if not ctx.mirror.descends(head, sha):
        raise ApiError(
            422,
            "not_earlier",
            f"revision: {sha[:12]} is not an earlier commit of the branch "
            f"{ctx.mirror.branch!r} (head {head[:12]})",
            field="revision",
        )
    if env not in ctx.fetch(sha).environments:
        raise ApiError(
            422,
            "unknown_environment",
            f"revision: {sha[:12]} has no environment {env!r} to serve",
            field="revision",
        )
    return sha


def _served_doc(ctx: PinContext, env: str, pin: Pin | None) -> dict[str, Any]:
    served = ctx.poll.publisher.served
    doc: dict[str, Any] = {
        "environment": env,
        "pinned": pin is not None,
        "served_revision": served.revision_of(env) if served is not None else None,
        "head": served.revision if served is not None else None,
    }
    if pin is not None:
        doc.update(pin.doc())
    return doc


def _apply(ctx: PinContext) -> None:
    """Serve the store's pins here now, and have every other replica poll (and serve them)."""
    result = ctx.poller.apply_pins()
    if result == "error":
        raise ApiError(
            503,
            "pin_not_served",
            f"the pin is recorded but not served yet: {ctx.poll.status.last_error}; it is "
            "tried again at the next poll",
            headers={"Retry-After": "5"},
        )
    ctx.poller.request()


def _announce_split(
    env: str, before: ServedRevision | None, after: ServedRevision | None, kind: str, reason: str
) -> None:
    """A pin or unpin of an environment in a rollout also moves its canary instances (from
    the candidate to the pin, or back). When the stable side stays (a pin to the rollout's
    own stable revision), nothing else announces it: announce that side as the abort path
    does. Otherwise the publish announces the stable side like any pin."""
    notifier = deps().notifier
    if notifier is None or before is None or after is None:
        return
    if before.revision_of(env) != after.revision_of(env):
        # The stable side moved too, and its event is the one the subscribers get (the
        # outbox keeps the newest undelivered event of a config): nothing more to say.
        return
    was, now = before.live.get(env), after.live.get(env)
    if was is not None and now is None:
        notifier.announce(was.candidate, after, [env], kind, reason)
    elif was is None and now is not None:
        notifier.announce(before, now.candidate, [env], kind, reason)


def put_pin(ctx: PinContext, env: str) -> Response:
    """Pin env to an earlier published revision."""
    try:
        principal, served = release_caller(env)
        doc = _body(f"PUT /v1/environments/{env}/pin", unpin=False)
        sha = _pinnable(ctx, env, served, doc["revision"])
        pin = ctx.pins.pin(env, sha, doc["reason"], principal.name)
        _apply(ctx)
        _announce_split(env, served, ctx.poll.publisher.served, "pin", doc["reason"])
    except ApiError as exc:
        record("pin.set", env, f"{exc.status} {exc.code}", who=actor(exc))
        raise
    record("pin.set", env, "200", who=principal.name,
           detail={"revision": sha, "reason": doc["reason"]})  # fmt: skip
    log.info("%s pinned %s to %s: %s", principal.name, env, sha[:12], doc["reason"])
    return json_response(_served_doc(ctx, env, pin))


def delete_pin(ctx: PinContext, env: str) -> Response:
    """Unpin env: it serves the head again."""
    try:
        principal, served = release_caller(env)
        doc = _body(f"DELETE /v1/environments/{env}/pin", unpin=True)
        reason = doc.get("reason") or f"unpinned by {principal.name}"
        gone = ctx.pins.unpin(env, reason, principal.name)
        if gone is None:
            raise ApiError(
                404, "not_pinned", f"environment: {env!r} is not pinned", field="environment"
            )
        _apply(ctx)
        _announce_split(env, served, ctx.poll.publisher.served, "unpin", reason)
    except ApiError as exc:
        record("pin.clear", env, f"{exc.status} {exc.code}", who=actor(exc))
        raise
    record("pin.clear", env, "200", who=principal.name,
           detail={"revision": gone.revision, "reason": reason})  # fmt: skip
    log.info("%s unpinned %s: %s", principal.name, env, reason)
    return json_response(_served_doc(ctx, env, None))


def get_pin(ctx: PinContext, env: str) -> Response:
    """Whether env is pinned, to what and why (scope release or read of env)."""
    d = deps()
    principal = d.reader.principal(request.headers.get("Authorization"))
    if not (principal.may("release", env) or principal.can_read(env)):
        raise may_not(principal, "read", env)
    served = d.reader.revision(None)
    if env not in served.environments:
        raise ApiError(404, "unknown_environment", f"environment: unknown environment {env!r}",
                       field="environment")  # fmt: skip
    pin = (ctx.poll.pinned or {}).get(env) if env in served.pinned else None
    return json_response(_served_doc(ctx, env, pin))


def make_blueprint(ctx: PinContext) -> Blueprint:
    """The pin routes."""
    bp = Blueprint("pins", __name__)
    bp.register_error_handler(SQLAlchemyError, store_down("pin"))
    path = "/v1/environments/<env>/pin"
    bp.add_url_rule(path, "put", lambda env: put_pin(ctx, env), methods=["PUT"])
    bp.add_url_rule(path, "delete", lambda env: delete_pin(ctx, env), methods=["DELETE"])
    bp.add_url_rule(path, "get", lambda env: get_pin(ctx, env), methods=["GET"])
    return bp
