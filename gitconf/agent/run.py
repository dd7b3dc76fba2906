"""The agent: keep each file of agent.yaml rendered from the config the server serves.

One ConfigClient per (environment, service) does the reading, the caching and the long
polls; their watch threads only queue what changed. The main thread owns everything else:
it coalesces bursts (`wait: {min, max}`), renders, writes and runs the commands, and takes
SIGTERM (stop) and SIGHUP (read agent.yaml again) from the same queue.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from gitconf.agent.burst import Burst
from gitconf.agent.config import AgentConfig, AgentConfigError, FileSpec, load_agent_config
from gitconf.agent.files import put_file
from gitconf.agent.render import RenderFailed, render_file
from gitconf.client import Change, ConfigClient, ConfigUnavailable

__all__ = ["Agent"]

log = logging.getLogger("gitconf.agent")

Key = tuple[str, str]


class _Copy(NamedTuple):
    config: Any
    revision: str | None


class Agent:
    """`gitconf agent`: run() until SIGTERM, or once() for init containers."""

    def __init__(self, config_path: str | Path, environ: Mapping[str, str] | None = None) -> None:
        self.config_path = Path(config_path)
        self.environ = environ
        self.config: AgentConfig = load_agent_config(self.config_path, environ)
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.clients: dict[Key, ConfigClient] = {}
        self.copies: dict[Key, _Copy] = {}
        self.generation = 0  # events of clients replaced by a SIGHUP are dropped

    def _open_clients(self) -> None:
        config = self.config
        self.clients = {
            key: ConfigClient(
                config.server,
                *key,
                token=config.token,
                cache_dir=config.cache_dir,
                cache_secrets=config.cache_secrets,
                instance=config.instance,
                ca_bundle=config.ca_bundle,
                backoff=config.backoff,
            )
            for key in config.configs()
        }

    def _close_clients(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients = {}

    def _read_all(self) -> list[Key]:
        """get() every config: from the server, else from the cache; the keys that failed."""
        failed = []
        for key, client in self.clients.items():
            try:
                config = client.get()
            except ConfigUnavailable as exc:
                log.error("%s", exc)
                failed.append(key)
                continue
            self.copies[key] = _Copy(config, client.revision)
            if client.stale:
                log.warning(
                    "%s/%s: the server cannot be reached; using the cached copy of revision %s",
                    *key,
                    client.revision,
                )
        return failed

    def _render(self, keys: set[Key] | None = None) -> bool:
        """Render the files of keys (all with a copy when None); whether all went well."""
        ok = True
        for spec in self.config.files:
            if (keys is not None and spec.key not in keys) or spec.key not in self.copies:
                continue
            ok = self._render_one(spec, self.copies[spec.key]) and ok
        return ok

    def _render_one(self, spec: FileSpec, copy: _Copy) -> bool:
        try:
            data = render_file(spec, copy.config, copy.revision)
            written = put_file(spec, data)
        except RenderFailed as exc:
            log.error("%s; the old file stays", exc)
            return False
        except OSError as exc:
            log.error("%s: cannot write: %s; the old file stays", spec.destination, exc)
            return False
        where = f"{spec.environment}/{spec.service} at revision {copy.revision}"
        if written.status == "unchanged":
            log.debug("%s (%s)", written.message, where)
            return True
        level = logging.INFO if written.status == "written" else logging.ERROR
        log.log(level, "%s (%s)", written.message, where)
        return written.status == "written"

    def once(self) -> int:
        """Render every file once and return the exit code: 0, or 1 if any file failed."""
        self._open_clients()
        try:
            failed = self._read_all()
            for spec in self.config.files:
                if spec.key in failed:
                    log.error("%s: not written: no copy of %s/%s", spec.destination, *spec.key)
            return 0 if self._render() and not failed else 1
        finally:
            self._close_clients()

    def _start(self) -> None:
        self.generation += 1
        self._open_clients()
        self._read_all()
        self._render()
        for key, client in self.clients.items():
            client.watch(self._queue_change(self.generation, key), wait=self.config.long_poll)
        log.info(
            "watching %d config(s) on %s for %d file(s)",
            len(self.clients),
            self.config.server,
            len(self.config.files),
        )

    def _queue_change(self, generation: int, key: Key) -> Callable[[Change], None]:
        def queue_change(change: Change) -> None:
            self.events.put(("change", generation, key, change))

        return queue_change

    def _reload_config(self) -> None:
        try:
            config = load_agent_config(self.config_path, self.environ)
        except AgentConfigError as exc:
            log.error("SIGHUP: %s; going on with the agent config as it was", exc)
            return
        log.info("SIGHUP: read %s again", self.config_path)
        logging.getLogger().setLevel(getattr(logging, config.log_level.upper(), logging.INFO))
        self._close_clients()
        self.config = config
        self.copies = {}
        self._start()

    def run(self) -> int:
        """Render, then follow changes until SIGTERM or SIGINT; the exit code."""
        signal.signal(signal.SIGTERM, lambda *_: self.events.put(("stop",)))
        signal.signal(signal.SIGINT, lambda *_: self.events.put(("stop",)))
        signal.signal(signal.SIGHUP, lambda *_: self.events.put(("reload",)))
        self._start()
        burst = Burst(self.config.wait_min, self.config.wait_max)
        try:
            while True:
                due = burst.due()
                timeout = 1.0 if due is None else min(max(due - time.monotonic(), 0.0), 1.0)
                try:
                    event = self.events.get(timeout=timeout)
                except queue.Empty:
                    event = ("tick",)
                if event[0] == "change":
                    _, generation, key, change = event
                    if generation == self.generation:
                        self._take(key, change)
                        burst.add(key, time.monotonic())
                # Also after a change: a steady stream of them must not hold off wait.max.
                keys = burst.take(time.monotonic())
                if keys:
                    self._render(keys)
                if event[0] == "stop":
                    log.info("stopping")
                    return 0
                if event[0] == "reload":
                    burst.clear()  # the new config renders every file
                    self._reload_config()
                    burst = Burst(self.config.wait_min, self.config.wait_max)
        finally:
            self._close_clients()

    def _take(self, key: Key, change: Change) -> None:
        self.copies[key] = _Copy(change.new, change.revision)
        keys = ", ".join(change.changed[:10]) + (" …" if len(change.changed) > 10 else "")
        log.info("%s/%s changed at revision %s: %s", *key, change.revision, keys or "new copy")


def configure_logging(level: str) -> None:
    """Log lines on stderr, at level."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
