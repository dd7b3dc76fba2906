"""Config reads: one service, a whole environment, and the provenance of each value."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, request

from gitconf.release.bucket import instance_name
from gitconf.served import Body, ServedRevision
from gitconf.server.auth import Principal
from gitconf.server.deps import deps
from gitconf.server.formats import negotiate
from gitconf.server.reads import Reply


def to_response(reply: Reply) -> Response:
    """A Flask response from a prepared Reply."""
    response = Response(reply.body, status=reply.status)
    for name, value in reply.headers:
        response.headers[name] = value
    return response


def config(env: str, service: str) -> Response:
    """One merged config."""
    args = request.args
    fmt = negotiate(args.get("format"), request.headers.get("Accept"))
    reply = deps().reader.config(
        env,
        service,
        fmt=fmt,
        ref=args.get("ref"),
        wait=args.get("wait"),
        if_none_match=request.headers.get("If-None-Match"),
        authorization=request.headers.get("Authorization"),
        instance=instance_name(request.headers.get("X-Gitconf-Instance")),
    )
    return to_response(reply)


def _prepared(
    env: str,
    service: str | None,
    build: Callable[[ServedRevision, str, Principal], Body | None],
    *,
    formats: bool = False,
) -> Response:
    """A prepared body of the served (or ?ref=) revision, after the caller's read check.

    With formats, ?format= and Accept choose the format (else JSON, ?format= unread).
    """
    reader = deps().reader
    principal = reader.require_read(request.headers.get("Authorization"), env, service)
    fmt = (
        negotiate(request.args.get("format"), request.headers.get("Accept")) if formats else "json"
    )
    served = reader.revision(request.args.get("ref"), principal)
    reply = reader.get_body(
        lambda s: build(s, fmt, principal),
        served,
        request.headers.get("If-None-Match"),
        env,
        service,
        fmt,
    )
    return to_response(reply)


def environment(env: str) -> Response:
    """Every service of an environment in one document."""
    # The services the token may read (all of them, for most tokens).
    return _prepared(
        env,
        None,
        lambda s, fmt, who: s.environment_body(
            env,
            fmt,
            tuple(svc for svc in s.services if who.can_read(env, svc)),
            frozenset(
                svc
                for svc in s.services
                if who.may("secrets", env, svc) and s.secrets_ready(env, svc)
            ),
        ),
        formats=True,
    )


def explain(env: str, service: str) -> Response:
    """Where every leaf of one config was set, and what it overrode."""
    return _prepared(env, service, lambda s, _fmt, _who: s.explain_body(env, service))


def make_blueprint() -> Blueprint:
    """Config reads: one service, a whole environment, an explain."""
    bp = Blueprint("config", __name__)
    bp.add_url_rule("/v1/config/<env>/<service>", view_func=config, methods=["GET"])
    bp.add_url_rule("/v1/config/<env>", view_func=environment, methods=["GET"])
    bp.add_url_rule("/v1/config/<env>/<service>/explain", view_func=explain, methods=["GET"])
    return bp
