"""What a Spring request is served from: the caller, the revision its label names, and the
environments (or base layers) its profiles name, with the refusals that say why not."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from flask import request

from gitconf.git.remote import LabelBranches
from gitconf.served import ServedRevision
from gitconf.server.auth import Principal, may_not_read
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.reads import secrets_loading
from gitconf.spring.names import (
    DEFAULT_LABELS,
    DEFAULT_PROFILE,
    BadName,
    check_name,
    parse_profiles,
)

__all__ = [
    "Base",
    "Begun",
    "Target",
    "bad_names",
    "base_of",
    "bearer",
    "begin",
    "plaintext_of",
    "read_profiles",
    "target_of",
    "unknown_label",
    "unknown_service",
    "value_for",
]


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


@contextmanager
def bad_names() -> Iterator[None]:
    """A name of the request that gitconf refuses to read is a 400 naming the limit."""
    try:
        yield
    except BadName as exc:
        if exc.limit is None:
            raise ApiError(400, exc.code, exc.message) from None
        raise ApiError(400, exc.code, exc.message, limit=exc.limit) from None


class Begun(NamedTuple):
    """The caller of a Spring request and the revision its label names."""

    principal: Principal
    served: ServedRevision
    # Whether the answer may be remembered until the next publish (gitconf.server.fast.MEMO):
    # not at a label that can move without a publish (a label branch, a tag).
    memo: bool


def begin(label: str | None, **names: str) -> Begun:
    """The caller (401 first, as for every read) and the revision the label names.

    The label and the other names of the request (application=..., profiles=...) are checked
    in between: a 400 for a name gitconf will not read, before any work is done on it.
    """
    reader = deps().reader
    principal = reader.principal(bearer(request.headers.get("Authorization")))
    with bad_names():
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
        return Begun(principal, reader.revision(None), True)
    try:
        return Begun(principal, reader.revision(label, principal), False)
    except ApiError as exc:
        if exc.code != "unknown_ref":
            raise
        raise unknown_label(label, branch) from None


def unknown_label(label: str, branch: str) -> ApiError:
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


def read_profiles(text: str) -> tuple[str, ...]:
    with bad_names():
        profiles = parse_profiles(text)
    if not profiles:
        raise ApiError(
            400, "bad_profiles", f"{text!r} names no environment; give one, or several by comma"
        )
    return profiles


def value_for(principal: Principal, served: ServedRevision, env: str, service: str) -> Any:
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


def target_of(
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
        raise unknown_service(served, service)
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


def plaintext_of(
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


class Base(NamedTuple):
    """The base layers of a service merged alone: their files, value and origins."""

    layers: tuple[str, ...]
    value: Any
    origins: dict[str, str]


def base_of(principal: Principal, served: ServedRevision, service: str) -> Base:
    """The base layers of service merged alone, with their secrets in plaintext only for a
    token that may read the secrets of service in every environment."""
    found = deps().reader.refs.base(served.revision, service)
    if found is None:
        raise unknown_service(served, service)
    plaintext = found.secret_body is not None and _base_secrets(principal, served, service)
    data = found.secret_body if plaintext and found.secret_body is not None else found.body
    return Base(found.layers, json.loads(data), found.origins)


def _base_secrets(principal: Principal, served: ServedRevision, service: str) -> bool:
    return all(principal.may("secrets", env, service) for env in served.environments)


def unknown_service(served: ServedRevision, service: str) -> ApiError:
    return ApiError(
        404, "unknown_service", f"unknown service {service!r}; known: {', '.join(served.services)}"
    )
