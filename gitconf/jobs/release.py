"""What a poll serves of the pins and rollouts in the store: read them, plan and step the
rollouts, and compose the served state (gitconf.release.compose) from the head.

Plain functions over the PollContext, which gitconf.jobs.poll calls in its ticks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gitconf.clock import utcnow
from gitconf.release import plan
from gitconf.release.compose import compose
from gitconf.served import ServedRevision
from gitconf.store.rollouts import Rollout

if TYPE_CHECKING:
    from gitconf.jobs.poll import PollContext

__all__ = [
    "advance_rollouts",
    "move_of",
    "moves_of",
    "pin_map",
    "pins_moved",
    "plan_rollouts",
    "read_pins",
    "serve",
]

log = logging.getLogger(__name__)


def read_pins(ctx: PollContext) -> None:
    """Read the pins and rollouts (keeping the ones read last while the store is down)."""
    try:
        if ctx.pins is not None:
            ctx.pinned = ctx.pins.active()
        if ctx.rollouts is not None:
            ctx.rolled = ctx.rollouts.all()
    except Exception as exc:  # the store is down: keep serving the pins read last
        ctx.status.store_error = f"reading the pins and rollouts: {exc}"
        log.error("cannot read the pins and rollouts: %s; keeping the ones read before", exc)


def _user_pins(ctx: PollContext, served: ServedRevision | None) -> dict[str, str]:
    """The pins of the pin API (or, never read yet, every pin served now)."""
    if ctx.pinned is None:
        return dict(served.pinned) if served is not None else {}
    return {env: pin.revision for env, pin in ctx.pinned.items()}


def _holding(ctx: PollContext, head: str) -> dict[str, Rollout]:
    """The rollouts that keep their environment's stable revision served at head (a pin of
    the pin API wins over a rollout)."""
    pinned = ctx.pinned or {}
    return {
        env: row
        for env, row in (ctx.rolled or {}).items()
        if env not in pinned and plan.holds(row, head)
    }


def pin_map(
    ctx: PollContext, served: ServedRevision | None, head: str | None = None
) -> dict[str, str]:
    """What each pinned environment is served from: its pin, or its rollout's stable."""
    head = head or (served.revision if served is not None else "")
    wanted = _user_pins(ctx, served)
    if ctx.rolled is not None:
        wanted.update((env, row.stable) for env, row in _holding(ctx, head).items())
    return wanted


def _live(ctx: PollContext, head: str) -> dict[str, tuple[str, int, str]]:
    """The rollouts in progress at head: (id, percent, state) by environment."""
    return {e: (r.id, r.percent, r.state) for e, r in _holding(ctx, head).items()}


def pins_moved(ctx: PollContext, served: ServedRevision) -> bool:
    wanted = {e: sha for e, sha in pin_map(ctx, served).items() if sha != served.revision}
    live = {e: (r.id, r.percent, r.state) for e, r in served.live.items()}
    return wanted != served.pinned or (
        ctx.rolled is not None and live != _live(ctx, served.revision)
    )


def move_of(
    ctx: PollContext, served: ServedRevision, wanted: dict[str, str]
) -> tuple[str, str | None] | None:
    """What a change of the pins is: a pin, an unpin or a promoted rollout, as its first
    environment's (None: the pins stay; a rollout's step or state changed)."""
    moves = moves_of(ctx, served, wanted)
    return moves[min(moves)] if moves else None


def moves_of(
    ctx: PollContext, served: ServedRevision, wanted: dict[str, str]
) -> dict[str, tuple[str, str | None]]:
    """Each environment whose pin changes: (pin | unpin | promote, its reason)."""
    pinned = ctx.pinned or {}
    moves: dict[str, tuple[str, str | None]] = {}
    for env in sorted(e for e, sha in wanted.items() if served.pinned.get(e) != sha):
        # Pinned anew, else its pin was lifted back to its rollout's stable revision.
        moves[env] = ("pin", pinned[env].reason) if env in pinned else _lifted(ctx, served, env)
    for env in sorted(set(served.pinned) - set(wanted)):
        moves[env] = _lifted(ctx, served, env)
    return moves


def _lifted(ctx: PollContext, served: ServedRevision, env: str) -> tuple[str, str | None]:
    """An environment's pin was lifted: unpinned (with why), or its rollout promoted."""
    row = (ctx.rolled or {}).get(env)
    if row is not None and row.state == "promoted" and row.candidate == served.revision:
        return "promote", row.last_reason or f"rollout {row.id} reached 100%"
    reason = None
    if ctx.pins is not None:
        try:
            gone = ctx.pins.cleared().get(env)
            reason = gone.cleared_reason if gone is not None else None
        except Exception as exc:
            log.warning("cannot read why %s was unpinned: %s", env, exc)
    return "unpin", reason


def serve(
    ctx: PollContext,
    head: ServedRevision,
    previous: ServedRevision | None,
    move: tuple[str, str | None] | None = None,
) -> ServedRevision:
    """head as served with the pins and rollouts: the stable state, each rollout's
    candidate state beside it."""
    wanted = pin_map(ctx, previous, head.revision)
    live = _live(ctx, head.revision) if ctx.rolled is not None else {}
    if not wanted and not live:
        return compose(head, {}, _no_fetch, move=move)
    assert ctx.fetch is not None
    return compose(
        head, wanted, ctx.fetch, previous=previous, move=move, live=live,
        candidate_pins=_user_pins(ctx, previous),
    )  # fmt: skip


def _no_fetch(sha: str) -> ServedRevision:
    raise LookupError(f"no revision {sha[:12]} to take pinned bodies from")


def plan_rollouts(ctx: PollContext, new: ServedRevision, served: ServedRevision | None) -> None:
    """Start, or replace the candidate of, the rollouts a new head makes (in the store, where
    the first replica to publish it writes them)."""
    if ctx.rollouts is None or served is None:
        return
    rows = ctx.rolled or {}
    now = utcnow()
    tried = False
    for env in sorted(set(new.rollouts) | set(rows)):
        if env not in new.environments:
            continue
        before = {k: v for k, v in served.identities().items() if k[0] == env}
        after = {k: v for k, v in new.identities().items() if k[0] == env}
        row = rows.get(env)
        planned = plan.for_head(
            row, env, new.rollouts.get(env), new.revision, served.revision_of(env),
            before != after, now,
        )  # fmt: skip
        if planned is None:
            continue
        tried = True
        try:
            written = ctx.rollouts.write(planned, row.version if row is not None else None)
        except Exception as exc:
            log.error("cannot write the rollout of %s: %s", env, exc)
            continue
        if written is not None:
            log.info("rollout %s: %s %s at %d%%", written.id, written.last_action,
                     written.candidate[:12], written.percent)  # fmt: skip
    if tried:
        # What this replica wrote, or what another one wrote first (its write then lost).
        read_pins(ctx)


def advance_rollouts(ctx: PollContext, head: str) -> None:
    """Move the rollouts whose step has baked to their next step (once across replicas)."""
    if ctx.rollouts is None:
        return
    now = utcnow()
    wrote = False
    for row in _holding(ctx, head).values():
        advanced = plan.advance(row, now)
        if advanced is None:
            continue
        try:
            written = ctx.rollouts.write(advanced, row.version)
        except Exception as exc:
            log.error("cannot advance the rollout %s: %s", row.id, exc)
            continue
        if written is not None:
            wrote = True
            log.info("rollout %s: step %d, %d%%", written.id, written.step, written.percent)
    if wrote:
        read_pins(ctx)
        for listener in ctx.on_rollout_moved:
            try:
                listener()
            except Exception:
                log.exception("a listener of rollout steps failed")
