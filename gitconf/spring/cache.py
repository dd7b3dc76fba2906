"""Response bodies of the Spring routes, built once per (revision, request)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from gitconf.served import Body

__all__ = ["BodyCache"]


class BodyCache:
    """Response bodies by (revision, request), least recently used dropped past size."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._bodies: OrderedDict[Hashable, Body] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, content_type: str, build: Callable[[], bytes]) -> Body:
        """The cached body for key, built (outside the lock) on a miss."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                return body
        data = build()
        body = Body(data, f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"', content_type)
        with self._lock:
            self._bodies[key] = body
            while len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return body
