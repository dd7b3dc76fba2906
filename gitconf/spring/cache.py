"""Response bodies of the Spring routes, built once per (revision, request)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from gitconf.served import Body

__all__ = ["MAX_BYTES", "BodyCache"]

# The bytes of bodies kept at once. A body is as large as the configs it merges, and the key
# holds the profiles a caller names, so a count of entries bounds nothing: a few large
# Environments (or many requests naming different profiles) could hold gigabytes.
MAX_BYTES = 64 * 1024 * 1024


class BodyCache:
    """Response bodies by (revision, request), least recently used dropped past max_bytes."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, Body] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        """The bytes of the bodies kept now."""
        with self._lock:
            return self._bytes

    def get(self, key: Hashable, content_type: str, build: Callable[[], bytes]) -> Body:
        """The cached body for key, built (outside the lock) on a miss."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                return body
        data = build()
        body = Body(data, f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"', content_type)
        if len(data) > self.max_bytes:  # served, but never kept: it would evict everything
            return body
        with self._lock:
            old = self._bodies.pop(key, None)  # built twice by racing requests: count it once
            if old is not None:
                self._bytes -= len(old.data)
            self._bodies[key] = body
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._bytes -= len(dropped.data)
        return body
