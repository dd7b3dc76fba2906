"""The Spring Cloud Config routes as a feature."""

from __future__ import annotations

from typing import Any

from gitconf.feature import Feature, Parts
from gitconf.git.remote import MAX_LABEL_BRANCHES
from gitconf.spring import api
from gitconf.spring.openapi import PATHS

__all__ = ["feature"]


def feature(parts: Parts) -> Feature:
    """Serve `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>`."""
    mirror, metrics, settings = parts.mirror, parts.metrics, parts.settings
    metrics.spring_label_branches.set_function(lambda: len(mirror.label_branches.fetched))
    metrics.spring_label_branches_skipped.set_function(lambda: mirror.label_branches.skipped)

    def status() -> dict[str, Any]:
        branches = mirror.label_branches
        return {
            "default_environment": settings.spring_default_environment,
            "labels": list(settings.spring_labels),
            "label_branches": list(branches.fetched),
            "label_branches_skipped": branches.skipped,
            "max_label_branches": MAX_LABEL_BRANCHES,
        }

    return Feature("spring", blueprint=api.make_blueprint(), openapi=PATHS, status=status)
