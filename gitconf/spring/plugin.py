"""Install the Spring Cloud Config routes into a Server (see gitconf.bootstrap.PLUGINS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitconf.spring import api
from gitconf.spring.cache import BodyCache
from gitconf.spring.openapi import PATHS

if TYPE_CHECKING:
    from gitconf.bootstrap import Server

__all__ = ["install"]


def install(server: Server) -> None:
    """Serve `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>` from server."""
    server.deps.extras[api.CACHE_KEY] = BodyCache()
    server.blueprints.append(api.bp)
    server.deps.extras.setdefault("openapi_paths", []).append(PATHS)
