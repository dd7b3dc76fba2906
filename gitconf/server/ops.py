"""Operations: environments, status, revisions, diff, health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from gitconf.core.diff import to_doc
from gitconf.git.remote import redact
from gitconf.server.auth import Principal, visible_problems
from gitconf.server.deps import Deps, deps
from gitconf.server.errors import ApiError
from gitconf.server.responses import json_response


def _caller() -> Principal:
    return deps().reader.principal(request.headers.get("Authorization"))


def _visible(principal: Principal, revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Revisions with only the problems the caller may see (and how many were hidden)."""
    shown = []
    for revision in revisions:
        problems = visible_problems(principal, revision["problems"])
        hidden = len(revision["problems"]) - len(problems)
        shown.append({**revision, "problems": problems, "hidden_problems": hidden})
    return shown


def healthz() -> Response:
    """The process is alive."""
    return json_response({"status": "ok"})


def readyz() -> Response:
    """A revision is loaded and served (it stays so while the remote is down)."""
    publisher = deps().publisher
    served = publisher.served
    if served is None:
        return json_response(
            {"status": "not_ready", "message": "no valid revision loaded yet"}, 503
        )
    doc: dict[str, Any] = {"status": "ready", "revision": served.revision}
    if served.pinned:
        doc["pins"] = dict(served.pinned)  # environments served from an earlier revision
    if publisher.persist_behind:
        # Serving is fine; a restart now would serve an older revision (or none).
        doc["persistence"] = "behind"
        doc["persisted_revision"] = publisher.persist.persisted
    return json_response(doc)


def metrics() -> Response:
    """Prometheus metrics."""
    return Response(deps().metrics.scrape(), content_type=CONTENT_TYPE_LATEST)


def openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    from gitconf.server.openapi import HOST_ROUTES, document, flask_routes

    d = deps()
    routes = [*flask_routes(current_app), *HOST_ROUTES]
    return json_response(document(d.settings.base_url(), routes, [f.openapi for f in d.features]))


def environments_doc(d: Deps, principal: Principal, ref: str | None = None) -> dict[str, Any]:
    """The document of GET /v1/environments: what principal may read of the served (or ref)
    revision."""
    served = d.reader.revision(ref, principal)
    return {
        "revision": served.revision,
        "environments": [
            {
                "name": env,
                "services": [
                    s for s in served.services if served.has(env, s) and principal.can_read(env, s)
                ],
            }
            for env in served.environments
            if principal.can_read(env)
        ],
    }


def environments() -> Response:
    """The environments the caller may read, with their services."""
    d = deps()
    principal = d.reader.principal(request.headers.get("Authorization"))
    return json_response(environments_doc(d, principal, request.args.get("ref")))


def status() -> Response:
    """What is served, what the poller did last, and what was rejected."""
    return json_response(status_doc(deps(), _caller()))


