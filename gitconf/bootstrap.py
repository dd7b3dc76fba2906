"""The one place that wires settings, Git, the store, the jobs and the HTTP app together."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from gitconf.git.remote import Mirror, normalize_url
from gitconf.hooks.plugin import install as install_hooks
from gitconf.jobs.poll import PollContext, Poller
from gitconf.metrics import Metrics
from gitconf.notify.plugin import install as install_notify
from gitconf.publisher import Publisher
from gitconf.replicas import install as install_replicas
from gitconf.server.app import create_app
from gitconf.server.auth import Auth
from gitconf.server.deps import Deps
from gitconf.server.fast import FastReads
from gitconf.server.reads import ConfigReader
from gitconf.server.refs import RefCache, worker_explainer
from gitconf.server.rsgi import GitconfRSGI
from gitconf.server.waits import LongPolls
from gitconf.server.watch import Watch
from gitconf.settings import Settings
from gitconf.spring.plugin import install as install_spring
from gitconf.store.db import create_schema, make_engine
from gitconf.store.revisions import RevisionLog
from gitconf.store.snapshots import DamagedSnapshot
from gitconf.worker.proxy import CompileWorker

__all__ = ["Server", "build"]

log = logging.getLogger(__name__)

# Parts that own a capability add themselves here: each is called with the Server being
# built, and may register blueprints, publish listeners and start/stop callbacks.
Plugin = Callable[["Server"], None]
PLUGINS: list[Plugin] = [install_replicas, install_hooks, install_spring, install_notify]


class Server:
    """A running gitconf: the poller, the store and the app over one served revision."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        # One state dir may track several repositories or branches over its life.
        key = hashlib.sha256(
            f"{normalize_url(settings.repo)}#{settings.branch}".encode()
        ).hexdigest()
        self.state_dir = state / key[:16]
        self.state_dir.mkdir(exist_ok=True)
        self.engine = make_engine(settings.store_url)
        self.schema_error: str | None = None
        self.schema_ready = False
        self.ensure_schema()
        self.metrics = Metrics()
        self.mirror = Mirror(
            settings.repo,
            self.state_dir / "repo.git",
            settings.branch,
            settings.credentials,
            settings.fetch_timeout,
            self.environ,
        )
        self.compiler = CompileWorker(
            self.mirror.path,
            timeout=settings.compile_timeout,
            max_memory=settings.compile_max_memory,
            log_level=settings.log_level,
        )
        explainer = worker_explainer(self.compiler)
        self.publisher = Publisher(self.state_dir)
        try:
            served = self.publisher.load_persisted(explainer)
        except DamagedSnapshot as exc:
            self.publisher.persist.load_error = (
                f"{exc}; it is not served: the clone's head is compiled instead"
            )
            log.error("%s", self.publisher.persist.load_error)
            served = None
        if served is not None:
            self.metrics.set_served(served.revision)
            log.info("serving the persisted revision %s", served.revision[:12])
        self.revisions = RevisionLog(self.engine, settings.branch, source=key[:16])
        if self.schema_ready:
            self._adopt_legacy()
        self.poll = PollContext(
            self.mirror,
            self.publisher,
            self.revisions,
            self.metrics,
            self.compiler,
            explainer=explainer,
        )
        self.poller = Poller(self.poll, settings.poll_interval)
        self.auth = Auth(settings.tokens, self.environ)
        self.reader = ConfigReader(
            self.publisher,
            self.auth,
            RefCache(self.mirror, self.compiler, explainer, settings.ref_cache_size),
            settings.max_waiters,
            settings.max_wait,
        )
        self.metrics.watch_parts(self.publisher, self.compiler)
        # Long polls and /v1/watch streams wait on the HTTP host's event loop.
        self.long_polls = LongPolls(self.reader, settings.max_waiters)
        self.watch = Watch(settings.base_url(), settings.max_waiters, lambda: self.publisher.served)
        self.publisher.listeners += [self.long_polls, self.watch]
        self.metrics.long_polls.set_function(lambda: self.reader.waiting + self.long_polls.waiting)
        self.metrics.watch_streams.set_function(lambda: self.watch.streams)
        self.deps = Deps(settings, self.poll, self.reader, self.auth, self.metrics, self.poller)
        self.blueprints: list[Any] = []
        # Path prefixes whose request bodies may be larger than the host's default.
        self.body_limits: dict[str, int] = {}
        self.on_start: list[Callable[[], None]] = []
        self.on_stop: list[Callable[[], None]] = []
        # Persist published revisions off the poll thread; stopping writes the pending one.
        self.on_start.append(self.publisher.start)
        self.on_stop.append(self.publisher.stop)
        for plugin in PLUGINS:
            plugin(self)
        self.app: Flask = create_app(self.deps, self.blueprints)
        # The WSGI app: the fast read path in front of Flask (tests call it; the HTTP host
        # below adds long polls and streams on an event loop).
        self.wsgi = FastReads(self.reader, self.metrics, self.app.wsgi_app, self.deps.guard)

    def rsgi(self, on_stop: Callable[[], None] | None = None) -> GitconfRSGI:
        """The RSGI application granian serves (gitconf.server.rsgi)."""
        settings = self.settings
        return GitconfRSGI(
            self.wsgi,
            self.long_polls,
            self.watch,
            threads=settings.threads,
            body_limits=self.body_limits,
            on_signal=self.publisher.close_waiters,
            on_stop=on_stop,
        )

    def _adopt_legacy(self) -> None:
        try:
            self.revisions.adopt_legacy()
        except Exception as exc:  # the history is nice to have; serving does not need it
            log.warning("cannot copy the old revisions table: %s", exc)

    def ensure_schema(self) -> bool:
        """Create or migrate the store's tables; an unreachable store is reported, not fatal.

        Reads and publishing never need the store, so a server starts without it and tries
        again later (the replica heartbeat calls this until it succeeds).
        """
        if self.schema_ready:
            return True
        try:
            create_schema(self.engine)
        except Exception as exc:
            self.schema_error = f"creating the store's tables: {str(exc).splitlines()[0]}"
            log.error("%s; serving from memory and retrying", self.schema_error)
            return False
        self.schema_error = None
        self.schema_ready = True
        if getattr(self, "revisions", None) is not None:
            self._adopt_legacy()
        return True

    def start(self) -> None:
        """Start polling (the first poll runs at once) and the plugins' workers."""
        self.poller.start()
        for start in self.on_start:
            start()

    def stop(self) -> None:
        """Stop the workers; a poll or delivery in progress finishes first (a compile in
        progress is abandoned: the next start compiles that commit again)."""
        self.compiler.close()
        self.poller.stop()
        for stop in reversed(self.on_stop):
            try:
                stop()
            except Exception:
                log.exception("stopping a part failed")
        self.engine.dispose()


def build(settings: Settings, environ: Mapping[str, str] | None = None) -> Server:
    """A Server for the settings, not yet started."""
    return Server(settings, environ)
