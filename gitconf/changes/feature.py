"""The change API as a feature: POST /v1/changes and its section of /v1/status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.changes.api import MAX_BODY, ChangeContext, make_blueprint
from gitconf.changes.openapi import PATHS
from gitconf.feature import Feature

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["feature"]


def feature(parts: Parts) -> tuple[Feature, ChangeContext]:
    """Serve POST /v1/changes over the server's mirror, compile worker and poller; the context
    is also what the dashboard's change form submits to."""
    settings = parts.settings
    ctx = ChangeContext(
        mirror=parts.mirror,
        compiler=parts.compiler,
        poller=parts.poller,
        branch=settings.branch,
        mode=settings.change_mode,
        committer=settings.committer,
        review_url=settings.changes.get("review_url"),
    )
    return (
        Feature(
            "changes",
            blueprint=make_blueprint(ctx),
            body_limits={"/v1/changes": MAX_BODY},
            status=ctx.status,
            openapi=PATHS,
        ),
        ctx,
    )
