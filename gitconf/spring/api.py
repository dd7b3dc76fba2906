"""Spring Cloud Config routes: `/<service>/<env>[/<label>]` and `[/<label>]/<service>-<env>.<ext>`.

The routes never shadow gitconf's own: a converter refuses the reserved first segments (`v1`,
`healthz`, ...), so `/v1/...` keeps its 404s and 405s, and Werkzeug tries static rules first.
Bodies are built once per (revision, request) and kept in an LRU bounded by bytes, with their
ETags.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from gitconf.core.layers import RESERVED_SERVICES
from gitconf.core.render import to_json, to_yaml
from gitconf.git.remote import LabelBranches
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
    DEFAULT_PROFILE,
    DOCUMENT_FORMATS,
    BadName,
    check_name,
    names_a_service,
    parse_label,
    parse_profiles,
    split_document,
)
from gitconf.spring.properties import environment, merge_profiles, property_source, to_properties

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
    principal, served, memo = _begin(label, application=service, profiles=text)
    profiles = _profiles(text)
    v2 = V2_JSON in request.headers.get("Accept", "")
    content_type = V2_JSON if v2 else "application/json"
    if service not in served.services:
        # Spring answers an application it has no files for with 200 and no property sources
        # (spring.cloud.config.server.accept-empty, true by default): so does gitconf.
        body = _cache().get(
            ("no-service", served.revision, service, profiles, label),
            content_type,
            lambda: to_json(environment(service, profiles, label, served.revision, [])),
        )
        return _reply(body, served, (), memo)
    target = _target(principal, served, service, profiles)

    def origins(env: str) -> dict[str, str]:
        explain = served.explain_body(env, service)
        leaves = json.loads(explain.data)["leaves"] if explain is not None else []
        return {leaf["key"]: leaf["source"] for leaf in leaves}

    def build() -> bytes:
        if target.base:
            base = _base(principal, served, service)
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
                    served.revision,
                    _value(principal, served, env, service),
                    origins(env) if v2 else None,
                )
                for env in reversed(target.envs)  # the last profile wins, so it comes first
            ]
        return to_json(environment(service, profiles, label, served.revision, sources))

    plain = _plain(principal, served, service, target)
    key = ("environment", served.revision, service, profiles, label, v2, target, plain)
    body = _cache().get(key, content_type, build)
    return _reply(body, served, target.ignored, memo)


def _document(name: str, label: str | None) -> Response:
    principal, served, memo = _begin(label, document=name)
    stem, ext = name.rsplit(".", 1)
    fmt = DOCUMENT_FORMATS[ext]
    with _names():
        readings = split_document(stem, served.services, (*served.environments, DEFAULT_PROFILE))
    if not readings:
        if "-" in stem and not names_a_service(stem, served.services):
            # An application gitconf has no config for: Spring's empty document, as for its
            # empty Environment above (its profiles read as Spring reads them: after the
            # last hyphen).
            _profiles(stem.rsplit("-", 1)[1])
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
    target = _target(principal, served, service, profiles)

    def value() -> Any:
        if target.base:
            return _base(principal, served, service).value
        return merge_profiles([_value(principal, served, env, service) for env in target.envs])

    key = (service, target, _plain(principal, served, service, target))
    return _render_document(served, key, fmt, target.ignored, memo, value)


def _render_document(
    served: ServedRevision,
    key: tuple[Any, ...],
    fmt: str,
    ignored: tuple[str, ...],
    memo: bool,
    value: Callable[[], Any],
) -> Response:
    """One document of a revision in a format, from its body cache."""

    def build() -> bytes:
        found = value()
        if fmt == "json":
            return to_json(found)
        return to_yaml(found) if fmt == "yaml" else to_properties(found)

    cache_key = ("document", served.revision, *key, fmt)
    body = _cache().get(cache_key, "application/json" if fmt == "json" else TEXT, build)
    return _reply(body, served, ignored, memo)


@contextmanager
def _names() -> Iterator[None]:
    """A name of the request that gitconf refuses to read is a 400 naming the limit."""
    try:
        yield
    except BadName as exc:
        if exc.limit is None:
            raise ApiError(400, exc.code, exc.message) from None
        raise ApiError(400, exc.code, exc.message, limit=exc.limit) from None


class _Begun(NamedTuple):
    principal: Principal
    served: ServedRevision
    # Whether the answer may be remembered until the next publish (gitconf.server.fast.MEMO):
    # not at a label that can move without a publish (a label branch, a tag).
    memo: bool


def _begin(label: str | None, **names: str) -> _Begun:
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
    mirror = reader.refs.mirror
    fetched = mirror.label_branches.fetched if mirror is not None else ()
    # The tracked branch answers to its name, and to the label Spring clients send by
    # default when it is main or master (unless that names a label branch of its own).
    if (
        label is None
        or label == branch
        or (label in DEFAULT_LABELS and branch in DEFAULT_LABELS and label not in fetched)
    ):
        return _Begun(principal, reader.revision(None), True)
    try:
        return _Begun(principal, reader.revision(label, principal), False)
    except ApiError as exc:
        if exc.code != "unknown_ref":
            raise
        raise _unknown_label(label, branch) from None


def _unknown_label(label: str, branch: str) -> ApiError:
    """The 404 of a label the mirror has no tag, commit or branch for, saying why."""
    globs = list(deps().settings.spring_labels)
    mirror = deps().reader.refs.mirror
    branches = mirror.label_branches if mirror is not None else LabelBranches()
    if not globs:
        message = (
            f"unknown label {label!r}: no tag or commit of that name, and this server tracks "
            f"branch {branch!r}; leave the label out, or use {branch!r}, a tag or a commit sha "
            "(to serve other branches as labels, list them in spring.labels of the server "
            "settings)"
        )
    elif any(fnmatch.fnmatchcase(label, glob) for glob in globs):
        past = (
            f", or it is past the first {len(branches.fetched)} of the "
            f"{len(branches.fetched) + branches.skipped} branches that match, which are all "
            "that are fetched: narrow the globs"
            if branches.skipped
            else ""
        )
        message = (
            f"unknown label {label!r}: it matches spring.labels {globs}, but no branch of that "
            f"name was fetched: the remote has none (branches are fetched at each poll){past}"
        )
    else:
        message = (
            f"unknown label {label!r}: no tag or commit of that name, and not a branch this "
            f"server serves: it tracks branch {branch!r} and the branches that match "
            f"spring.labels {globs}; add a glob that matches it to spring.labels to serve it"
        )
    return ApiError(404, "unknown_label", message)


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


class Target(NamedTuple):
    """What a request's profiles are served from: environments, in the order given, or the
    base layers alone (no profile is an environment, and `default` is among them); and the
    profiles that count for nothing."""

    envs: tuple[str, ...]
    base: bool
    ignored: tuple[str, ...]


def _target(
    principal: Principal, served: ServedRevision, service: str, profiles: tuple[str, ...]
) -> Target:
    """The environments profiles name (`default` as spring.default_environment, if set);
    404 if none is and `default` is not among them, 403 if the token may not read one."""
    mapped = deps().settings.spring_default_environment
    envs: list[str] = []
    ignored: list[str] = []
    for profile in profiles:
        env = profile
        if profile == DEFAULT_PROFILE and profile not in served.environments and mapped:
            if mapped not in served.environments:
                raise ApiError(
                    404,
                    "unknown_environment",
                    f"the profile 'default' is served as spring.default_environment "
                    f"{mapped!r}, which revision {served.revision[:12]} does not declare; "
                    f"known: {', '.join(served.environments)}: declare it in gitconf.yaml, "
                    "or change spring.default_environment in the server settings",
                )
            env = mapped
        if env not in served.environments:
            ignored.append(profile)
        elif env not in envs:
            envs.append(env)
    if not envs:
        if DEFAULT_PROFILE not in profiles:
            raise ApiError(
                404,
                "unknown_environment",
                f"no environment among {','.join(profiles)!r}; known: "
                f"{', '.join(served.environments)}",
            )
        _check_base(principal, served, service)
        return Target((), True, tuple(p for p in ignored if p != DEFAULT_PROFILE))
    for env in envs:
        if not principal.can_read(env, service):
            raise may_not_read(principal, env, service)
    if any(not served.has(env, service) for env in envs):
        raise _unknown_service(served, service)
    return Target(tuple(envs), False, tuple(ignored))


def _check_base(principal: Principal, served: ServedRevision, service: str) -> None:
    """403 unless the token may read service in every environment: the base layers are a
    part of each one's config, values that any of them overrides included."""
    for env in served.environments:
        if not principal.can_read(env, service):
            raise ApiError(
                403,
                "forbidden",
                f"token {principal.name!r} may not read the base layers of {service!r} (the "
                f"profile 'default'): they are part of every environment's config, so it "
                f"needs read on {service} in each (such as 'read:*/{service}'), and it may "
                f"not read {env}/{service}; or set spring.default_environment in the server "
                "settings to serve 'default' as one environment",
            )


