"""UTC times as gitconf shows them: ISO 8601, to the millisecond, with a Z."""

from __future__ import annotations

import datetime as dt

import pytest

from gitconf.clock import aware, iso, utcnow

BERLIN_WINTER = dt.timezone(dt.timedelta(hours=1))
NEW_YORK_SUMMER = dt.timezone(dt.timedelta(hours=-4))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # SQLite hands back naive datetimes: they are UTC.
        (dt.datetime(2026, 1, 2, 3, 4, 5, 678901), "2026-01-02T03:04:05.678Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), "2026-01-02T03:04:05.678Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),
        # PostgreSQL hands back timestamptz in the session's TimeZone: still shown in UTC.
        (
            dt.datetime(2026, 1, 2, 4, 4, 5, 678000, tzinfo=BERLIN_WINTER),
            "2026-01-02T03:04:05.678Z",
        ),
        (
            dt.datetime(2026, 1, 1, 23, 4, 5, 678000, tzinfo=NEW_YORK_SUMMER),
            "2026-01-02T03:04:05.678Z",
        ),
    ],
    ids=["naive", "utc", "whole-seconds", "utc+1", "utc-4-across-midnight"],
)
def test_iso_is_utc_with_a_z_to_the_millisecond(value: dt.datetime, shown: str) -> None:
    assert iso(value) == shown


def test_iso_of_nothing_is_nothing() -> None:
    assert iso(None) is None


def test_aware_gives_the_same_instant_in_utc() -> None:
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert aware(naive) == naive.replace(tzinfo=dt.UTC)
    assert aware(naive).utcoffset() == dt.timedelta(0)
    local = dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=BERLIN_WINTER)
    assert aware(local) == local
    assert aware(local).utcoffset() == dt.timedelta(0)


def test_utcnow_is_aware_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    now = utcnow()
    assert now.utcoffset() == dt.timedelta(0)
    assert before <= now <= dt.datetime.now(dt.UTC)
