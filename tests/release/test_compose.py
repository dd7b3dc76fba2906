"""The served state with pins and rollouts, composed from whole revisions (pure)."""

from __future__ import annotations

from gitconf.release.compose import compose, plain_head
from gitconf.served import ServedRevision, make_body

ENVS = ("staging", "production")


def revision(sha: str, pool: int) -> ServedRevision:
    bodies = {
        (env, svc): make_body(f'{{"pool": {pool}, "env": "{env}"}}'.encode(), "json")
        for env in ENVS
        for svc in ("payments",)
    }
    return ServedRevision(sha, ENVS, ("payments",), bodies)


OLD, HEAD = revision("0" * 40, 50), revision("1" * 40, 70)
FETCHED: list[str] = []


def fetch(sha: str) -> ServedRevision:
    FETCHED.append(sha)
    return {OLD.revision: OLD, HEAD.revision: HEAD}[sha]


def test_a_pinned_environment_is_served_from_its_pin_and_the_others_from_the_head() -> None:
    served = compose(HEAD, {"production": OLD.revision}, fetch)
    assert served.revision == HEAD.revision and served.pinned == {"production": OLD.revision}
    assert served.value("production", "payments")["pool"] == 50
    assert served.value("staging", "payments")["pool"] == 70
    assert served.revision_of("production") == OLD.revision
    assert served.revision_of("staging") == HEAD.revision
    assert served.json[("production", "payments")] is OLD.json[("production", "payments")]
    assert plain_head(served, fetch) is HEAD
    assert served.state == (HEAD.revision, (("production", OLD.revision),))


def test_no_pins_is_the_head_itself_and_a_pin_of_the_head_is_none() -> None:
    assert compose(HEAD, {}, fetch) is HEAD
    assert compose(HEAD, {"production": HEAD.revision}, fetch) is HEAD


def test_a_pin_served_before_is_taken_from_it_without_fetching() -> None:
    first = compose(HEAD, {"production": OLD.revision}, fetch)
    FETCHED.clear()
    newer = revision("2" * 40, 90)
    again = compose(newer, {"production": OLD.revision}, fetch, previous=first)
    assert FETCHED == []
    assert again.value("production", "payments")["pool"] == 50
    assert again.value("staging", "payments")["pool"] == 90


def test_a_rollout_serves_its_stable_and_holds_the_candidate_beside_it() -> None:
    stable = compose(
        HEAD,
        {"production": OLD.revision},
        fetch,
        live={"production": ("production.1", 25, "running")},
    )
    live = stable.live["production"]
    assert (live.id, live.percent, live.state) == ("production.1", 25, "running")
    assert stable.value("production", "payments")["pool"] == 50
    assert live.candidate.value("production", "payments")["pool"] == 70
    on = next(
        f"pod-{n}" for n in range(100) if stable.view_for("production", f"pod-{n}") is not stable
    )
    assert stable.view_for("production", on) is live.candidate
    assert stable.view_for("production", None) is stable  # unidentified: stable
    assert stable.view_for("staging", on) is stable  # not in the rollout
    aborted = compose(
        HEAD,
        {"production": OLD.revision},
        fetch,
        live={"production": ("production.1", 0, "aborted")},
    )
    assert aborted.view_for("production", on) is aborted
