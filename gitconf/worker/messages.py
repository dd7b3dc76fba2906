"""What the server and its compile worker say to each other (pickled over a pipe)."""

from __future__ import annotations

from typing import Any, NamedTuple

from gitconf.errors import Problem

__all__ = [
    "Adopt",
    "Adopted",
    "ApplyChange",
    "BaseConfig",
    "BaseLayers",
    "Built",
    "ChangeApplied",
    "ChangeRefused",
    "ChangesBetween",
    "Compile",
    "DiffBetween",
    "Explain",
    "Failed",
    "Refused",
    "Revision",
    "Started",
]

ConfigKey = tuple[str, str]


class Compile(NamedTuple):
    """Compile the commit sha of the mirror; the server serves base now (None: nothing)."""

    sha: str
    base: str | None


class Revision(NamedTuple):
    """Compile sha (a ref a request names) and send every body: the server has none of it."""

    sha: str


class Adopt(NamedTuple):
    """The server serves sha now: keep its compiled revision, and diff the next one from it."""

    sha: str


class Explain(NamedTuple):
    """The provenance document of one config of a revision."""

    sha: str
    environment: str
    service: str


class BaseLayers(NamedTuple):
    """The base layers of one service of a revision merged alone (base/_all, base/<service>)."""

    sha: str
    service: str


class DiffBetween(NamedTuple):
    """The effective changes, key by key, from one revision to another."""

    old: str
    new: str


class ChangesBetween(NamedTuple):
    """The changed key paths of every config whose body differs between two revisions."""

    old: str
    new: str


class ApplyChange(NamedTuple):
    """Apply edits (changes.apply.Edit) to commit sha and compile the result."""

    sha: str
    edits: tuple[Any, ...]


class ChangeApplied(NamedTuple):
    """The edited files (changes.apply.FileEdit), the compile's problems (none: the change is
    valid), and its effective changes (core.diff.ConfigChange, secrets masked) from sha."""

    sha: str
    edited: tuple[Any, ...]
    problems: list[Problem]
    diff: list[Any]
    reach: tuple[tuple[str, str], ...] = ()  # every config whose layers hold an edited file


class ChangeRefused(NamedTuple):
    """An edit gitconf will not make (a changes.errors.ChangeError, as plain fields: an
    exception with keyword arguments does not survive a pickle)."""

    code: str
    status: int
    message: str
    fields: dict[str, str]
    problems: list[Problem]


class Started(NamedTuple):
    """Sent before a compile starts: its largest files, to name if a limit stops it."""

    sha: str
    largest: list[tuple[str, int]]


class Built(NamedTuple):
    """A valid revision, as publishing needs it.

    `bodies` holds the JSON bodies, by ETag, that the server's base revision does not have;
    `changed` maps every config whose ETag differs from base's (or that appeared or vanished)
    to its changed key paths, when base is known to the worker (else `base` is None and every
    body is sent).
    """

    sha: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    subscriptions: tuple[dict[str, Any], ...]
    etags: dict[ConfigKey, str]
    bodies: dict[str, bytes]
    base: str | None
    changed: dict[ConfigKey, tuple[str, ...]]
    seconds: float
    # Configs with values decrypted from SOPS files: `etags`/`bodies` above are without them
    # (what readers without the secrets: scope get, and what is persisted); these are the
    # plaintext variants (kept in memory only), and how many values each redacts.
    secret_etags: dict[ConfigKey, str]
    secret_bodies: dict[str, bytes]
    redacted: dict[ConfigKey, int]
    # The manifest's rollouts: {environment: {"steps": [...], "bake": seconds}}.
    rollouts: dict[str, dict[str, Any]] = {}  # noqa: RUF012 - a NamedTuple default, never mutated


class Adopted(NamedTuple):
    """The worker holds the served revision now: its ETags, and its plaintext variants."""

    etags: dict[ConfigKey, str]
    secret_etags: dict[ConfigKey, str]
    secret_bodies: dict[str, bytes]
    redacted: dict[ConfigKey, int]


class BaseConfig(NamedTuple):
    """The reply to BaseLayers: the layers merged, their value as JSON without the values
    decrypted from SOPS files (and with them, if it has any: None otherwise), how many values
    that leaves out, and the file:line:col that set each leaf, by key path."""

    layers: tuple[str, ...]
    body: bytes
    secret_body: bytes | None
    redacted: int
    origins: dict[str, str]


class Refused(NamedTuple):
    """The commit is invalid (or exceeded a compile limit): every problem found."""

    sha: str
    problems: list[Problem]
    limit: bool = False


class Failed(NamedTuple):
    """The worker could not answer, and the commit is not to blame (a bug, an unreadable
    mirror): the server retries later."""

    message: str
