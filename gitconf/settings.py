"""Server settings: server.yaml, GITCONF_<OPTION> variables and flags, checked against a schema.

Precedence: flag > environment > file > default. Secrets are named by variable or file and
read when needed; they never appear in the settings' repr or in logs.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from gitconf.brokers.spec import check_settings as check_brokers
from gitconf.core.model import format_path, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import located_errors
from gitconf.errors import GitconfError
from gitconf.package_data import own_schema

__all__ = ["SCALAR_OPTIONS", "Settings", "SettingsError", "load_settings"]

# Top-level options that also come from flags and GITCONF_<OPTION> variables, by type.
SCALAR_OPTIONS: dict[str, type] = {
    "repo": str,
    "branch": str,
    "listen": str,
    "poll_interval": float,
    "fetch_timeout": float,
    "state_dir": str,
    "database_url": str,
    "public_url": str,
    "log_level": str,
    "max_waiters": int,
    "max_wait": float,
    "ref_cache_size": int,
    "threads": int,
    "io_threads": int,
    "reuse_port": bool,
}
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class SettingsError(GitconfError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    """The server's settings after precedence and validation."""

    repo: str
    branch: str = "main"
    listen: str = "127.0.0.1:8080"
    poll_interval: float = 30.0
    fetch_timeout: float = 30.0
    state_dir: str = ".gitconf-state"
    database_url: str | None = None
    public_url: str | None = None
    log_level: str = "info"
    max_waiters: int = 10_000
    max_wait: float = 300.0
    ref_cache_size: int = 8
    threads: int = 8
    io_threads: int = 1
    reuse_port: bool = False
    # Secrets may sit in these (inline tokens and hook secrets): keep them out of the repr.
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    tokens: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    hooks: Mapping[str, Any] = field(default_factory=dict, repr=False)
    subscribers: Mapping[str, Any] = field(default_factory=dict)
    delivery: Mapping[str, float] = field(default_factory=dict)
    compile: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    changes: Mapping[str, Any] = field(default_factory=dict)
    spring: Mapping[str, Any] = field(default_factory=dict)
    audit: Mapping[str, Any] = field(default_factory=dict)

    @property
    def audit_keep_days(self) -> float:
        """How many days audit rows are kept (audit.keep_days)."""
        return float(self.audit.get("keep_days", 400))

    def age_key_files(self, environ: Mapping[str, str]) -> list[str]:
        """The age identity files to decrypt SOPS files with (secrets.age_key_files, then
        GITCONF_AGE_KEY_FILE)."""
        from gitconf.secrets import key_file_paths

        return key_file_paths(list(self.secrets.get("age_key_files", ())), environ)

    # A broker's URL may hold its password (better: url_env): keep them out of the repr.
    brokers: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def change_mode(self) -> str:
        """Where a change goes by default: commit (the tracked branch) or branch (its own)."""
        return str(self.changes.get("mode", "commit"))

    @property
    def committer(self) -> tuple[str, str]:
        """The (name, email) that commits changes (changes.committer, `name <email>`)."""
        return parse_person(self.changes.get("committer", DEFAULT_COMMITTER), "changes.committer")

    @property
    def spring_default_environment(self) -> str | None:
        """The environment Spring's profile `default` is served as (spring.default_environment);
        None: the base layers only, as Spring answers."""
        found = self.spring.get("default_environment")
        return str(found) if found else None

    @property
    def spring_labels(self) -> tuple[str, ...]:
        """Globs of the branches fetched as Spring labels besides the tracked one (spring.labels)."""
        return tuple(self.spring.get("labels", ()))

    @property
    def compile_timeout(self) -> float:
        """CPU seconds one compile may take (compile.timeout)."""
        return float(self.compile.get("timeout", 60.0))

    @property
    def compile_max_memory(self) -> int:
        """Bytes of address space the compile worker may use (compile.max_memory)."""
        return parse_size(self.compile.get("max_memory", "2GiB"), "compile.max_memory")

    @property
    def host(self) -> str:
        """The host part of listen, without IPv6 brackets."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of listen."""
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store."""
        return self.database_url or f"sqlite:///{Path(self.state_dir).resolve() / 'gitconf.db'}"

    def base_url(self) -> str:
        """How clients reach this server."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_MIN_COMPILE_MEMORY = 128 * 1024**2


DEFAULT_COMMITTER = "gitconf <gitconf@localhost>"
_PERSON = re.compile(r"\A([^<>\n]+?)\s*<([^<>\s]+)>\Z")


def parse_person(value: str, where: str) -> tuple[str, str]:
    """`Name <email>` as (name, email); SettingsError naming where otherwise."""
    match = _PERSON.match(value.strip())
    if match is None:
        raise SettingsError(f"{where}: {value!r} is not `Name <email>`")
    return match.group(1), match.group(2)


def parse_size(value: int | str, where: str) -> int:
    """Bytes from an integer or a size such as `2GiB`, `512 MiB` or `1.5G`."""
    if isinstance(value, int):
        size = value
    else:
        text = value.strip()
        number = text.rstrip("BbKkMmGgTtIi ")
        unit = text[len(number) :].strip().lower()
        try:
            size = int(float(number) * _UNITS[unit])
        except (ValueError, KeyError):
            raise SettingsError(
                f"{where}: {value!r} is not a size; write bytes or a size such as 2GiB or 512MiB"
            ) from None
    if size < _MIN_COMPILE_MEMORY:
        raise SettingsError(
            f"{where}: {value!r} is below the minimum of 128MiB (the worker alone needs ~60MiB)"
        )
    return size


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in SCALAR_OPTIONS.items():
        raw = environ.get(f"GITCONF_{name.upper()}")
        if raw is None or raw == "":
            continue
        if kind is bool:  # bool("false") is True: read the words instead
            if raw.lower() not in _BOOLEANS:
                raise SettingsError(f"GITCONF_{name.upper()}={raw!r}: {name} must be true or false")
            out[name] = _BOOLEANS[raw.lower()]
            continue
        try:
            out[name] = kind(raw)
        except ValueError:
            raise SettingsError(
                f"GITCONF_{name.upper()}={raw!r}: {name} must be a {kind.__name__}"
            ) from None
    return out


