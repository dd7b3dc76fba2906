"""The dashboard's pages, each made from the documents the JSON API serves (gitconf.server.ops,
gitconf.notify.api, the explain body): nothing is computed a second way here."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, request

from gitconf.notify.api import deliveries_doc, notifier_for, subscriptions_doc
from gitconf.server.auth import may_not_read
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.ops import diff_doc, environments_doc, revisions_doc, status_doc
from gitconf.ui.web import page, ui

__all__ = ["audit", "config", "diff", "overview", "releases", "revisions", "subscriptions"]

DELIVERIES_SHOWN = 20  # per subscription, newest first
AUDIT_SHOWN = 200  # audit rows, newest first (GET /v1/audit pages through all of them)


def overview() -> Response:
    """What is served, the last poll, replicas, rejected commits and every config's ETag."""
    d = deps()
    principal = g.ui_principal
    status = status_doc(d, principal)
    table: dict[str, Any] | None = None
    served = d.publisher.served
    if served is not None:
        envs = environments_doc(d, principal)
        services = sorted({s for e in envs["environments"] for s in e["services"]})
        rows = []
        for env in envs["environments"]:
            cells = {}
            for service in env["services"]:
                try:
                    body = d.reader.body_for(served, env["name"], service, principal)
                except ApiError as exc:  # the secrets of a config loading after a restart
                    cells[service] = {"error": exc.message}
                    continue
                if body is not None:
                    cells[service] = {"etag": body.etag}
            rows.append({"name": env["name"], "cells": cells})
        table = {"revision": envs["revision"], "services": services, "rows": rows}
    return page("overview.html", doc=status, table=table, live=not d.auth.enabled)


def config(env: str, service: str) -> Response:
    """One merged config: each leaf's value, where it was set and what it overrode; the layers."""
    d = deps()
    principal = g.ui_principal
    if not principal.can_read(env, service):
        raise may_not_read(principal, env, service)
    ref = request.args.get("ref") or None
    served = d.reader.revision(ref, principal)
    explained = d.reader.prepared(lambda s: s.explain_body(env, service), served, env, service)
    doc = json.loads(explained.data)
    body = d.reader.body_for(served, env, service, principal)
    return page(
        "config.html",
        env=env,
        service=service,
        ref=ref,
        explain=doc,
        etag=body.etag if body is not None else None,
        redacted=served.redacted.get((env, service), 0),
        shown_secrets=principal.may("secrets", env, service),
        can_change=ui().changes is not None and principal.may("write", env, service),
    )


def revisions() -> Response:
    """The newest revisions, published or rejected, and a form to compare two."""
    doc = revisions_doc(deps(), g.ui_principal, limit=100)
    published = [r["revision"] for r in doc["revisions"] if r["state"] == "published"]
    return page("revisions.html", doc=doc, published=published)


def diff() -> Response:
    """The effective changes between two revisions, as GET /v1/diff gives them."""
    start = request.args.get("from") or None
    end = request.args.get("to") or None
    doc = diff_doc(deps(), g.ui_principal, start, end)
    return page("diff.html", doc=doc)


def subscriptions() -> Response:
    """Webhook and broker subscriptions, each with its newest deliveries (admin only, as in the
    API)."""
    notifier = notifier_for(deps(), g.ui_principal)
    doc = subscriptions_doc(notifier)
    found = {
        sub["id"]: deliveries_doc(notifier, sub["id"], DELIVERIES_SHOWN)["deliveries"]
        for sub in doc["subscriptions"]
    }
    return page("subscriptions.html", doc=doc, deliveries=found)


def releases() -> Response:
    """Pins and rollouts of the environments the caller may read, and how to act on them."""
    d = deps()
    principal = g.ui_principal
    served = d.publisher.served
    known = d.poll.pinned or {}
    pins = [
        {"environment": env, "revision": sha, **(known[env].doc() if env in known else {})}
        for env, sha in sorted((served.pinned if served is not None else {}).items())
        if principal.can_read(env) and (env in known or env not in (d.poll.rolled or {}))
    ]
    rollouts = [
        row.doc() for env, row in sorted((d.poll.rolled or {}).items()) if principal.can_read(env)
    ]
    return page(
        "releases.html",
        pins=pins,
        rollouts=rollouts,
        base_url=d.settings.base_url(),
        head=served.revision if served is not None else None,
    )


def audit() -> Response:
    """The newest audit rows, filtered by actor and action (admin only, as in the API)."""
    d = deps()
    principal = g.ui_principal
    if not principal.admin:
        raise ApiError(
            403, "forbidden", f"token {principal.name!r} lacks the admin scope the audit log needs"
        )
    actor = (request.args.get("actor") or "").strip()[:255] or None
    action = (request.args.get("action") or "").strip()[:64] or None
    entries: list[dict[str, Any]] = []
    error = None
    if d.audit is not None:
        d.audit.flush(5.0)
        try:
            entries = d.audit.table.latest(actor=actor, action=action, limit=AUDIT_SHOWN)
        except Exception as exc:  # the store being down is what to show
            error = f"the audit log cannot be read now: {str(exc).splitlines()[0]}"
    return page("audit.html", entries=entries, actor=actor, action=action, error=error,
                shown=AUDIT_SHOWN)  # fmt: skip
