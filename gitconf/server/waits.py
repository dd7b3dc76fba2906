"""Long polls (`?wait=` with If-None-Match) as awaits on the event loop, not threads.

Each waiting request is a future filed under its (environment, service). A publish (on the
poll thread) hands the new revision to the loop, which resolves exactly the futures whose
config's body changed, a slice at a time so that reads arriving meanwhile are answered between
slices. What a long poll answers is decided by ConfigReader (begin, settle, timed_out), the
same as for a long poll the Flask view waits for in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gitconf.served import ServedRevision
from gitconf.server.reads import ConfigReader, Reply, Wait, too_many_waiters

__all__ = ["LongPolls"]

log = logging.getLogger(__name__)

SLICE = 500  # futures resolved per turn of the loop after a publish
ConfigKey = tuple[str, str]
_CLOSING = object()
_TIMEOUT = object()
_GONE = object()


class LongPolls:
    """The long polls of one server, on its event loop."""

    def __init__(self, reader: ConfigReader, max_waiters: int) -> None:
        self.reader = reader
        self.max_waiters = max_waiters
        self.waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # config -> waiting future -> the ETag of the JSON body it waits to see change
        self._by_key: dict[ConfigKey, dict[asyncio.Future[Any], str]] = {}
        self._closing = False
        # Environments in a rollout at the last publish (their waiters are all woken).
        self._rolling: frozenset[str] = frozenset()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait on this loop from now on."""
        self._loop = loop

    # -- from any thread ------------------------------------------------------------

    def published(self, _old: ServedRevision | None, new: ServedRevision) -> None:
        """A revision was published: wake the long polls whose config it changed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, new)

    def close(self) -> None:
        """The server is stopping: every long poll answers now (304), and new ones at once."""
        self._closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    # -- on the loop ----------------------------------------------------------------

    def _wake(self, new: ServedRevision) -> None:
        due: list[asyncio.Future[Any]] = []
        for key, futures in self._by_key.items():
            if key[0] in new.live or key[0] in self._rolling:
                # A rollout's step may move an instance to the candidate (or back): each
                # settles on its own side, and waits again if its config is the same.
                due.extend(futures)
                continue
            etag = new.identity(key)
            due.extend(future for future, seen in futures.items() if seen != etag)
        self._rolling = frozenset(new.live)
        self._resolve(due, new, 0)

    def _wake_all(self) -> None:
        self._resolve([f for futures in self._by_key.values() for f in futures], _CLOSING, 0)

    def _resolve(self, due: list[asyncio.Future[Any]], value: object, start: int) -> None:
        end = start + SLICE
        for future in due[start:end]:
            if not future.done():
                future.set_result(value)
        if end < len(due) and self._loop is not None:
            self._loop.call_soon(self._resolve, due, value, end)

    async def serve(
        self, begin: Callable[[], Reply | Wait], disconnected: Callable[[], Awaitable[Any]]
    ) -> Reply | None:
        """The reply to a config read that may wait; None if the client went away first.

        begin is ConfigReader.begin with the request's arguments (ApiError passes through).
        """
        outcome = begin()
        if isinstance(outcome, Reply):
            return outcome
        if self._closing:
            return self.reader.timed_out(outcome)
        if self.waiting >= self.max_waiters:
            raise too_many_waiters()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + outcome.seconds
        gone = asyncio.ensure_future(disconnected())
        self.waiting += 1
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return self.reader.timed_out(outcome)
                key = (outcome.env, outcome.service)
                # One future per wait, resolved by whichever comes first: a publish that
                # changed the config, the deadline, the client going away, or the stop.
                future: asyncio.Future[Any] = loop.create_future()
                futures = self._by_key.setdefault(key, {})
                futures[future] = outcome.served.identity(key) or ""
                timer = loop.call_later(remaining, _resolve_once, future, _TIMEOUT)
                on_gone = functools.partial(_gone, future)
                gone.add_done_callback(on_gone)
                try:
                    value = await future
                finally:
                    timer.cancel()
                    gone.remove_done_callback(on_gone)
                    del futures[future]
                    if not futures:
                        del self._by_key[key]
                if value is _GONE:
                    return None
                if value is _TIMEOUT or value is _CLOSING:
                    return self.reader.timed_out(outcome)
                settled = self.reader.settle(outcome, value)
                if isinstance(settled, Reply):
                    return settled
                outcome = settled
        finally:
            self.waiting -= 1
            gone.cancel()


def _resolve_once(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)


def _gone(future: asyncio.Future[Any], _task: object) -> None:
    _resolve_once(future, _GONE)
