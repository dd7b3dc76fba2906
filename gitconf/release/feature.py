"""Pins as a feature: the store of pins, the routes, and their section of /v1/status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.feature import Feature
from gitconf.release import rollout_api
from gitconf.release.api import MAX_BODY, PinContext, make_blueprint
from gitconf.release.openapi import PATHS, ROLLOUT_PATHS
from gitconf.store.pins import PinStore
from gitconf.store.rollouts import RolloutStore

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["feature", "rollouts"]


def feature(parts: Parts, key: str) -> Feature:
    """Pins of the repository and branch key names, applied by the poller's ticks."""
    reader = parts.reader
    ctx = PinContext(
        pins=PinStore(parts.engine, key),
        poll=parts.poll,
        poller=parts.poller,
        mirror=parts.mirror,
        fetch=lambda sha: reader.refs.get(sha, None),
    )
    # Every tick reads the pins, so a pin made on another replica is served at its next poll
    # (at once: the replica that made it has every replica poll).
    parts.poll.pins = ctx.pins
    parts.poll.fetch = ctx.fetch
    return Feature(
        "pins",
        blueprint=make_blueprint(ctx),
        body_limits={"/v1/environments/": MAX_BODY},
        status=ctx.status,
        openapi=PATHS,
    )


def rollouts(parts: Parts, key: str, replica: str) -> Feature:
    """Rollouts of the repository and branch key names (gitconf.yaml `rollouts:`): planned
    and stepped by the poller's ticks, split on the read path by X-Gitconf-Instance."""
    ctx = rollout_api.RolloutContext(
        store=RolloutStore(parts.engine, key), poll=parts.poll, poller=parts.poller,
        replica=replica,
    )  # fmt: skip
    parts.poll.rollouts = ctx.store
    # A step this replica took by itself (a bake ended): every other replica polls at once.
    parts.poll.on_rollout_moved.append(parts.poller.request)
    parts.reader.seen = ctx.saw
    return Feature(
        "rollouts",
        blueprint=rollout_api.make_blueprint(ctx),
        status=ctx.status,
        openapi=ROLLOUT_PATHS,
        start=ctx.start,
        stop=ctx.stop,
    )
