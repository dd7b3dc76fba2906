"""Spring's request names read as gitconf's: profiles, labels and `<service>-<env>` documents."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import NamedTuple

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_PROFILE",
    "DOCUMENT_FORMATS",
    "MAX_NAME_LENGTH",
    "MAX_PROFILES",
    "BadName",
    "Reading",
    "check_name",
    "names_a_service",
    "parse_label",
    "parse_profiles",
    "split_document",
]

# The document suffixes Spring serves, and the format each one renders.
DOCUMENT_FORMATS = {"json": "json", "yml": "yaml", "yaml": "yaml", "properties": "properties"}
# Spring clients ask for "master" (older) or "main" (newer) when no label is configured.
DEFAULT_LABELS = ("main", "master")
# The profile Spring Boot asks for when none is active.
DEFAULT_PROFILE = "default"
# The longest name one path segment of a Spring request may carry: an application, a list of
# profiles, a label or a document name. Real ones are tens of characters; the bound keeps the
# work a request makes gitconf do on its names small, whatever it sends.
MAX_NAME_LENGTH = 1024
# The most distinct profiles one request may name; Spring Boot apps activate a handful.
MAX_PROFILES = 32
# Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BadName(ValueError):
    """A Spring name gitconf refuses to read: a stable code, a message, the limit it passed."""

    def __init__(self, code: str, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.limit = limit


class Reading(NamedTuple):
    """One way to read `<service>-<profiles>`: the service and the profiles, in order."""

    service: str
    profiles: tuple[str, ...]

    def describe(self) -> str:
        """The reading in words, for error messages."""
        envs = ",".join(self.profiles)
        return f"service {self.service!r} in environment {envs!r}"


def check_name(what: str, text: str) -> None:
    """BadName if text, the `what` of a request (`application`, `label`, ...), is too long
    or holds a control character (CR, LF, ...: no name has one, and no header can carry it)."""
    if len(text) > MAX_NAME_LENGTH:
        raise BadName(
            "name_too_long",
            f"the {what} {text[:40] + '...'!r} is {len(text)} characters long; gitconf reads "
            f"Spring names of at most {MAX_NAME_LENGTH} characters: ask with a shorter one",
            MAX_NAME_LENGTH,
        )
    control = _CONTROL.search(text)
    if control:
        raise BadName(
            "bad_name",
            f"the {what} {text!r} holds the control character {control.group()!r} at "
            f"{control.start() + 1}; names are printable text: remove it from the request",
        )


def parse_profiles(text: str) -> tuple[str, ...]:
    """Comma-separated profiles, blanks and repeats dropped: `production,eu` -> ('production', 'eu').

    A repeated profile keeps its first place, as Spring Boot orders its active profiles;
    BadName past MAX_PROFILES distinct ones.
    """
    profiles = tuple(dict.fromkeys(p for p in (part.strip() for part in text.split(",")) if p))
    if len(profiles) > MAX_PROFILES:
        raise BadName(
            "too_many_profiles",
            f"{len(profiles)} profiles asked for at once; gitconf reads at most {MAX_PROFILES} "
            "distinct profiles in one request: ask for fewer",
            MAX_PROFILES,
        )
    return profiles


def parse_label(text: str) -> str:
    """A label as Spring encodes it in a path segment: `(_)` stands for `/`."""
    return text.replace("(_)", "/")


def split_document(
    stem: str, services: Collection[str], environments: Collection[str]
) -> list[Reading]:
    """Every reading of `<service>-<profiles>` that names a known service and environment.

    Spring splits at the last hyphen, so it cannot serve `api-production-eu`; here every hyphen
    is tried, and a reading counts when its service exists and at least one of its profiles is
    an environment (Spring ignores profiles it has no config for; so does gitconf).

    Only the hyphens within the longest service name are tried, and the profiles are read only
    after the part before the hyphen named a service, so the work grows with the stem's length
    and not with its square.
    """
    longest = max(map(len, services), default=0)
    readings = []
    index = stem.find("-", 0, longest + 1)
    while index != -1:
        service = stem[:index]
        if service in services:
            profiles = parse_profiles(stem[index + 1 :])
            if any(p in environments for p in profiles):
                readings.append(Reading(service, profiles))
        index = stem.find("-", index + 1, longest + 1)
    return readings


def names_a_service(stem: str, services: Collection[str]) -> bool:
    """Whether the part of stem before one of its hyphens is a known service (so a stem that
    split_document cannot read names an unknown profile, not an unknown application)."""
    longest = max(map(len, services), default=0)
    index = stem.find("-", 0, longest + 1)
    while index != -1:
        if stem[:index] in services:
            return True
        index = stem.find("-", index + 1, longest + 1)
    return False
