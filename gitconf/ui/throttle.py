"""Refused dashboard logins, counted per client address: past a few in a minute, wait.

Tokens are long random strings, so guessing one is not the risk; a script hammering the login
form is (every refusal is a log line and an audit row). Pure: the clock is an argument.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """At most `limit` refused logins per client address in `window` seconds."""

    def __init__(self, limit: int = 10, window: float = 60.0, clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.clients = clients  # addresses remembered at most (the oldest are forgotten)
        self._refused: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str, now: float) -> float:
        """Seconds client must wait before its next try (0: it may try now)."""
        with self._lock:
            times = self._recent(client, now)
            if times is None or len(times) < self.limit:
                return 0.0
            return max(0.0, times[0] + self.window - now)

    def refused(self, client: str, now: float) -> None:
        """Count a refused login of client."""
        with self._lock:
            times = self._recent(client, now)
            if times is None:
                times = self._refused[client] = deque()
                while len(self._refused) > self.clients:
                    self._refused.popitem(last=False)
            times.append(now)
            self._refused.move_to_end(client)

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._refused.get(client)
        if times is not None:
            while times and times[0] <= now - self.window:
                times.popleft()
        return times
