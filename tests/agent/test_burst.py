"""wait: {min, max}: the coalescing of bursts, on a clock the test moves."""

from __future__ import annotations

from gitconf.agent.burst import Burst

A, B = ("production", "payments"), ("staging", "search")


def test_a_quiet_period_of_min_ends_a_burst() -> None:
    burst = Burst(wait_min=0.5, wait_max=2.0)
    assert burst.due() is None and burst.take(100.0) == set()
    burst.add(A, 10.0)
    burst.add(B, 10.3)
    assert burst.due() == 10.8
    assert burst.take(10.79) == set()
    assert burst.take(10.8) == {A, B}
    assert burst.due() is None


def test_a_steady_stream_renders_at_max_after_the_first_change() -> None:
    burst = Burst(wait_min=0.5, wait_max=2.0)
    rendered = []
    for step in range(40):  # a change every 0.2 s, for 8 s
        now = 10.0 + step * 0.2
        keys = burst.take(now)
        if keys:
            rendered.append(round(now, 1))
        burst.add(A, now)
    assert rendered == [12.0, 14.0, 16.0]  # every max (2 s), never waiting for a quiet 0.5 s


def test_zero_waits_render_at_once() -> None:
    burst = Burst(wait_min=0, wait_max=0)
    burst.add(A, 5.0)
    assert burst.take(5.0) == {A}
