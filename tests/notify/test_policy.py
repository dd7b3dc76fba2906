"""Backoff, Retry-After and when a delivery is dead."""

from __future__ import annotations

import datetime as dt

import pytest

from gitconf.notify.policy import (
    MAX_RETRY_AFTER,
    DeliveryPolicy,
    backoff,
    delay,
    judge,
    retry_after,
)

DEFAULT = DeliveryPolicy()
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("attempt", "nominal"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (8, 128.0), (9, 256.0)]
)
def test_backoff_doubles_from_about_one_second_with_jitter(attempt: int, nominal: float) -> None:
    assert backoff(attempt, DEFAULT, 0.5) == pytest.approx(nominal)
    assert backoff(attempt, DEFAULT, 0.0) == pytest.approx(nominal * 0.8)
    assert backoff(attempt, DEFAULT, 0.999999) == pytest.approx(nominal * 1.2, rel=1e-5)


def test_backoff_is_capped_at_max_backoff() -> None:
    assert backoff(11, DEFAULT, 0.5) == 600.0
    assert backoff(500, DEFAULT, 0.999) == 600.0
    assert backoff(3, DeliveryPolicy(first_backoff=0.05, max_backoff=0.15), 0.5) == 0.15


def test_policy_from_settings_keeps_defaults() -> None:
    policy = DeliveryPolicy.from_settings({"timeout": 3, "concurrency": 2.0})
    assert policy == DeliveryPolicy(timeout=3, concurrency=2)
    assert DeliveryPolicy.from_settings({}) == DeliveryPolicy(10.0, 1.0, 600.0, 86400.0, 8)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", T0) == 120.0
    assert retry_after("Thu, 01 Jan 2026 00:00:30 GMT", T0) == 30.0
    assert retry_after("Wed, 31 Dec 2025 00:00:00 GMT", T0) == 0.0
    assert retry_after("soon", T0) is None
    assert retry_after(None, T0) is None


def test_judge_retries_until_max_age_then_declares_dead() -> None:
    policy = DeliveryPolicy(max_age=100)
    verdict = judge(attempt=1, created_at=T0, now=T0, policy=policy, draw=0.5)
    assert verdict == (False, T0 + dt.timedelta(seconds=1))
    late = T0 + dt.timedelta(seconds=99.5)
    verdict = judge(attempt=9, created_at=T0, now=late, policy=policy, draw=0.5)
    assert verdict == (False, T0 + dt.timedelta(seconds=100)), "the last try is at max_age"
    over = T0 + dt.timedelta(seconds=100)
    assert judge(attempt=10, created_at=T0, now=over, policy=policy, draw=0.5).dead


def test_judge_honours_retry_after_over_the_backoff() -> None:
    verdict = judge(attempt=1, created_at=T0, now=T0, policy=DEFAULT, draw=0.5, asked=900)
    assert verdict.next_at == T0 + dt.timedelta(seconds=900)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (" 120 ", 120.0),
        ("0", 0.0),
        ("3600", 3600.0),
        ("3601", MAX_RETRY_AFTER),
        ("9" * 5000, MAX_RETRY_AFTER),
        ("Sat, 01 Jan 2028 00:00:00 GMT", MAX_RETRY_AFTER),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("-5", None),
        ("1.5", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits: str.isdigit() says yes, HTTP says no
        ("\u00b2", None),  # a superscript two: isdigit() again, and float() refuses it
        ("Thu, 01 Jan 99999 00:00:00 GMT", None),
        ("Mon, 31 Feb 2026 00:00:00 GMT", None),
    ],
)
def test_retry_after_is_bounded_and_strict(value: str, seconds: float | None) -> None:
    assert retry_after(value, T0) == seconds


@pytest.mark.parametrize("attempt", [1, 4, 9, 30])
def test_retry_after_replaces_the_backoff_whatever_the_attempt(attempt: int) -> None:
    policy = DeliveryPolicy(first_backoff=0.5)
    assert delay(attempt, policy, 0.99, asked=1) == 1
    assert delay(attempt, policy, 0.99, asked=900) == 900, "past max_backoff too"
    assert delay(attempt, policy, 0.0, asked=0) == 0.5, "never sooner than first_backoff"
    assert delay(attempt, policy, 0.5, asked=None) == backoff(attempt, policy, 0.5)
    verdict = judge(attempt=attempt, created_at=T0, now=T0, policy=policy, draw=0.99, asked=2)
    assert verdict == (False, T0 + dt.timedelta(seconds=2))


def test_retry_after_is_bounded_by_max_age() -> None:
    policy = DeliveryPolicy(max_age=600)
    verdict = judge(attempt=1, created_at=T0, now=T0, policy=policy, draw=0.5, asked=3600)
    assert verdict.next_at == T0 + dt.timedelta(seconds=600)
