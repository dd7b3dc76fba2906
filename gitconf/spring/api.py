"""Spring Cloud Config routes: `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>`.

The routes never shadow gitconf's own: a converter refuses the reserved first segments (`v1`,
`healthz`, ...), so `/v1/...` keeps its 404s and 405s, and Werkzeug tries static rules first.
Bodies are built once per (revision, request) and kept in an LRU bounded by bytes, with their
ETags.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from gitconf.core.layers import RESERVED_SERVICES
from gitconf.core.render import to_json, to_yaml
from gitconf.served import Body, ServedRevision
from gitconf.server.auth import Principal, may_not_read
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.fast import MEMO
from gitconf.server.formats import etag_matches
from gitconf.server.reads import secrets_loading
from gitconf.server.responses import revision_headers
from gitconf.spring.cache import BodyCache
from gitconf.spring.names import (
    DEFAULT_LABELS,
    DOCUMENT_FORMATS,
    BadName,
    check_name,
    parse_label,
    parse_profiles,
    split_document,
)
from gitconf.spring.properties import environment, merge_profiles, property_source, to_properties

__all__ = ["V2_JSON", "bearer", "make_blueprint"]


# Spring Boot's config client asks for this type; its property values carry their origin.
V2_JSON = "application/vnd.spring-cloud.config-server.v2+json"
TEXT = "text/plain; charset=utf-8"

_NOT_RESERVED = "(?!(?:{})\\Z)".format("|".join(re.escape(n) for n in sorted(RESERVED_SERVICES)))
_SUFFIX = "\\.(?:{})".format("|".join(DOCUMENT_FORMATS))


class ServiceConverter(BaseConverter):
    """A first path segment that is not one of gitconf's own (`v1`, `healthz`, ...)."""

    regex = _NOT_RESERVED + "[^/]+"
    part_isolating = True


class ProfilesConverter(BaseConverter):
    """Profiles, but not a document name: `/<label>/<service>-<env>.json` is the other route."""

    regex = f"(?![^/]*{_SUFFIX}\\Z)[^/]+"
    part_isolating = True


class DocumentConverter(BaseConverter):
    """`<service>-<profiles>.(json|yml|yaml|properties)`."""

    regex = f"{_NOT_RESERVED}[^/]+{_SUFFIX}"
    part_isolating = True


def _converters(state: BlueprintSetupState) -> None:
    # Recorded before the routes, so the converters exist when the rules are added.
    state.app.url_map.converters.update(
        spring_service=ServiceConverter,
        spring_profiles=ProfilesConverter,
        spring_document=DocumentConverter,
    )


def bearer(header: str | None) -> str | None:
    """The Authorization header as gitconf checks it.

    Spring clients send Basic credentials: the password (or, if there is none, the user name)
    is read as a bearer token, and empty credentials (some clients always send `Basic Og==`,
    that is ":") as no header at all.
    """
    if not header or header[:6].lower() != "basic ":
        return header
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    token = password or user
    return f"Bearer {token}" if token else None


def default_label(service: str, profiles: str) -> Response:
    """Spring's Environment of a service in one or more environments, at the served revision."""
    return _environment(service, profiles, None)


def labelled(service: str, profiles: str, label: str) -> Response:
    """Spring's Environment at a label: a branch, tag or commit (`(_)` stands for `/`)."""
    return _environment(service, profiles, parse_label(label))


def document(document: str) -> Response:
    """The merged config as nested JSON, YAML or `key: value` properties."""
    return _document(document, None)


def labelled_document(label: str, document: str) -> Response:
    """A document at a label."""
    return _document(document, parse_label(label))


def _environment(service: str, text: str, label: str | None) -> Response:
    principal, served = _begin(label, application=service, profiles=text)
    profiles = _profiles(text)
    if service not in served.services:
        raise _unknown_service(served, service)
    envs = _readable(principal, served, service, profiles)
    v2 = V2_JSON in request.headers.get("Accept", "")

    def origins(env: str) -> dict[str, str]:
        explain = served.explain_body(env, service)
        leaves = json.loads(explain.data)["leaves"] if explain is not None else []
        return {leaf["key"]: leaf["source"] for leaf in leaves}

    def build() -> bytes:
        sources = [
            property_source(
                env,
                service,
                served.revision_of(env),
                _value(principal, served, env, service),
                origins(env) if v2 else None,
            )
            for env in reversed(envs)  # the last profile wins, so it comes first
        ]
        return to_json(environment(service, profiles, label, _version(served, envs), sources))

    # By the served state, not the head alone: a pin serves other bodies at the same head.
    key = ("environment", served.state, service, profiles, label, v2)
    body = _cache().get(key, V2_JSON if v2 else "application/json", build)
    return _reply(body, served, profiles, envs)


def _document(name: str, label: str | None) -> Response:
    principal, served = _begin(label, document=name)
    stem, ext = name.rsplit(".", 1)
    fmt = DOCUMENT_FORMATS[ext]
    with _names():
        readings = split_document(stem, served.services, served.environments)
    if not readings:
        raise ApiError(
            404,
            "unknown_document",
            f"cannot read {stem!r} as <service>-<environment>: no service and environment of "
            f"revision {served.revision[:12]} match; services: {', '.join(served.services)}; "
            f"environments: {', '.join(served.environments)}",
        )
    if len(readings) > 1:
        both = " or ".join(r.describe() for r in readings)
        raise ApiError(
            400,
            "ambiguous_name",
            f"{stem!r} reads as {both}; ask for /<service>/<environment> instead, "
            "which names each part",
            readings=[{"service": r.service, "profiles": list(r.profiles)} for r in readings],
        )
    service, profiles = readings[0]
    envs = _readable(principal, served, service, profiles)

    def build() -> bytes:
        value = merge_profiles([_value(principal, served, env, service) for env in envs])
        if fmt == "json":
            return to_json(value)
        return to_yaml(value) if fmt == "yaml" else to_properties(value)

    key = ("document", served.state, service, envs, fmt)
    body = _cache().get(key, "application/json" if fmt == "json" else TEXT, build)
    return _reply(body, served, profiles, envs)


