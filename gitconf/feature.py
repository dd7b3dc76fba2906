"""What a capability adds to a server, as bootstrap wires it: a typed Feature, no registry.

Each capability's module offers one function (`hooks.feature.feature(parts)`, ...) that
takes the server's core Parts and returns what the capability adds: a blueprint, the path
prefixes whose request bodies may be larger than the host's default, a section and problems
of /v1/status, OpenAPI paths, and what to start and stop. bootstrap calls them in a fixed
order and starts the features in that order, stopping them in the reverse one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Blueprint
    from sqlalchemy.engine import Engine

    from gitconf.git.remote import Mirror
    from gitconf.jobs.poll import PollContext, Poller
    from gitconf.metrics import Metrics
    from gitconf.publisher import Publisher
    from gitconf.server.auth import Auth
    from gitconf.server.reads import ConfigReader
    from gitconf.settings import Settings
    from gitconf.store.db import StoreSchema
    from gitconf.worker.proxy import CompileWorker

__all__ = ["Feature", "Parts"]

StatusSection = Callable[[], dict[str, Any]]
StatusProblems = Callable[[], list[dict[str, Any]]]


@dataclass(frozen=True)
class Parts:
    """The core of a server that features are built on."""

    settings: Settings
    environ: Mapping[str, str]
    state_dir: Path
    engine: Engine
    schema: StoreSchema
    metrics: Metrics
    mirror: Mirror
    compiler: CompileWorker
    publisher: Publisher
    poll: PollContext
    poller: Poller
    auth: Auth
    reader: ConfigReader


@dataclass(frozen=True)
class Feature:
    """What one capability adds to a server."""

    name: str  # also its section's name in /v1/status
    blueprint: Blueprint | None = None
    body_limits: Mapping[str, int] = field(default_factory=dict)
    status: StatusSection | None = None
    problems: StatusProblems | None = None
    openapi: Mapping[str, Any] = field(default_factory=dict)
    start: Callable[[], None] | None = None
    stop: Callable[[], None] | None = None
