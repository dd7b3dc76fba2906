"""What a rollout does next, as pure decisions: no store, no clock but the one given."""

from __future__ import annotations

import datetime as dt

import pytest

from gitconf.release import plan
from gitconf.store.rollouts import Rollout

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
S, C, D = "5" * 40, "c" * 40, "d" * 40
CONFIG = {"steps": [5, 25, 100], "bake": 600.0}


def started() -> Rollout:
    row = plan.for_head(None, "production", CONFIG, C, S, True, NOW)
    assert row is not None
    return row


def test_a_commit_that_changes_the_environment_starts_a_rollout_at_the_first_step() -> None:
    row = started()
    assert (row.id, row.stable, row.candidate, row.state, row.percent) == (
        f"production.{C[:12]}",
        S,
        C,
        "running",
        5,
    )
    assert row.next_step_at() == NOW + dt.timedelta(seconds=600)
    assert plan.for_head(None, "production", CONFIG, C, S, False, NOW) is None  # no change
    assert plan.for_head(None, "production", None, C, S, True, NOW) is None  # no rollouts:


def test_a_newer_commit_replaces_the_candidate_and_starts_again_with_the_same_id() -> None:
    row = plan.act(started(), "promote", "ops", None, NOW)
    later = NOW + dt.timedelta(minutes=1)
    replaced = plan.for_head(row, "production", CONFIG, D, C, True, later)
    assert replaced is not None
    assert (replaced.id, replaced.candidate, replaced.replaced, replaced.percent) == (
        row.id,
        D,
        (C,),
        5,
    )
    assert replaced.step_started_at == later and replaced.last_action == "replaced"
    assert plan.for_head(replaced, "production", CONFIG, D, C, True, later) is None  # same head


def test_bake_moves_one_step_at_a_time_and_100_promotes() -> None:
    row = started()
    assert plan.advance(row, NOW + dt.timedelta(seconds=599)) is None
    second = plan.advance(row, NOW + dt.timedelta(seconds=600))
    assert second is not None and second.percent == 25 and second.state == "running"
    last = plan.advance(second, NOW + dt.timedelta(seconds=1200))
    assert last is not None and last.state == "promoted" and last.percent == 100
    assert plan.advance(last, NOW + dt.timedelta(days=1)) is None
    paused = plan.act(row, "pause", "ops", "weekend", NOW)
    assert plan.advance(paused, NOW + dt.timedelta(days=1)) is None
    assert plan.advance(row._replace(bake=0.0), NOW + dt.timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("actions", "state", "percent"),
    [
        (["promote"], "running", 25),
        (["promote", "promote"], "promoted", 100),
        (["pause"], "paused", 5),
        (["pause", "resume"], "running", 5),
        (["pause", "promote"], "running", 25),
        (["abort"], "aborted", 0),
    ],
)
def test_actions(actions: list[str], state: str, percent: int) -> None:
    row = started()
    for action in actions:
        row = plan.act(row, action, "ops", None, NOW)
    assert (row.state, row.percent, row.last_actor) == (state, percent, "ops")


@pytest.mark.parametrize(
    ("actions", "refused"),
    [
        (["abort", "promote"], "is aborted: nothing to promote"),
        (["pause", "pause"], "is paused already"),
        (["resume"], "is not paused"),
        (["promote", "promote", "abort"], "is promoted: nothing to abort"),
    ],
)
def test_actions_that_do_not_apply_say_why(actions: list[str], refused: str) -> None:
    row = started()
    with pytest.raises(plan.ActionRefused, match=refused):
        for action in actions:
            row = plan.act(row, action, "ops", None, NOW)


def test_an_aborted_rollout_holds_the_stable_until_a_newer_commit_starts_anew() -> None:
    aborted = plan.act(started(), "abort", "ops", "p99", NOW)
    assert plan.holds(aborted, C) and not plan.holds(aborted, D)
    assert plan.for_head(aborted, "production", CONFIG, C, S, True, NOW) is None
    fresh = plan.for_head(aborted, "production", CONFIG, D, S, True, NOW)
    assert fresh is not None
    assert (fresh.id, fresh.stable, fresh.candidate, fresh.state) == (
        f"production.{D[:12]}",
        S,
        D,
        "running",
    )
    assert fresh.version == aborted.version  # written over the aborted row
