"""What the HTTP app needs, handed to create_app by bootstrap (or by a test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gitconf.jobs.poll import PollContext, Poller
from gitconf.metrics import Metrics
from gitconf.server.auth import Auth
from gitconf.server.guard import Guard
from gitconf.server.reads import ConfigReader
from gitconf.settings import Settings

__all__ = ["Deps"]


@dataclass
class Deps:
    """The server's parts the request handlers use."""

    settings: Settings
    poll: PollContext
    reader: ConfigReader
    auth: Auth
    metrics: Metrics
    poller: Poller | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def publisher(self) -> Any:
        """The publisher of the served revision."""
        return self.poll.publisher

    @cached_property
    def guard(self) -> Guard:
        """The Host and Origin rules: loopback Hosts only without tokens; the server's own
        origins are the request's and base_url's (public_url, else the listen address)."""
        return Guard.of(self.auth.enabled, [self.settings.base_url()])
