"""How long a client waits before it retries: full jitter, doubling, capped, Retry-After."""

from __future__ import annotations

import pytest

from gitconf.client import Backoff


def test_backoff_is_full_jitter_doubling_to_a_cap() -> None:
    policy = Backoff(first=0.5, cap=30.0)
    assert [policy.delay(n, 0.999999) for n in (1, 2, 3, 4)] == pytest.approx([0.5, 1, 2, 4], 1e-5)
    assert policy.delay(3, 0.0) == 0.0  # full jitter: anywhere from 0
    assert policy.delay(40, 0.5) == 15.0  # capped
    assert policy.delay(1, 0.1, asked=5.0) == 5.0  # Retry-After is a floor
    assert policy.delay(1, 0.1, asked=3600.0) == 30.0  # but never past the cap


@pytest.mark.parametrize("failures", [0, 1])
def test_the_first_retry_waits_at_most_first(failures: int) -> None:
    assert Backoff().delay(failures, 0.5) == 0.25


def test_a_long_outage_neither_overflows_nor_passes_the_cap() -> None:
    assert Backoff().delay(10_000, 0.999) == pytest.approx(30.0 * 0.999)


def test_retry_after_shorter_than_the_draw_changes_nothing() -> None:
    assert Backoff(first=8.0).delay(1, 0.5, asked=1.0) == 4.0