@contextmanager
def _names() -> Iterator[None]:
    """A name of the request that gitconf refuses to read is a 400 naming the limit."""
    try:
        yield
    except BadName as exc:
        if exc.limit is None:
            raise ApiError(400, exc.code, exc.message) from None
        raise ApiError(400, exc.code, exc.message, limit=exc.limit) from None


def _begin(label: str | None, **names: str) -> tuple[Principal, ServedRevision]:
    """The caller (401 first, as for every read) and the revision the label names.

    The label and the other names of the request (application=..., profiles=...) are checked
    in between: a 400 for a name gitconf will not read, before any work is done on it.
    """
    reader = deps().reader
    principal = reader.principal(bearer(request.headers.get("Authorization")))
    with _names():
        for what, text in names.items():
            check_name(what, text)
        if label is not None:
            check_name("label", label)
    branch = deps().settings.branch
    # The server mirrors one branch: it answers to its name, and to the label Spring
    # clients send by default when it is main or master.
    if label is None or label == branch or (label in DEFAULT_LABELS and branch in DEFAULT_LABELS):
        return principal, reader.revision(None)
    try:
        return principal, reader.revision(label, principal)
    except ApiError as exc:
        if exc.code != "unknown_ref":
            raise
        raise ApiError(
            404,
            "unknown_label",
            f"unknown label {label!r}: no tag or commit of that name, and this server tracks "
            f"branch {branch!r}; leave the label out, or use {branch!r}, a tag or a commit sha",
        ) from None


def _profiles(text: str) -> tuple[str, ...]:
    with _names():
        profiles = parse_profiles(text)
    if not profiles:
        raise ApiError(
            400, "bad_profiles", f"{text!r} names no environment; give one, or several by comma"
        )
    return profiles


def _value(principal: Principal, served: ServedRevision, env: str, service: str) -> Any:
    """A config as the token may see it: with its secrets in plaintext with the secrets:
    scope, else without them."""
    plaintext = principal.may("secrets", env, service)
    if plaintext and not served.secrets_ready(env, service):
        raise secrets_loading(env, service)
    return served.value(env, service, plaintext)


def _readable(
    principal: Principal, served: ServedRevision, service: str, profiles: tuple[str, ...]
) -> tuple[str, ...]:
    """The profiles that are environments; 404 if none is, 403 if one may not be read."""
    envs = tuple(p for p in profiles if p in served.environments)
    if not envs:
        hint = (
            "; Spring asks for 'default' when no profile is active: set spring.profiles.active"
            if "default" in profiles
            else ""
        )
        raise ApiError(
            404,
            "unknown_environment",
            f"no environment among {','.join(profiles)!r}; known: "
            f"{', '.join(served.environments)}{hint}",
        )
    for env in envs:
        if not principal.can_read(env, service):
            raise may_not_read(principal, env, service)
    if any(not served.has(env, service) for env in envs):
        raise _unknown_service(served, service)
    return envs


def _unknown_service(served: ServedRevision, service: str) -> ApiError:
    return ApiError(
        404, "unknown_service", f"unknown service {service!r}; known: {', '.join(served.services)}"
    )


def _version(served: ServedRevision, envs: tuple[str, ...]) -> str:
    """The revision a Spring reply is from: the highest-precedence profile's (a pinned
    environment is served from its pin)."""
    return served.revision_of(envs[-1]) if envs else served.revision


def _cache() -> BodyCache:
    return deps().spring_bodies


def _reply(
    body: Body, served: ServedRevision, profiles: tuple[str, ...], envs: tuple[str, ...]
) -> Response:
    headers: dict[str, Any] = dict(revision_headers(body.etag, _version(served, envs)))
    ignored = [p for p in profiles if p not in envs]
    if ignored:
        headers["X-Gitconf-Ignored-Profiles"] = ",".join(ignored)
    # The same request gets the same body until the next publish: the host may answer it
    # from memory (gitconf.server.fast.MEMO).
    request.environ[MEMO] = True
    if etag_matches(request.headers.get("If-None-Match"), body.etag):
        return Response(status=304, headers=headers)
    return Response(body.data, status=200, headers=headers, content_type=body.content_type)


def make_blueprint() -> Blueprint:
    """The Spring Cloud Config routes."""
    bp = Blueprint("spring", __name__)
    bp.record_once(_converters)
    bp.add_url_rule(
        "/<spring_service:service>/<spring_profiles:profiles>",
        view_func=default_label,
        methods=["GET"],
    )
    bp.add_url_rule(
        "/<spring_service:service>/<profiles>/<label>", view_func=labelled, methods=["GET"]
    )
    bp.add_url_rule("/<spring_document:document>", view_func=document, methods=["GET"])
    bp.add_url_rule(
        "/<label>/<spring_document:document>", view_func=labelled_document, methods=["GET"]
    )
    return bp
