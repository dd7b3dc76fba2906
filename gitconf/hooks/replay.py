"""Standard Webhooks message ids seen recently, so that a captured request cannot be replayed."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ReplayCache"]


class ReplayCache:
    """Bounded memory of accepted webhook-ids, each kept until its timestamp goes stale.

    A replay must carry the same id and timestamp (the signature covers both), and the
    timestamp check refuses it once the tolerance has passed: so an id need only be kept
    until `timestamp + tolerance`, at most 10 minutes. Past `limit` entries the oldest go.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, key: str, expires_at: float, now: float) -> bool:
        """Record key until expires_at; False if it is already recorded and unexpired."""
        with self._lock:
            while self._expiry:
                oldest, expiry = next(iter(self._expiry.items()))
                if expiry > now:
                    break
                del self._expiry[oldest]
            if self._expiry.get(key, 0.0) > now:
                return False
            self._expiry[key] = expires_at
            self._expiry.move_to_end(key)
            while len(self._expiry) > self.limit:
                self._expiry.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._expiry)
