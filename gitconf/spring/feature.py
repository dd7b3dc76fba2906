"""The Spring Cloud Config routes as a feature."""

from __future__ import annotations

from gitconf.feature import Feature
from gitconf.spring import api
from gitconf.spring.openapi import PATHS

__all__ = ["feature"]


def feature() -> Feature:
    """Serve `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>`."""
    return Feature("spring", blueprint=api.make_blueprint(), openapi=PATHS)