_SECRET_SECTIONS = ("tokens", "hooks", "credentials")
# A broker's url, and any message about a whole broker entry (which quotes the entry).
_BROKER_SECRET = re.compile(r"brokers(\[\d+\]|\.\d+)?(\.url)?\Z")


# The keywords whose messages quote key names, never values: safe to show for a secret.
_NAMES_ONLY = frozenset({"required", "additionalProperties", "unevaluatedProperties"})


def _without_secrets(where: str, message: str, keyword: str) -> str:
    """jsonschema quotes the offending value: never do so where it may be a secret."""
    if not where.startswith(_SECRET_SECTIONS) and not _BROKER_SECRET.match(where):
        return message
    if keyword in ("oneOf", "anyOf"):
        if where.startswith("brokers"):
            return "give exactly one of url and url_env (the variable that holds the URL)"
        return "give exactly one of the secret and the variable that holds it (e.g. token or token_env)"
    if keyword in _NAMES_ONLY:
        return message
    return "invalid value (not shown: it may be a secret); see schemas/server.schema.json"


def _from_file(path: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from None
    tree, problems = parse_yaml(path, data)
    if tree is None:
        raise SettingsError("; ".join(p.render() for p in problems))
    validator = Draft202012Validator(own_schema("server"))
    partial = {**{"repo": "-"}, **to_plain(tree)}  # repo may come from a flag instead
    errors = [
        f"{e.source}: {e.key_path}: {_without_secrets(e.key_path, e.message, e.keyword)}"
        if e.key_path
        else f"{e.source}: {e.message}"
        for e in located_errors(validator, tree, partial)
    ]
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    loaded: dict[str, Any] = to_plain(tree)
    return loaded


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Settings from flags, GITCONF_* variables and an optional server.yaml, validated."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("GITCONF_CONFIG") or None
    merged: dict[str, Any] = _from_file(config_file) if config_file else {}
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    if not merged.get("repo"):
        raise SettingsError(
            "repo: no repository given; use --repo, GITCONF_REPO or repo: in server.yaml"
        )
    validator = Draft202012Validator(own_schema("server"))
    for error in validator.iter_errors(merged):
        where = format_path(tuple(error.absolute_path)) or "settings"
        shown = _without_secrets(where, error.message, str(error.validator))
        raise SettingsError(f"{where}: {shown}")
    values = dict(merged)
    values["tokens"] = tuple(values.get("tokens", ()))
    values["brokers"] = tuple(values.get("brokers", ()))
    for number in ("poll_interval", "fetch_timeout", "max_wait"):
        if number in values:
            values[number] = float(values[number])
    if "listen" in values:
        values["listen"] = _listen_address(values["listen"])
    settings = Settings(**values)
    _check_listen(settings)
    _check_delivery(settings)
    _check_spring(settings)
    problems = check_brokers(settings.brokers)
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    settings.compile_max_memory  # noqa: B018 - a bad size is an error now, not at the first compile
    settings.committer  # noqa: B018 - and a bad committer, not at the first change
    return settings


def _check_spring(settings: Settings) -> None:
    for glob in settings.spring_labels:
        if glob.startswith("refs/"):
            raise SettingsError(
                f"spring.labels: {glob!r} names a ref; the globs match branch names as labels "
                f"name them: write {glob.removeprefix('refs/heads/')!r}"
            )


def _check_delivery(settings: Settings) -> None:
    lease, timeout = settings.delivery.get("lease"), settings.delivery.get("timeout", 10.0)
    if lease is not None and lease <= timeout:
        raise SettingsError(
            f"delivery.lease: {lease:g} s must be longer than delivery.timeout ({timeout:g} s), "
            "or another replica could send a delivery while an attempt is still running"
        )


def _listen_address(listen: str) -> str:
    """listen with its host as the IP address the server binds: `localhost` is 127.0.0.1.

    The HTTP server binds an address, not a name. localhost (and `*.localhost`, RFC 6761)
    always means this machine's loopback; any other name could resolve to several addresses,
    or to another one tomorrow, so it is refused here rather than failing once serving starts.
    """
    host, port = listen.rsplit(":", 1)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return listen
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"127.0.0.1:{port}"
    raise SettingsError(
        f"listen: {listen!r} names the host {host!r}, and gitconf listens on an IP address: "
        f"use 127.0.0.1:{port} (this machine only), 0.0.0.0:{port} (every interface; tokens "
        "required) or the address of one interface"
    )


def _check_listen(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise SettingsError(f"listen: port {settings.port} is out of range")
    loopback = ipaddress.ip_address(settings.host).is_loopback
    if not settings.tokens and not loopback:
        raise SettingsError(
            f"listen: refusing to listen on {settings.listen} without tokens: anyone who reaches it "
            "could read every config. Configure tokens: in server.yaml, or listen on 127.0.0.1"
        )
