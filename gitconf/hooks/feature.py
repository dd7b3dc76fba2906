"""The Git host webhooks as a feature: the blueprint, the replay cache, a status section."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gitconf.feature import Feature
from gitconf.hooks.api import HookContext, make_blueprint
from gitconf.hooks.openapi import PATHS
from gitconf.hooks.replay import ReplayCache

if TYPE_CHECKING:
    from gitconf.feature import Parts

__all__ = ["feature"]

log = logging.getLogger(__name__)


def feature(parts: Parts) -> Feature:
    """Serve POST /v1/hooks/<provider>, waking the poller on a push to the tracked branch."""
    ctx = HookContext(
        hooks=parts.settings.hooks,
        environ=parts.environ,
        poller=parts.poller,
        metrics=parts.metrics,
        branch=parts.settings.branch,
        replay=ReplayCache(),
        labels=parts.settings.spring_labels,
    )
    # Said at start so a typo in secret_env shows in the log, not only as 503s to the Git host.
    for problem in ctx.problems():
        log.error("webhooks: %s", problem)
    return Feature(
        "hooks",
        blueprint=make_blueprint(ctx),
        # Hook bodies may be larger than other routes' (hooks.max_body): read that much.
        body_limits={"/v1/hooks/": ctx.max_body},
        status=ctx.status,
        openapi=PATHS,
    )
