"""When to render after changes: `wait: {min, max}`, as consul-template's wait. Pure: the
clock is an argument."""

from __future__ import annotations

__all__ = ["Burst"]

Key = tuple[str, str]


class Burst:
    """The configs changed since the last render, and when to render them.

    Render once no change came for `wait_min` seconds, and at the latest `wait_max` seconds
    after the first change of the burst, so a steady stream of commits cannot hold it off.
    """

    def __init__(self, wait_min: float, wait_max: float) -> None:
        self.wait_min = wait_min
        self.wait_max = wait_max
        self.keys: set[Key] = set()
        self.first = self.last = 0.0

    def add(self, key: Key, now: float) -> None:
        """A change of key at now."""
        if not self.keys:
            self.first = now
        self.last = now
        self.keys.add(key)

    def due(self) -> float | None:
        """When to render (a clock reading), None with nothing pending."""
        if not self.keys:
            return None
        return min(self.last + self.wait_min, self.first + self.wait_max)

    def take(self, now: float) -> set[Key]:
        """The keys to render now (and forget), or none if it is not time yet."""
        due = self.due()
        if due is None or now < due:
            return set()
        keys, self.keys = self.keys, set()
        return keys

    def clear(self) -> None:
        """Forget the pending keys (everything is rendered anyway)."""
        self.keys = set()
