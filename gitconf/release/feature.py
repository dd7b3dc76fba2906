"""Pins as a feature: the store of pins, the routes, and their section of /v1/status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.feature import Feature
from gitconf.release.api import MAX_BODY, PinContext, make_blueprint
from gitconf.release.openapi import PATHS
from gitconf.store.pins import PinStore

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["feature"]


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
