"""`/v1/subscriptions`: register, list, show and delete webhook subscribers; their deliveries.

With tokens configured every route needs the admin scope: a subscription receives events
about (and, with include_config, the contents of) every config its globs match.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, request
from jsonschema import Draft202012Validator
from sqlalchemy.exc import SQLAlchemyError

from gitconf.audit import safe_url
from gitconf.notify.events import CHANGED
from gitconf.notify.notifier import Notifier
from gitconf.notify.targets import TargetRefused, check_url
from gitconf.package_data import own_schema
from gitconf.server.audit_api import audited, record
from gitconf.server.auth import Principal
from gitconf.server.deps import Deps, deps
from gitconf.server.errors import ApiError
from gitconf.server.jsonbody import check_body, read_object
from gitconf.server.responses import json_response, store_down
from gitconf.signing import generate_secret, parse_secret
from gitconf.store.subscriptions import Subscription

__all__ = ["deliveries_doc", "make_blueprint", "notifier_for", "subscriptions_doc"]


MAX_BODY = 64 * 1024
MAX_DEPTH = 32  # a subscription nests 2 deep: an object of lists
STATES = ("pending", "delivered", "dead", "gone", "superseded", "cancelled")


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(own_schema("subscription"))


def _notifier() -> Notifier:
    """The caller's notifier, once the caller is known to be an admin."""
    d = deps()
    return notifier_for(d, d.reader.principal(request.headers.get("Authorization")))


def notifier_for(d: Deps, principal: Principal) -> Notifier:
    """The notifier, for a principal known to be an admin; else ApiError 403 (404 when
    notifications are not wired in)."""
    if not principal.admin:
        raise ApiError(
            403,
            "forbidden",
            f"token {principal.name!r} lacks the admin scope subscriptions need",
            actor=principal.name,
        )
    found = d.notifier
    if found is None:
        raise ApiError(404, "not_found", "notifications are not part of this server")
    return found


def _body() -> dict[str, Any]:
    """The request's JSON object, checked against schemas/subscription.schema.json."""
    doc = read_object(
        request,
        what="POST /v1/subscriptions",
        limit=MAX_BODY,
        max_depth=MAX_DEPTH,
        shape="a subscription is an object of strings and lists of strings "
        "(see gitconf's schemas/subscription.schema.json)",
        code="invalid_subscription",
        example='{"url": "..."}',
    )
    check_body(
        doc, _validator(), "invalid_subscription", "see gitconf's schemas/subscription.schema.json"
    )
    return doc


def _doc(sub: Subscription, counts: dict[str, int] | None = None) -> dict[str, Any]:
    doc = sub.doc()
    doc["deliveries"] = {state: (counts or {}).get(state, 0) for state in STATES}
    doc["links"] = {"deliveries": f"/v1/subscriptions/{sub.id}/deliveries"}
    return doc


@audited("subscription.create", lambda: "subscriptions")
def create() -> Response:
    """Register a subscriber; 201 with its id and its secret (shown this once)."""
    notifier = _notifier()
    body = _body()
    try:
        check_url(body["url"], notifier.targets)
    except TargetRefused as exc:
        raise ApiError(400, "target_refused", f"url: {exc}", field="url") from None
    secret = body.get("secret") or generate_secret()
    try:
        parse_secret(secret)
    except ValueError as exc:
        raise ApiError(400, "invalid_subscription", f"secret: {exc}", field="secret") from None
    sub = notifier.subscriptions.create(
        url=body["url"],
        secret=secret,
        environments=body.get("environments", ["*"]),
        services=body.get("services", ["*"]),
        events=body.get("events", [CHANGED]),
        include_config=body.get("include_config", False),
        name=body.get("name"),
    )
    record(
        "subscription.create",
        f"subscription {sub.id}",
        "201 created",
        detail={
            "url": safe_url(sub.url),
            "environments": list(sub.environments),
            "services": list(sub.services),
        },
    )
    doc = {**_doc(sub), "secret": secret}
    return json_response(doc, 201, {"Location": f"/v1/subscriptions/{sub.id}"})


def list_all() -> Response:
    """Every subscription, from the API and from gitconf.yaml, with delivery counts."""
    return json_response(subscriptions_doc(_notifier()))


def subscriptions_doc(notifier: Notifier) -> dict[str, Any]:
    """The document of GET /v1/subscriptions."""
    counts = notifier.outbox.counts_by_subscription()
    subs = notifier.subscriptions.all()
    return {"subscriptions": [_doc(s, counts.get(s.id)) for s in subs]}


def _get(notifier: Notifier, sub_id: str) -> Subscription:
    sub = notifier.subscriptions.get(sub_id)
    if sub is None:
        raise ApiError(
            404, "unknown_subscription", f"no subscription {sub_id!r}; see GET /v1/subscriptions"
        )
    return sub


def show(sub_id: str) -> Response:
    """One subscription."""
    notifier = _notifier()
    sub = _get(notifier, sub_id)
    return json_response(_doc(sub, notifier.outbox.counts_by_subscription().get(sub.id)))


@audited("subscription.delete", lambda sub_id: f"subscription {sub_id}")
def delete(sub_id: str) -> Response:
    """Delete a subscription; what it has not received yet is cancelled. 204."""
    notifier = _notifier()
    sub = _get(notifier, sub_id)
    if sub.origin == "manifest":
        raise ApiError(
            409,
            "declared_in_manifest",
            f"subscription {sub.name!r} is declared in gitconf.yaml ({sub.declared_at}); "
            "remove it there and push",
        )
    if sub.origin == "broker":
        raise ApiError(
            409,
            "declared_in_settings",
            f"subscription {sub.name!r} is a broker declared in {sub.declared_at}; "
            "remove it from brokers: there and restart gitconf serve",
        )
    notifier.subscriptions.delete(sub_id)
    return Response(status=204)


def deliveries(sub_id: str) -> Response:
    """A subscription's deliveries, newest first, each with every attempt."""
    notifier = _notifier()
    try:
        limit = int(request.args.get("limit", "100"))
    except ValueError:
        limit = 0
    return json_response(deliveries_doc(notifier, sub_id, limit, request.args.get("state")))


def deliveries_doc(
    notifier: Notifier, sub_id: str, limit: int = 100, state: str | None = None
) -> dict[str, Any]:
    """The document of GET /v1/subscriptions/<id>/deliveries: newest first, each with every
    attempt."""
    _get(notifier, sub_id)
    if not 1 <= limit <= 1000:
        raise ApiError(400, "bad_limit", "limit must be an integer from 1 to 1000")
    if state is not None and state not in STATES:
        raise ApiError(400, "bad_state", f"state must be one of {', '.join(STATES)}")
    found = notifier.outbox.deliveries(sub_id, limit=limit, state=state)
    return {"subscription": sub_id, "deliveries": found}


def make_blueprint() -> Blueprint:
    """The subscription routes."""
    bp = Blueprint("subscriptions", __name__)
    bp.register_error_handler(SQLAlchemyError, store_down("subscription"))
    bp.add_url_rule("/v1/subscriptions", view_func=create, methods=["POST"])
    bp.add_url_rule("/v1/subscriptions", view_func=list_all, methods=["GET"])
    bp.add_url_rule("/v1/subscriptions/<sub_id>", view_func=show, methods=["GET"])
    bp.add_url_rule("/v1/subscriptions/<sub_id>", view_func=delete, methods=["DELETE"])
    bp.add_url_rule("/v1/subscriptions/<sub_id>/deliveries", view_func=deliveries, methods=["GET"])
    return bp