def _plain(
    principal: Principal, served: ServedRevision, service: str, target: Target
) -> tuple[str, ...] | bool:
    """What of target's body the token sees in plaintext: a body is cached per answer, so a
    token without the secrets: scope never gets a body built for one with it."""
    if target.base:
        return _base_secrets(principal, served, service)
    return tuple(
        env
        for env in target.envs
        if served.has_secrets(env, service) and principal.may("secrets", env, service)
    )


class _Base(NamedTuple):
    layers: tuple[str, ...]
    value: Any
    origins: dict[str, str]


def _base(principal: Principal, served: ServedRevision, service: str) -> _Base:
    """The base layers of service merged alone, with their secrets in plaintext only for a
    token that may read the secrets of service in every environment."""
    found = deps().reader.refs.base(served.revision, service)
    if found is None:
        raise _unknown_service(served, service)
    plaintext = found.secret_body is not None and _base_secrets(principal, served, service)
    data = found.secret_body if plaintext and found.secret_body is not None else found.body
    return _Base(found.layers, json.loads(data), found.origins)


def _base_secrets(principal: Principal, served: ServedRevision, service: str) -> bool:
    return all(principal.may("secrets", env, service) for env in served.environments)


def _unknown_service(served: ServedRevision, service: str) -> ApiError:
    return ApiError(
        404, "unknown_service", f"unknown service {service!r}; known: {', '.join(served.services)}"
    )


def _cache() -> BodyCache:
    return deps().spring_bodies


def _reply(body: Body, served: ServedRevision, ignored: tuple[str, ...], memo: bool) -> Response:
    headers: dict[str, Any] = dict(revision_headers(body.etag, served.revision))
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
