"""`GET /v1/watch`: config changes as server-sent events, on the event loop.

One event per config whose body changed (or appeared, or vanished) in a published revision:
`id: <revision>`, `event: config.changed`, `data:` the webhook notification's data object
(gitconf.notify.events) with `changed` beside `changed_keys`. A comment line every 15 s keeps
proxies from closing the stream. `Last-Event-ID` resumes: the changes published since that
revision are sent first, or one `event: resync` when this server no longer holds them (the
client then fetches its configs again). The events of a publish are made once, on the poll
thread; each stream only filters them by its globs and its token's scopes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from gitconf.notify.events import Change, change_set, changed_event
from gitconf.release.bucket import on_candidate
from gitconf.served import ServedRevision
from gitconf.server.auth import Principal
from gitconf.server.errors import ApiError
from gitconf.server.reads import too_many_waiters

__all__ = ["Batch", "Watch", "parse_globs"]

log = logging.getLogger(__name__)

HEARTBEAT = 15.0
HISTORY = 64  # publishes kept for Last-Event-ID
HISTORY_BYTES = 16 * 1024 * 1024  # and at most this many bytes of events in all
QUEUE = 64  # publishes a stream may fall behind by before it is told to resync
MAX_GLOBS = 64
MAX_GLOB = 255
_CLOSE = object()
MAX_LITERAL = 256  # configs a stream of plain names may look up (more: matched as globs)


class Event(NamedTuple):
    """One config.changed event, ready to send."""

    environment: str
    service: str
    data: bytes  # the whole `id:/event:/data:` block


# An environment in a rollout at either end of a publish: its rollout then and now, as
# (id, percent, state) or None, and its events for each (was on the candidate, is on it).
Split = tuple[tuple[tuple[str, int, str] | None, tuple[str, int, str] | None],
              dict[tuple[bool, bool], tuple[Event, ...]]]  # fmt: skip


def _side(spec: tuple[str, int, str] | None, instance: str) -> bool:
    return spec is not None and spec[2] != "aborted" and on_candidate(spec[0], instance, spec[1])


class Batch:
    """The events of one publish, and each stream filter's share of them, made once: streams
    with the same token scopes and globs (most of a fleet) share one rendering. A stream of
    an identified instance (X-Gitconf-Instance) gets, for an environment in a rollout, the
    events of the side it was and is on."""

    __slots__ = ("_by_config", "events", "previous", "rendered", "revision", "size", "splits")

    def __init__(
        self,
        revision: str,
        previous: str | None,
        events: tuple[Event, ...],
        splits: dict[str, Split] | None = None,
    ) -> None:
        self.revision = revision
        self.previous = previous
        self.events = events
        self.splits = splits or {}
        self.size = sum(len(e.data) for e in events) + sum(
            len(e.data) for _, sides in self.splits.values() for ev in sides.values() for e in ev
        )
        self.rendered: dict[tuple[Any, ...], bytes] = {}
        self._by_config: dict[tuple[str, str], list[int]] | None = None

    def _of_configs(self, configs: tuple[tuple[str, str], ...]) -> list[Event]:
        """The events of these configs, in batch order: a look-up per config, so a stream of
        one config costs the same in a publish of 20,000 changes as in one of a few."""
        if self._by_config is None:
            index: dict[tuple[str, str], list[int]] = {}
            for at, event in enumerate(self.events):
                index.setdefault((event.environment, event.service), []).append(at)
            self._by_config = index
        found = sorted(at for key in configs for at in self._by_config.get(key, ()))
        return [self.events[at] for at in found]

    def for_stream(self, stream: _Stream) -> bytes:
        """The events a stream is to get, as the bytes to send."""
        key: tuple[Any, ...] = stream.signature
        chosen: Iterable[Event] = self.events
        if stream.instance and self.splits:
            sides = {
                env: (_side(then, stream.instance), _side(now, stream.instance))
                for env, ((then, now), _) in self.splits.items()
            }
            key = (*key, tuple(sorted(sides.items())))
            chosen = [e for e in self.events if e.environment not in self.splits]
            for env, side in sorted(sides.items()):
                chosen += self.splits[env][1].get(side, ())
        found = self.rendered.get(key)
        if found is None:
            if chosen is self.events and stream.configs is not None:
                chosen = self._of_configs(stream.configs)
            found = b"".join(e.data for e in chosen if stream.wants(e))
            if len(self.rendered) < 1024:
                self.rendered[key] = found
        return found


def parse_globs(value: str | None, what: str) -> tuple[str, ...]:
    """Comma-separated globs of a query parameter (`*` when absent); ApiError 400 if bad."""
    if value is None or value == "":
        return ("*",)
    globs = tuple(g.strip() for g in value.split(",") if g.strip())
    if not globs or len(globs) > MAX_GLOBS:
        raise ApiError(400, f"bad_{what}", f"{what}: give 1 to {MAX_GLOBS} comma-separated globs")
    for glob in globs:
        if len(glob) > MAX_GLOB or any(ord(c) < 32 or c == "\x7f" for c in glob):
            raise ApiError(400, f"bad_{what}", f"{what}: {glob[:40]!r} is not a usable glob")
    return globs


def _matcher(globs: Iterable[str]) -> Callable[[str], bool]:
    pattern = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
    return lambda name: pattern.match(name) is not None


def make_batch(old: ServedRevision | None, new: ServedRevision, base_url: str) -> Batch:
    """The events of publishing new over old, and of each side of the rollouts in either."""
    batch = _events(old, new, base_url)
    rolling = set(new.live) | (set(old.live) if old is not None else set())
    if not rolling:
        return batch
    splits: dict[str, Split] = {}
    for env in sorted(rolling):
        then = old.live.get(env) if old is not None else None
        now = new.live.get(env)
        sides: dict[tuple[bool, bool], tuple[Event, ...]] = {}
        for was in (False, True):
            for is_ in (False, True):
                if (was and then is None) or (is_ and now is None):
                    continue
                before = then.candidate if was and then is not None else old
                after = now.candidate if is_ and now is not None else new
                events = _events(before, after, base_url).events
                sides[(was, is_)] = tuple(e for e in events if e.environment == env)
        spec_then = (then.id, then.percent, then.state) if then is not None else None
        spec_now = (now.id, now.percent, now.state) if now is not None else None
        splits[env] = ((spec_then, spec_now), sides)
    return Batch(batch.revision, batch.previous, batch.events, splits)


def _events(old: ServedRevision | None, new: ServedRevision, base_url: str) -> Batch:
    """The events of publishing new over old (keys as the compile worker found them)."""
    keys = new.changed if old is not None and new.base == old.revision else {}
    changes: list[Change] = change_set(
        old.etags() if old else {},
        new.etags(),
        keys,
        old_ids=old.identities() if old else {},
        new_ids=new.identities(),
    )
    previous = old.revision if old is not None else None
    events = []
    for change in changes:
        event = changed_event(
            change,
            event_id="",
            source=base_url,
            time="",
            revision=new.revision_of(change.environment),
            previous_revision=old.revision_of(change.environment) if old is not None else None,
            base_url=base_url,
        )
        data = dict(event["data"])
        data["changed"] = data["changed_keys"]
        block = (
            f"id: {new.revision}\nevent: config.changed\ndata: "
            + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            + "\n\n"
        ).encode()
        events.append(Event(change.environment, change.service, block))
    return Batch(new.revision, previous, tuple(events))


class _Stream:
    def __init__(
        self,
        principal: Principal,
        environments: tuple[str, ...],
        services: tuple[str, ...],
        instance: str | None = None,
    ) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE)
        self.instance = instance
        self.signature = (principal.scopes, environments, services)
        # Names without glob characters: the configs it watches, looked up, not matched.
        literal = not any(c in g for g in (*environments, *services) for c in "*?[")
        self.configs = (
            tuple((e, s) for e in environments for s in services)
            if literal and len(environments) * len(services) <= MAX_LITERAL
            else None
        )
        self._env = _matcher(environments)
        self._service = _matcher(services)
        self._principal = principal
        self._readable: dict[tuple[str, str], bool] = {}

    def wants(self, event: Event) -> bool:
        key = (event.environment, event.service)
        readable = self._readable.get(key)
        if readable is None:
            readable = self._readable[key] = self._principal.can_read(*key)
        return readable and self._env(event.environment) and self._service(event.service)

    def render(self, batch: Batch) -> bytes:
        return batch.for_stream(self)

    def offer(self, item: object) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def control(self, item: object) -> None:
        """Drop what is queued and queue item (resync, close) instead."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(item)


