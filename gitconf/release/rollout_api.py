"""`GET /v1/rollouts/<env>` and `POST /v1/rollouts/<env>/<promote|pause|resume|abort>`.

A rollout's row is in the store, so every replica serves the same split; an action is written
there (compare-and-set), served here at once, and every other replica is told to poll. The
instances seen reading the environment (X-Gitconf-Instance) are noted in memory by the read
path (no store query per read) and written to the store every few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from gitconf.clock import utcnow
from gitconf.jobs.poll import PollContext, Poller
from gitconf.release import plan
from gitconf.release.api import release_caller
from gitconf.served import ServedRevision
from gitconf.server.audit_api import actor, record
from gitconf.server.auth import Principal
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.jsonbody import read_json
from gitconf.server.responses import json_response, store_down
from gitconf.store.rollouts import Rollout, RolloutStore

__all__ = ["RolloutContext", "make_blueprint"]

log = logging.getLogger(__name__)

FLUSH_EVERY = 2.0  # seconds between writes of the instances seen
MAX_SEEN = 100_000  # instances held between two writes; past it, new ones wait for a later read
MAX_LISTED = 10_000  # instances GET /v1/rollouts/<env> lists (instances_truncated says if more)
MAX_REASON = 1000


@dataclass
class RolloutContext:
    """What the rollout routes and the read path's sightings use."""

    store: RolloutStore
    poll: PollContext
    poller: Poller
    replica: str
    _seen: dict[tuple[str, str], tuple[str, dt.datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def saw(self, rollout: str, instance: str, revision: str) -> None:
        """Note an instance served revision in rollout (the read path calls it: memory only)."""
        key = (rollout, instance[:255])
        with self._lock:
            if len(self._seen) < MAX_SEEN or key in self._seen:
                self._seen[key] = (revision, utcnow())

    def flush(self) -> None:
        """Write the instances seen since the last flush."""
        with self._lock:
            seen, self._seen = self._seen, {}
        try:
            self.store.seen((r, i, rev, self.replica, at) for (r, i), (rev, at) in seen.items())
        except Exception as exc:
            log.warning("cannot write %d rollout sighting(s): %s", len(seen), exc)
            with self._lock:
                for key, value in seen.items():
                    self._seen.setdefault(key, value)

    def start(self) -> None:
        """Write sightings every FLUSH_EVERY seconds from now on."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gitconf-rollouts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is noted, then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY):
            self.flush()

    def status(self) -> dict[str, Any]:
        """The rollouts section of /v1/status: what this replica serves of each."""
        served = self.poll.publisher.served
        if served is None:
            return {}
        return {
            env: {"id": live.id, "percent": live.percent, "state": live.state,
                  "stable": served.revision_of(env), "candidate": live.candidate.revision_of(env)}
            for env, live in sorted(served.live.items())
        }  # fmt: skip


def _check(env: str, kind: str) -> tuple[Principal, ServedRevision]:
    return release_caller(env, kind)


def _row(ctx: RolloutContext, env: str) -> Rollout:
    row = ctx.store.get(env)
    if row is None:
        raise ApiError(
            404,
            "no_rollout",
            f"environment: {env!r} has had no rollout; add it to `rollouts:` in gitconf.yaml "
            "and push a commit that changes it",
            field="environment",
        )
    return row


def _doc(ctx: RolloutContext, row: Rollout, served: ServedRevision) -> dict[str, Any]:
    ctx.flush()
    doc = row.doc()
    doc["serving"] = {
        "unidentified": served.revision_of(row.environment),
        "head": served.revision,
    }
    seen = ctx.store.instances(row.id, limit=MAX_LISTED + 1)
    doc["instances"] = seen[:MAX_LISTED]
    doc["instances_truncated"] = len(seen) > MAX_LISTED  # the first MAX_LISTED by name
    return doc


def show(ctx: RolloutContext, env: str) -> Response:
    """An environment's rollout: state, percent, and every instance seen with its revision."""
    _, served = _check(env, "read")
    return json_response(_doc(ctx, _row(ctx, env), served))


def _reason() -> str | None:
    if not request.content_length and request.content_type is None:
        return None
    doc = read_json(request, what="a rollout action", limit=16 * 1024, max_depth=4,
                    shape='send {"reason": "why"}')  # fmt: skip
    if doc is None:
        return None
    if not isinstance(doc, dict) or set(doc) - {"reason"}:
        raise ApiError(400, "invalid_action", 'the body may hold "reason" only', field="reason")
    reason = doc.get("reason")
    if reason is not None and (
        not isinstance(reason, str)
        or not 0 < len(reason) <= MAX_REASON
        or any(ord(c) < 32 or c == "\x7f" for c in reason)
    ):
        raise ApiError(
            400,
            "invalid_action",
            f"reason: one line of 1 to {MAX_REASON} characters, no control characters",
            field="reason",
        )
    return reason


def act(ctx: RolloutContext, env: str, action: str) -> Response:
    """Promote (next step now), pause, resume or abort an environment's rollout."""
    audited = f"rollout.{action}" if action in plan.ACTIONS else "rollout"
    try:
        if action not in plan.ACTIONS:
            raise ApiError(
                404,
                "unknown_action",
                f"action: {action!r} is not one of {', '.join(plan.ACTIONS)}",
                field="action",
            )
        principal, served = _check(env, "release")
        reason = _reason()
        row = _row(ctx, env)
        if row.candidate != served.revision and row.state in ("running", "paused"):
            raise ApiError(
                409,
                "rollout_not_served",
                f"the rollout {row.id} is of {row.candidate[:12]}, and this replica serves "
                f"{served.revision[:12]}; try again in a moment",
                headers={"Retry-After": "1"},
            )
        try:
            changed = plan.act(row, action, principal.name, reason, utcnow())
        except plan.ActionRefused as exc:
            raise ApiError(409, "rollout_state", str(exc)) from None
        candidate = served.live[env].candidate if env in served.live else None
        written = ctx.store.write(changed, row.version)
        if written is None:
            raise ApiError(
                409, "rollout_changed", f"the rollout {row.id} changed meanwhile; read it again"
            )
        ctx.poller.apply_pins()
        ctx.poller.request()  # every other replica serves the new split at once
        now = ctx.poll.publisher.served
        notifier = deps().notifier
        if action == "abort" and candidate is not None and now is not None and notifier:
            notifier.announce(
                candidate, now, [env], "abort", reason or f"aborted by {principal.name}"
            )
    except ApiError as exc:
        record(audited, env, f"{exc.status} {exc.code}", who=actor(exc))
        raise
    record(audited, env, "200", who=principal.name,
           detail={"rollout": written.id, "percent": written.percent, "state": written.state,
                   "candidate": written.candidate, "reason": reason})  # fmt: skip
    log.info("%s: rollout %s %s, now %d%% %s", principal.name, written.id, action,
             written.percent, written.state)  # fmt: skip
    return json_response(_doc(ctx, written, now or served))


def make_blueprint(ctx: RolloutContext) -> Blueprint:
    """The rollout routes."""
    bp = Blueprint("rollouts", __name__)
    bp.register_error_handler(SQLAlchemyError, store_down("rollout"))
    bp.add_url_rule("/v1/rollouts/<env>", "show", lambda env: show(ctx, env), methods=["GET"])
    bp.add_url_rule(
        "/v1/rollouts/<env>/<action>",
        "act",
        lambda env, action: act(ctx, env, action),
        methods=["POST"],
    )
    return bp
