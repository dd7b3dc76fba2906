"""Spring's request names read as gitconf's: profiles, labels and `<service>-<env>` documents."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

__all__ = [
    "DEFAULT_LABELS",
    "DOCUMENT_FORMATS",
    "Reading",
    "parse_label",
    "parse_profiles",
    "split_document",
]

# The document suffixes Spring serves, and the format each one renders.
DOCUMENT_FORMATS = {"json": "json", "yml": "yaml", "yaml": "yaml", "properties": "properties"}
# Spring clients ask for "master" (older) or "main" (newer) when no label is configured.
DEFAULT_LABELS = ("main", "master")


class Reading(NamedTuple):
    """One way to read `<service>-<profiles>`: the service and the profiles, in order."""

    service: str
    profiles: tuple[str, ...]

    def describe(self) -> str:
        """The reading in words, for error messages."""
        envs = ",".join(self.profiles)
        return f"service {self.service!r} in environment {envs!r}"


def parse_profiles(text: str) -> tuple[str, ...]:
    """Comma-separated profiles, blanks dropped: `production,eu` -> ('production', 'eu')."""
    return tuple(p for p in (part.strip() for part in text.split(",")) if p)


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
    """
    readings = []
    for index, char in enumerate(stem):
        if char != "-":
            continue
        service, profiles = stem[:index], parse_profiles(stem[index + 1 :])
        if service in services and any(p in environments for p in profiles):
            readings.append(Reading(service, profiles))
    return readings