class Watch:
    """The event streams of one server."""

    def __init__(
        self, base_url: str, max_streams: int, current: Callable[[], ServedRevision | None]
    ) -> None:
        self.base_url = base_url
        self.max_streams = max_streams
        self.current = current
        self.history: deque[Batch] = deque()
        self._history_bytes = 0
        self._streams: set[_Stream] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def streams(self) -> int:
        """Streams open now."""
        return len(self._streams)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve streams on this loop."""
        self._loop = loop

    # -- from any thread ------------------------------------------------------------

    def published(self, old: ServedRevision | None, new: ServedRevision) -> None:
        """A revision was published: make its events once and hand them to the loop."""
        batch = make_batch(old, new, self.base_url)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, batch)
        else:
            self._remember(batch)

    def close(self) -> None:
        """The server is stopping: end every stream."""
        self._closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._close_all)

    # -- on the loop ----------------------------------------------------------------

    def _remember(self, batch: Batch) -> None:
        if self.history:
            self.history[-1].rendered.clear()  # replays of older batches render anew
        self.history.append(batch)
        self._history_bytes += batch.size
        while len(self.history) > HISTORY or (
            self._history_bytes > HISTORY_BYTES and len(self.history) > 1
        ):
            self._history_bytes -= self.history.popleft().size

    def _dispatch(self, batch: Batch) -> None:
        self._remember(batch)
        for stream in self._streams:
            if not stream.offer(batch):
                # Too far behind: it could only be told half of it. It resyncs.
                stream.control("resync")

    def _close_all(self) -> None:
        for stream in self._streams:
            stream.control(_CLOSE)

    def _since(self, revision: str) -> list[Batch] | None:
        """The batches published after revision; None if it is not one this server knows."""
        current = self.current()
        if (
            current is not None
            and current.revision == revision
            and (not self.history or self.history[-1].revision == revision)
        ):
            return []
        for index in range(len(self.history) - 1, -1, -1):
            if self.history[index].revision == revision:
                return list(self.history)[index + 1 :]
        return None

    async def serve(
        self,
        principal: Principal,
        environments: tuple[str, ...],
        services: tuple[str, ...],
        last_event_id: str | None,
        start: Callable[[int, list[tuple[str, str]]], Any],
        instance: str | None = None,
    ) -> None:
        """Stream events until the client goes or the server stops.

        start(status, headers) opens the response and returns its transport.
        """
        if self._closing:
            raise ApiError(503, "stopping", "the server is stopping", headers={"Retry-After": "1"})
        if len(self._streams) >= self.max_streams:
            raise too_many_waiters()
        stream = _Stream(principal, environments, services, instance)
        self._streams.add(stream)
        try:
            transport = start(
                200,
                [
                    ("Content-Type", "text/event-stream; charset=utf-8"),
                    ("Cache-Control", "no-cache"),
                    ("X-Accel-Buffering", "no"),
                ],
            )
            current = self.current()
            opening = [b"retry: 2000\n"]
            if current is not None:
                opening.append(f": serving {current.revision}\n".encode())
            opening.append(b"\n")
            if last_event_id:
                since = self._since(last_event_id.strip())
                if since is None:
                    data = json.dumps({"revision": current.revision if current else None})
                    opening.append(f"event: resync\ndata: {data}\n\n".encode())
                else:
                    opening.extend(stream.render(batch) for batch in since)
            await transport.send_bytes(b"".join(opening))
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), HEARTBEAT)
                except TimeoutError:
                    await transport.send_bytes(b": keep-alive\n\n")
                    continue
                if item is _CLOSE:
                    return
                if item == "resync":
                    current = self.current()
                    data = json.dumps({"revision": current.revision if current else None})
                    await transport.send_bytes(f"event: resync\ndata: {data}\n\n".encode())
                    return
                block = stream.render(item)
                if block:
                    await transport.send_bytes(block)
        except (OSError, RuntimeError) as exc:  # the client went away (granian's ProtocolClosed)
            log.debug("watch stream ended: %s", exc)
        finally:
            self._streams.discard(stream)
