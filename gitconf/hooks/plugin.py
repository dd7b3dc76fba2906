"""Wire the Git host webhooks into a Server: the blueprint, the replay cache, a status section."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gitconf.hooks.api import HookContext, make_blueprint
from gitconf.hooks.openapi import PATHS
from gitconf.hooks.replay import ReplayCache

if TYPE_CHECKING:
    from gitconf.bootstrap import Server

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(server: Server) -> None:
    """Serve POST /v1/hooks/<provider> on server, waking its poller on a push to the branch."""
    ctx = HookContext(
        hooks=server.settings.hooks,
        environ=server.environ,
        poller=server.poller,
        metrics=server.metrics,
        branch=server.settings.branch,
        replay=ReplayCache(),
    )
    # Said at start so a typo in secret_env shows in the log, not only as 503s to the Git host.
    for problem in ctx.problems():
        log.error("webhooks: %s", problem)
    server.blueprints.append(make_blueprint(ctx))
    # Hook bodies may be larger than other routes' (hooks.max_body): read that much of them.
    server.body_limits["/v1/hooks/"] = ctx.max_body
    server.deps.extras.setdefault("status_sections", {})["hooks"] = ctx.status
    server.deps.extras.setdefault("openapi_paths", []).append(PATHS)