def status_doc(d: Deps, principal: Principal) -> dict[str, Any]:
    """The document of GET /v1/status as principal may see it."""
    served = d.publisher.served
    poll = d.poll.status
    store_error = poll.store_error
    try:
        rejected = d.poll.revisions.recent(limit=10, state="rejected")
    except Exception as exc:  # the store being down is itself status to show
        rejected, store_error = [], f"reading the revision log: {exc}"
    doc = {
        "ready": served is not None,
        "revision": served.revision if served else None,
        "published_at": served.published_at if served else None,
        "repo": redact(d.settings.repo),
        "branch": d.settings.branch,
        "poll": {
            "interval": d.settings.poll_interval,
            "last_poll_at": poll.last_poll_at,
            "last_result": poll.last_result,
            "last_success_at": poll.last_success_at,
            "last_error": poll.last_error,
            "consecutive_failures": poll.consecutive_failures,
            "branch_head": poll.head,
        },
        "store": {"ok": store_error is None, "error": store_error},
        "persistence": {
            "revision": d.publisher.persist.persisted,
            "behind": d.publisher.persist_behind,
            "error": d.publisher.persist.error,
        },
        "compile_worker": {
            "pid": d.poll.compiler.pid,
            "timeout": d.poll.compiler.timeout,
            "max_memory": d.poll.compiler.max_memory,
            "restarts": d.poll.compiler.restarts,
            "last_exit": d.poll.compiler.last_death,
        },
        "rejected": _visible(principal, rejected),
        # Environments served from an earlier revision than the head (PUT .../pin), of those
        # the caller may read; admins see who pinned them and why in "pins" below.
        "pinned": {
            env: sha
            for env, sha in sorted((served.pinned if served else {}).items())
            if principal.can_read(env)
        },
    }
    problems = _serving_problems(d.publisher)
    # What the features report names subscribers' URLs, replicas' addresses and the like:
    # for admins only.
    if principal.admin:
        problems += [p for f in d.features if f.problems is not None for p in f.problems()]
    doc["problems"] = problems
    if principal.admin:
        for feature in d.features:
            if feature.status is not None:
                doc[feature.name] = feature.status()
    return doc


def _serving_problems(publisher: Any) -> list[dict[str, Any]]:
    """What an operator must fix about the served revision's persistence."""
    out = []
    if publisher.persist.error:
        out.append(
            {"source": "persistence", "code": "persist_failed", "message": publisher.persist.error}
        )
    if publisher.persist.load_error:
        out.append(
            {
                "source": "persistence",
                "code": "snapshot_unusable",
                "message": publisher.persist.load_error,
            }
        )
    return out


def revisions() -> Response:
    """The newest revisions seen on the branch, published or rejected."""
    principal = _caller()
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "bad_limit", "limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "bad_limit", "limit must be from 1 to 1000")
    return json_response(revisions_doc(deps(), principal, limit))


def revisions_doc(d: Deps, principal: Principal, limit: int = 50) -> dict[str, Any]:
    """The document of GET /v1/revisions: the newest revisions, with the problems principal
    may see."""
    served = d.publisher.served
    return {
        "served": served.revision if served else None,
        "revisions": _visible(principal, d.poll.revisions.recent(limit=limit)),
    }


def diff() -> Response:
    """Effective changes between two revisions (?from=REF, ?to=REF, default the served one)."""
    d = deps()
    principal = d.reader.principal(request.headers.get("Authorization"))
    return json_response(diff_doc(d, principal, request.args.get("from"), request.args.get("to")))


def diff_doc(d: Deps, principal: Principal, start: str | None, end: str | None) -> dict[str, Any]:
    """The document of GET /v1/diff: the effective changes from start to end (default: the
    served revision) in the configs principal may read."""
    if not start:
        raise ApiError(400, "missing_from", "give the older revision as ?from=<commit|branch|tag>")
    old = d.reader.revision(start, principal)
    new = d.reader.revision(end, principal)
    changes = [
        c
        for c in d.reader.refs.diff(old.revision, new.revision)
        if principal.can_read(c.environment, c.service)
    ]
    return {"from": old.revision, "to": new.revision, "changes": to_doc(changes)}


def make_blueprint() -> Blueprint:
    """Operations: health, readiness, metrics, OpenAPI, environments, status, revisions, diff."""
    bp = Blueprint("ops", __name__)
    bp.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    bp.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    bp.add_url_rule("/metrics", view_func=metrics, methods=["GET"])
    bp.add_url_rule("/openapi.json", view_func=openapi, methods=["GET"])
    bp.add_url_rule("/v1/environments", view_func=environments, methods=["GET"])
    bp.add_url_rule("/v1/status", view_func=status, methods=["GET"])
    bp.add_url_rule("/v1/revisions", view_func=revisions, methods=["GET"])
    bp.add_url_rule("/v1/diff", view_func=diff, methods=["GET"])
    return bp
