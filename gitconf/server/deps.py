"""What the HTTP app's views use, handed to create_app by bootstrap (or by a test), and how a
view gets it (deps())."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from gitconf.feature import Feature
from gitconf.jobs.poll import PollContext, Poller
from gitconf.metrics import Metrics
from gitconf.publisher import Publisher
from gitconf.server.auth import Auth
from gitconf.server.guard import Guard
from gitconf.server.reads import ConfigReader
from gitconf.settings import Settings
from gitconf.spring.cache import BodyCache

if TYPE_CHECKING:
    from gitconf.audit import Audit
    from gitconf.notify.notifier import Notifier

__all__ = ["Deps", "deps"]


@dataclass
class Deps:
    """The server's parts the request handlers use."""

    settings: Settings
    poll: PollContext
    reader: ConfigReader
    auth: Auth
    metrics: Metrics
    poller: Poller | None = None
    # The features bootstrap wired in (their status sections and problems, OpenAPI paths).
    features: tuple[Feature, ...] = ()
    # What the subscription routes use (None: notifications are not wired in).
    notifier: Notifier | None = None
    # Where every write is recorded (None: this server keeps no audit log).
    audit: Audit | None = None
    # The Spring routes' bodies, built once per (revision, request).
    spring_bodies: BodyCache = field(default_factory=BodyCache)

    @property
    def publisher(self) -> Publisher:
        """The publisher of the served revision."""
        return self.poll.publisher

    @cached_property
    def guard(self) -> Guard:
        """The Host and Origin rules: loopback Hosts only without tokens; the server's own
        origins are the request's and base_url's (public_url, else the listen address)."""
        return Guard.of(self.auth.enabled, [self.settings.base_url()])


def deps() -> Deps:
    """The Deps of the current app (in a view)."""
    from flask import current_app

    found: Deps = current_app.extensions["gitconf"]
    return found
