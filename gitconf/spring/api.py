"""Spring Cloud Config routes: `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>`.

The routes never shadow gitconf's own: a converter refuses the reserved first segments (`v1`,
`healthz`, ...), so `/v1/...` keeps its 404s and 405s, and Werkzeug tries static rules first.
Bodies are built once per (revision, request) and kept in an LRU bounded by bytes, with their
ETags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from gitconf.core.layers import RESERVED_SERVICES
from gitconf.core.render import to_json, to_yaml
from gitconf.served import Body, ServedRevision
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.fast import MEMO
from gitconf.server.formats import etag_matches
from gitconf.server.responses import revision_headers
from gitconf.spring.cache import BodyCache
from gitconf.spring.names import (
    DEFAULT_PROFILE,
    DOCUMENT_FORMATS,
    names_a_service,
    parse_label,
    split_document,
)
from gitconf.spring.properties import environment, merge_profiles, property_source, to_properties
from gitconf.spring.resolve import (
    bad_names,
    base_of,
    bearer,
    begin,
    plaintext_of,
    read_profiles,
    target_of,
    value_for,
)

__all__ = ["V2_JSON", "bearer", "make_blueprint"]


# Spring Boot's config client asks for this type; its property values carry their origin.
V2_JSON = "application/vnd.spring-cloud.config-server.v2+json"
TEXT = "text/plain; charset=utf-8"
# The environment part of the base layers' property source name: no environment is named
# so (names start with a letter or digit), as no service is named `_all`.
BASE_SOURCE = "_base"

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
    principal, served, memo = begin(label, application=service, profiles=text)
    profiles = read_profiles(text)
    v2 = V2_JSON in request.headers.get("Accept", "")
    content_type = V2_JSON if v2 else "application/json"
    if service not in served.services:
        # Spring answers an application it has no files for with 200 and no property sources
        # (spring.cloud.config.server.accept-empty, true by default): so does gitconf.
        body = _cache().get(
            ("no-service", served.state, service, profiles, label),
            content_type,
            lambda: to_json(environment(service, profiles, label, served.revision, [])),
        )
        return _reply(body, served, (), memo)
    target = target_of(principal, served, service, profiles)

    def origins(env: str) -> dict[str, str]:
        explain = served.explain_body(env, service)
        leaves = json.loads(explain.data)["leaves"] if explain is not None else []
        return {leaf["key"]: leaf["source"] for leaf in leaves}

    def build() -> bytes:
        if target.base:
            base = base_of(principal, served, service)
            sources = (
                [
                    property_source(
                        BASE_SOURCE,
                        service,
                        served.revision,
                        base.value,
                        base.origins if v2 else None,
                    )
                ]
                if base.layers
                else []  # no base layer: Spring has no file to send either
            )
        else:
            sources = [
                property_source(
                    env,
                    service,
                    served.revision_of(env),
                    value_for(principal, served, env, service),
                    origins(env) if v2 else None,
                )
                for env in reversed(target.envs)  # the last profile wins, so it comes first
            ]
        version = _version(served, target.envs)
        return to_json(environment(service, profiles, label, version, sources))

    plain = plaintext_of(principal, served, service, target)
    # By the served state, not the head alone: a pin serves other bodies at the same head.
    key = ("environment", served.state, service, profiles, label, v2, target, plain)
    body = _cache().get(key, content_type, build)
    return _reply(body, served, target.ignored, memo, target.envs)


def _document(name: str, label: str | None) -> Response:
    principal, served, memo = begin(label, document=name)
    stem, ext = name.rsplit(".", 1)
    fmt = DOCUMENT_FORMATS[ext]
    with bad_names():
        readings = split_document(stem, served.services, (*served.environments, DEFAULT_PROFILE))
    if not readings:
        if "-" in stem and not names_a_service(stem, served.services):
            # An application gitconf has no config for: Spring's empty document, as for its
            # empty Environment above (its profiles read as Spring reads them: after the
            # last hyphen).
            read_profiles(stem.rsplit("-", 1)[1])
            return _render_document(served, ("no-service", stem), fmt, (), memo, lambda: {})
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
    target = target_of(principal, served, service, profiles)

    def value() -> Any:
        if target.base:
            return base_of(principal, served, service).value
        return merge_profiles([value_for(principal, served, env, service) for env in target.envs])

    key = (service, target, plaintext_of(principal, served, service, target))
    return _render_document(served, key, fmt, target.ignored, memo, value, target.envs)


def _render_document(
    served: ServedRevision,
    key: tuple[Any, ...],
    fmt: str,
    ignored: tuple[str, ...],
    memo: bool,
    value: Callable[[], Any],
    envs: tuple[str, ...] = (),
) -> Response:
    """One document of a revision in a format, from its body cache."""

    def build() -> bytes:
        found = value()
        if fmt == "json":
            return to_json(found)
        return to_yaml(found) if fmt == "yaml" else to_properties(found)

    cache_key = ("document", served.state, *key, fmt)
    body = _cache().get(cache_key, "application/json" if fmt == "json" else TEXT, build)
    return _reply(body, served, ignored, memo, envs)


def _cache() -> BodyCache:
    return deps().spring_bodies


def _version(served: ServedRevision, envs: tuple[str, ...]) -> str:
    """The revision a Spring reply is from: the highest-precedence profile's (a pinned
    environment is served from its pin)."""
    return served.revision_of(envs[-1]) if envs else served.revision


def _reply(
    body: Body,
    served: ServedRevision,
    ignored: tuple[str, ...],
    memo: bool,
    envs: tuple[str, ...] = (),
) -> Response:
    headers: dict[str, Any] = dict(revision_headers(body.etag, _version(served, envs)))
    if ignored:
        headers["X-Gitconf-Ignored-Profiles"] = ",".join(ignored)
    # The same request gets the same body until the next publish: the host may answer it
    # from memory (gitconf.server.fast.MEMO), unless its label may move before then.
    if memo:
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
