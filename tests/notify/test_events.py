"""Change sets, glob matching and the CloudEvents bodies (pure functions)."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from gitconf.notify.events import (
    CHANGED,
    REJECTED,
    Change,
    change_set,
    changed_event,
    encode,
    matches,
    rejected_event,
)
from gitconf.package_data import own_schema

A, B = "a" * 40, "b" * 40


def test_a_change_set_holds_what_changed_appeared_or_vanished() -> None:
    old_etags = {("prod", "pay"): '"1"', ("prod", "search"): '"2"', ("prod", "gone"): '"3"'}
    new_etags = {("prod", "pay"): '"9"', ("prod", "search"): '"2"', ("prod", "new"): '"4"'}
    # The compile worker's changed keys (tests/server/test_served.py checks them against a
    # cold diff).
    keys = {
        ("prod", "pay"): ("db.max", "x", "y"),
        ("prod", "gone"): ("k",),
        ("prod", "new"): ("n",),
    }
    new_values = {("prod", "pay"): {"db": {"max": 2}, "y": 1}, ("prod", "new"): {"n": 1}}
    changes = change_set(old_etags, new_etags, keys, new_values.__getitem__)
    assert changes == [
        Change("prod", "gone", "removed", None, '"3"', ("k",), None),
        Change("prod", "new", "added", '"4"', None, ("n",), {"n": 1}),
        Change(
            "prod",
            "pay",
            "changed",
            '"9"',
            '"1"',
            ("db.max", "x", "y"),
            new_values[("prod", "pay")],
        ),
    ]


def test_no_base_means_every_config_appeared() -> None:
    changes = change_set({}, {("s", "p"): '"1"'}, {})
    assert [c.kind for c in changes] == ["added"]
    assert changes[0].keys == ()


@pytest.mark.parametrize(
    ("environments", "services", "env", "service", "expected"),
    [
        (["*"], ["*"], "production", "payments", True),
        (["production*"], ["payments"], "production", "payments", True),
        (["production*"], ["payments"], "production-eu", "payments", True),
        (["production*"], ["payments"], "staging", "payments", False),
        (["production*"], ["payments"], "production", "search", False),
        (["staging", "dev"], ["pay*", "search"], "dev", "search", True),
        (["prod?"], ["*"], "prod1", "x", True),
        (["prod?"], ["*"], "prod12", "x", False),
        (["[ps]*"], ["*"], "staging", "x", True),
        (["Production"], ["*"], "production", "x", False),  # case-sensitive
    ],
)
def test_glob_matching(
    environments: list[str], services: list[str], env: str, service: str, expected: bool
) -> None:
    assert matches(environments, services, env, service) is expected


def test_a_changed_event_is_a_cloudevent_of_our_schema() -> None:
    change = Change("production", "payments", "changed", '"e2"', '"e1"', ("db.pool.max",), {"a": 1})
    event = changed_event(
        change,
        event_id="evt_1",
        source="http://gitconf.internal",
        time="2026-01-02T03:04:05.000Z",
        revision=B,
        previous_revision=A,
        base_url="http://gitconf.internal",
    )
    Draft202012Validator(own_schema("event")).validate(event)
    assert event["specversion"] == "1.0"
    assert event["type"] == CHANGED
    assert event["subject"] == "production/payments"
    assert event["datacontenttype"] == "application/json"
    assert event["data"]["fetch_url"] == "http://gitconf.internal/v1/config/production/payments"
    assert event["data"]["changed_keys"] == ["db.pool.max"]
    assert "config" not in event["data"]
    with_config = changed_event(
        change,
        event_id="evt_2",
        source="s",
        time="2026-01-02T03:04:05.000Z",
        revision=B,
        previous_revision=None,
        base_url="http://x",
        include_config=True,
    )
    assert with_config["data"]["config"] == {"a": 1}
    assert with_config["data"]["previous_revision"] is None


def test_a_rejected_event_lists_the_problems() -> None:
    event = rejected_event(
        event_id="evt_3",
        source="http://gitconf.internal",
        time="2026-01-02T03:04:05.000Z",
        revision=B,
        served_revision=A,
        problems=["base/a.yaml:1:1: bad"],
    )
    Draft202012Validator(own_schema("event")).validate(event)
    assert event["type"] == REJECTED
    assert event["data"] == {
        "revision": B,
        "served_revision": A,
        "problems": ["base/a.yaml:1:1: bad"],
    }
    assert encode(event).startswith(b'{"specversion":"1.0"')
