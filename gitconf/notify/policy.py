"""The retry policy: exponential backoff with jitter, Retry-After, and when a delivery is dead.

Pure: the random draw and the current time are arguments.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "MAX_RETRY_AFTER",
    "DeliveryPolicy",
    "Verdict",
    "backoff",
    "delay",
    "judge",
    "retry_after",
]

JITTER = 0.2  # each wait is drawn from ±20% of the nominal one
# The longest a Retry-After is honoured for: a subscriber asking for a day (or a year) still
# hears again within the hour, and is told again then if it still wants the pause.
MAX_RETRY_AFTER = 3600.0
_DELTA_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 delay-seconds: ASCII digits only


class DeliveryPolicy(NamedTuple):
    """The `delivery:` settings, with their defaults."""

    timeout: float = 10.0
    first_backoff: float = 1.0
    max_backoff: float = 600.0
    max_age: float = 86400.0
    concurrency: int = 8
    lease: float | None = None  # None: 2 x timeout + 30

    @classmethod
    def from_settings(cls, delivery: Mapping[str, Any]) -> DeliveryPolicy:
        """The policy of the server settings' `delivery:` mapping."""
        known = {k: delivery[k] for k in cls._fields if k in delivery}
        policy = cls(**known)
        return policy._replace(concurrency=int(policy.concurrency))


def backoff(attempt: int, policy: DeliveryPolicy, draw: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based); draw is in [0, 1).

    The first retry comes after about first_backoff, each next one after about twice the
    last, never after more than max_backoff.
    """
    nominal = policy.first_backoff * 2.0 ** min(max(attempt - 1, 0), 62)
    jittered = nominal * (1 - JITTER + 2 * JITTER * draw)
    return min(jittered, policy.max_backoff)


def retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), at most
    MAX_RETRY_AFTER; None if absent or not one of those forms."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)  # float: thousands of digits are inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def delay(attempt: int, policy: DeliveryPolicy, draw: float, asked: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` before the next one.

    A Retry-After (`asked`) replaces the backoff, even past max_backoff: the subscriber knows
    best when it can take events. It is never less than first_backoff (so a subscriber that
    answers `Retry-After: 0` every time is not sent a request in a loop) nor more than
    MAX_RETRY_AFTER.
    """
    if asked is None:
        return backoff(attempt, policy, draw)
    return min(max(asked, policy.first_backoff), MAX_RETRY_AFTER)


class Verdict(NamedTuple):
    """What to do after a failed attempt: retry at `next_at`, or give up (dead)."""

    dead: bool
    next_at: dt.datetime | None


def judge(
    *,
    attempt: int,
    created_at: dt.datetime,
    now: dt.datetime,
    policy: DeliveryPolicy,
    draw: float,
    asked: float | None = None,
) -> Verdict:
    """After failed attempt number `attempt`: when to retry, or dead once max_age has passed.

    The wait is `delay`'s: a Retry-After (`asked`) replaces the backoff. The last retry is made
    at max_age, not skipped.
    """
    deadline = created_at + dt.timedelta(seconds=policy.max_age)
    if now >= deadline:
        return Verdict(True, None)
    wait = delay(attempt, policy, draw, asked)
    return Verdict(False, min(now + dt.timedelta(seconds=wait), deadline))
