"""What a rollout does next: pure decisions over its row, the head and the clock.

- A new commit that changes an environment with `rollouts:` in gitconf.yaml starts a rollout:
  its candidate is the commit, its stable what the environment was served, at the first step.
- A newer commit during a rollout replaces the candidate; the rollout (and its id, so the
  same instances go first) starts again at the first step.
- A running rollout moves to the next step after `bake` seconds; at 100 % it is promoted
  (the candidate is served to everyone).
- promote moves to the next step now, pause stops the clock, resume starts it again, abort
  serves everyone the stable revision (until a newer commit starts a new rollout).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gitconf.store.rollouts import ACTIVE, HOLDING, Rollout

__all__ = ["ACTIONS", "ActionRefused", "act", "advance", "for_head"]

ACTIONS = ("promote", "pause", "resume", "abort")


class ActionRefused(Exception):
    """An action that does not apply to the rollout's state (a 409)."""


def _next_step(
    row: Rollout, now: dt.datetime, action: str, actor: str, reason: str | None
) -> Rollout:
    step = min(row.step + 1, len(row.steps) - 1)
    state = "promoted" if row.steps[step] >= 100 else "running"
    return row._replace(step=step, state=state, step_started_at=now, last_action=action,
                        last_actor=actor, last_reason=reason)  # fmt: skip


def for_head(
    row: Rollout | None,
    env: str,
    config: Mapping[str, Any] | None,
    head: str,
    served_from: str,
    changed: bool,
    now: dt.datetime,
) -> Rollout | None:
    """The row after head was compiled (None: nothing to write). config is the head's
    `rollouts:` entry for env, served_from the revision env is served from now, changed
    whether head changes env's configs."""
    if row is not None and row.state in ACTIVE:
        if row.candidate == head:
            return None
        return row._replace(
            candidate=head,
            step=0,
            state="running",
            replaced=(*row.replaced, row.candidate),
            step_started_at=now,
            last_action="replaced",
            last_actor="gitconf",
            last_reason=f"{head[:12]} is newer than the candidate {row.candidate[:12]}",
        )
    if row is not None and row.state == "aborted" and row.candidate == head:
        return None
    if config is None or not changed:
        return None
    steps = tuple(int(p) for p in config["steps"])
    return Rollout(
        environment=env,
        id=f"{env}.{head[:12]}",
        stable=row.stable if row is not None and row.state == "aborted" else served_from,
        candidate=head,
        steps=steps,
        bake=float(config.get("bake", 600)),
        step=0,
        state="promoted" if steps[0] >= 100 else "running",
        replaced=(),
        started_at=now,
        step_started_at=now,
        last_action="started",
        last_actor="gitconf",
        last_reason=None,
        version=row.version if row is not None else 0,
    )


def advance(row: Rollout, now: dt.datetime) -> Rollout | None:
    """The row after its bake, if its next step is due (None: nothing to write)."""
    due = row.next_step_at()
    if due is None or now < due:
        return None
    return _next_step(row, now, "baked", "gitconf", f"step {row.step} baked {row.bake:g} s")


def act(row: Rollout, action: str, actor: str, reason: str | None, now: dt.datetime) -> Rollout:
    """The row after an action of the API; ActionRefused if it does not apply."""
    if row.state not in ACTIVE:
        raise ActionRefused(f"the rollout {row.id} is {row.state}: nothing to {action}")
    if action == "promote":
        return _next_step(row, now, action, actor, reason)
    if action == "pause":
        if row.state == "paused":
            raise ActionRefused(f"the rollout {row.id} is paused already")
        return row._replace(
            state="paused", last_action=action, last_actor=actor, last_reason=reason
        )
    if action == "resume":
        if row.state != "paused":
            raise ActionRefused(f"the rollout {row.id} is not paused")
        return row._replace(state="running", step_started_at=now, last_action=action,
                            last_actor=actor, last_reason=reason)  # fmt: skip
    if action == "abort":
        return row._replace(state="aborted", last_action=action, last_actor=actor,
                            last_reason=reason)  # fmt: skip
    raise ValueError(action)


def holds(row: Rollout, head: str) -> bool:
    """Whether the rollout keeps its environment's stable revision served (to everyone not
    on the candidate) while head is the branch head."""
    return row.state in HOLDING and row.candidate == head
