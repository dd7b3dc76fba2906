"""How long a client waits before retrying: exponential backoff with full jitter, capped.

Pure: the random draw is an argument, so the policy is tested without waiting.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Backoff"]


class Backoff(NamedTuple):
    """Retry waits: the n-th failure in a row waits a uniform draw in [0, min(cap, first * 2**(n-1)))."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int, draw: float, asked: float | None = None) -> float:
        """Seconds to wait after `failures` failures in a row; draw is in [0, 1).

        asked is what the server's Retry-After said: never retry sooner than that (but not
        later than cap either, so a bad header cannot park the client).
        """
        ceiling = min(self.cap, self.first * 2.0 ** min(max(failures - 1, 0), 62))
        wait = ceiling * draw
        if asked is not None:
            wait = max(wait, min(asked, self.cap))
        return wait
