"""The one place that wires settings, Git, the store, the jobs and the HTTP app together."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from flask import Flask

from gitconf import replicas
from gitconf.audit import Audit, new_request_id
from gitconf.changes import feature as changes
from gitconf.feature import Feature, Parts
from gitconf.git.remote import Mirror, normalize_url
from gitconf.hooks import feature as hooks
from gitconf.jobs.poll import PollContext, Poller
from gitconf.metrics import Metrics
from gitconf.notify import feature as notifications
from gitconf.publisher import Publisher
from gitconf.release import feature as release
from gitconf.server import audit_api
from gitconf.server.app import create_app
from gitconf.server.auth import Auth
from gitconf.server.deps import Deps
from gitconf.server.errors import ApiError
from gitconf.server.fast import FastReads
from gitconf.server.reads import ConfigReader
from gitconf.server.refs import RefCache, worker_explainer
from gitconf.server.rsgi import GitconfRSGI
from gitconf.server.waits import LongPolls
from gitconf.server.watch import Watch
from gitconf.settings import Settings
from gitconf.spring import feature as spring
from gitconf.store.audit import AuditTable
from gitconf.store.db import StoreSchema, make_engine
from gitconf.store.revisions import RevisionLog
from gitconf.store.snapshots import DamagedSnapshot
from gitconf.ui import feature as dashboard
from gitconf.worker.proxy import CompileWorker

__all__ = ["Server", "build"]

log = logging.getLogger(__name__)


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
        self.schema = StoreSchema(self.engine)
        self.schema.ensure()
        self.metrics = Metrics()
        self.mirror = Mirror(
            settings.repo,
            self.state_dir / "repo.git",
            settings.branch,
            settings.credentials,
            settings.fetch_timeout,
            self.environ,
            labels=settings.spring_labels,
        )
        self.compiler = CompileWorker(
            self.mirror.path,
            timeout=settings.compile_timeout,
            max_memory=settings.compile_max_memory,
            log_level=settings.log_level,
            age_key_files=settings.age_key_files(self.environ),
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
        self.schema.then.append(self.revisions.adopt_legacy)
        if self.schema.ready:
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
        parts = Parts(
            settings=settings,
            environ=self.environ,
            state_dir=self.state_dir,
            engine=self.engine,
            schema=self.schema,
            metrics=self.metrics,
            mirror=self.mirror,
            compiler=self.compiler,
            publisher=self.publisher,
            poll=self.poll,
            poller=self.poller,
            auth=self.auth,
            reader=self.reader,
        )
        # Every capability, in the order they start (they stop in the reverse one).
        replica, self.replica = replicas.feature(parts)
        notify, self.notifier = notifications.feature(parts, self.replica.id)
        change, self.changes = changes.feature(parts)
        self.audit = Audit(
            AuditTable(self.engine), keep_days=settings.audit_keep_days, replica=self.replica.id
        )
        audit = Feature(
            "audit",
            blueprint=audit_api.make_blueprint(self.audit),
            status=self.audit.status,
            openapi=audit_api.PATHS,
            start=self.audit.start,
            stop=self.audit.stop,
        )
        self.features: tuple[Feature, ...] = (
            replica,
            audit,
            release.feature(parts, key[:16]),
            release.rollouts(parts, key[:16], self.replica.id),
            hooks.feature(parts),
            spring.feature(parts),
            notify,
            change,
            dashboard.feature(parts, self.changes),
        )
        self.deps = Deps(
            settings,
            self.poll,
            self.reader,
            self.auth,
            self.metrics,
            self.poller,
            features=self.features,
            notifier=self.notifier,
            audit=self.audit,
        )
        # Path prefixes whose request bodies may be larger than the host's default.
        self.body_limits: dict[str, int] = {}
        for feature in self.features:
            self.body_limits.update(feature.body_limits)
        self.blueprints = [f.blueprint for f in self.features if f.blueprint is not None]
        self.app: Flask = create_app(self.deps, self.blueprints)
        # The WSGI app: the fast read path in front of Flask (tests call it; the HTTP host
        # below adds long polls and streams on an event loop).
        self.wsgi = FastReads(self.reader, self.metrics, self.app.wsgi_app, self.deps.guard)
        self.wsgi.on_refused = self._refused_read

    def _refused_read(
        self, exc: ApiError, method: str, path: str, authorization: str | None
    ) -> str:
        """Audit a read the event loop refused for its token; the request id it was given."""
        rid = new_request_id()
        who = exc.actor or self.auth.expired(authorization) or "-"
        self.audit.record(
            who, "token.refused", f"{method} {path}", f"{exc.status} {exc.code}", request_id=rid
        )
        return rid

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
        """Create or migrate the store's tables; an unreachable store is reported, not fatal."""
        return self.schema.ensure()

    def start(self) -> None:
        """Start polling (the first poll runs at once), persisting and the features."""
        self.poller.start()
        self.publisher.start()
        for feature in self.features:
            if feature.start is not None:
                feature.start()

    def stop(self) -> None:
        """Stop the workers; a poll or delivery in progress finishes first (a compile in
        progress is abandoned: the next start compiles that commit again)."""
        self.compiler.close()
        self.poller.stop()
        for feature in reversed(self.features):
            if feature.stop is not None:
                try:
                    feature.stop()
                except Exception:
                    log.exception("stopping %s failed", feature.name)
        try:
            self.publisher.stop()  # writes the pending revision
        except Exception:
            log.exception("stopping the publisher failed")
        self.engine.dispose()


def build(settings: Settings, environ: Mapping[str, str] | None = None) -> Server:
    """A Server for the settings, not yet started."""
    return Server(settings, environ)
