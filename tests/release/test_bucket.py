"""The rollout bucket and the instance names it takes."""

from __future__ import annotations

import pytest

from gitconf.release.bucket import bucket, instance_name, on_candidate


@pytest.mark.parametrize(
    "header",
    ["web-7f9c:8080", "pod/checkout-5d8b@eu-west-1", "a" * 255, "10.0.3.7", "A.b_c-d"],
)
def test_a_usable_instance_name_is_kept(header: str) -> None:
    assert instance_name(header) == header


@pytest.mark.parametrize(
    "header", [None, "", "evil\x00", "two\nlines", "a" * 256, "spaces in it", "é", "x\x1b[31m"]
)
def test_anything_else_reads_as_unidentified(header: str | None) -> None:
    # Unidentified readers are served the stable side; a NUL would also stop the store's
    # writes of the instances seen (PostgreSQL's text refuses it).
    assert instance_name(header) is None
    assert not on_candidate("rollout-1", instance_name(header), 100)


def test_raising_the_percent_only_adds_instances() -> None:
    names = [f"pod-{i}" for i in range(400)]
    quarter = {n for n in names if on_candidate("r1", n, 25)}
    half = {n for n in names if on_candidate("r1", n, 50)}
    assert quarter <= half
    assert all(0 <= bucket("r1", n) <= 100 for n in names)
