"""agent.yaml: read, checked against schemas/agent.schema.json, paths resolved from its folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator

from gitconf.client.backoff import Backoff
from gitconf.client.protocol import Endpoint
from gitconf.core.model import to_plain
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import schema_errors
from gitconf.errors import GitconfError
from gitconf.package_data import own_schema

__all__ = ["AgentConfig", "AgentConfigError", "FileSpec", "load_agent_config"]


class AgentConfigError(GitconfError):
    """agent.yaml is unreadable or wrong; the message says where and how to fix it."""


class FileSpec(NamedTuple):
    """One entry of `files:`."""

    environment: str
    service: str
    destination: Path
    format: str | None
    template: Path | None
    perms: int | None
    check_cmd: str | None
    reload_cmd: str | None
    command_timeout: float

    @property
    def key(self) -> tuple[str, str]:
        """The (environment, service) it renders."""
        return (self.environment, self.service)


class AgentConfig(NamedTuple):
    """The agent's settings after validation."""

    path: Path
    server: str
    token: str | None
    ca_bundle: str | None
    cache_dir: str | None
    cache_secrets: bool
    instance: str | None
    log_level: str
    long_poll: float
    wait_min: float
    wait_max: float
    backoff: Backoff
    files: tuple[FileSpec, ...]

    def configs(self) -> list[tuple[str, str]]:
        """Each (environment, service) some file renders, once, in the order of files:."""
        return list(dict.fromkeys(spec.key for spec in self.files))


def _token(
    doc: Mapping[str, Any], where: str, base: Path, environ: Mapping[str, str]
) -> str | None:
    if "token_env" in doc:
        name = doc["token_env"]
        value = environ.get(name, "").strip()
        if not value:
            raise AgentConfigError(
                f"{where}: token_env: the variable {name!r} is not set or empty; "
                "export it, or use token_file"
            )
        return value
    if "token_file" in doc:
        path = base / doc["token_file"]
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise AgentConfigError(
                f"{where}: token_file: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        if not value:
            raise AgentConfigError(f"{where}: token_file: {str(path)!r} is empty")
        if any(c in value for c in "\r\n"):
            raise AgentConfigError(
                f"{where}: token_file: {str(path)!r} holds more than one line; "
                "it must hold the token alone"
            )
        return value
    return None


def _file_spec(item: Mapping[str, Any], index: int, where: str, base: Path) -> FileSpec:
    if "format" in item and "template" in item:
        raise AgentConfigError(
            f"{where}: files[{index}]: give format or template, not both "
            "(a template decides the whole file)"
        )
    return FileSpec(
        environment=item["environment"],
        service=item["service"],
        destination=base / item["destination"],
        format=None if "template" in item else item.get("format", "json"),
        template=base / item["template"] if "template" in item else None,
        perms=int(item["perms"], 8) if "perms" in item else None,
        check_cmd=item.get("check_cmd"),
        reload_cmd=item.get("reload_cmd"),
        command_timeout=float(item.get("command_timeout", 30)),
    )


def load_agent_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """agent.yaml at path, validated; AgentConfigError listing every problem found."""
    environ = os.environ if environ is None else environ
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AgentConfigError(f"{where}: cannot read the agent config: {exc.strerror}") from None
    tree, problems = parse_yaml(where, data)
    if tree is None:
        raise AgentConfigError("; ".join(p.render() for p in problems))
    validator = Draft202012Validator(own_schema("agent"))
    errors = [f"{s}: {k}: {m}" if k else f"{s}: {m}" for s, k, m in schema_errors(validator, tree)]
    if errors:
        raise AgentConfigError(
            "invalid agent config (see schemas/agent.schema.json): " + "; ".join(errors)
        )
    doc: dict[str, Any] = to_plain(tree)
    if "token_env" in doc and "token_file" in doc:
        raise AgentConfigError(f"{where}: give token_env or token_file, not both")
    try:
        Endpoint.of(doc["server"], "environment", "service")
    except ValueError as exc:
        raise AgentConfigError(f"{where}: server: {exc}") from None
    base = Path(path).resolve().parent
    wait = doc.get("wait", {})
    wait_min, wait_max = float(wait.get("min", 0.2)), float(wait.get("max", 2.0))
    if wait_max < wait_min:
        raise AgentConfigError(
            f"{where}: wait: max ({wait_max:g} s) is less than min ({wait_min:g} s); "
            "max bounds how long a burst of changes can delay a render, so it must be >= min"
        )
    backoff = doc.get("backoff", {})
    files = tuple(_file_spec(item, i, where, base) for i, item in enumerate(doc["files"]))
    destinations = [spec.destination for spec in files]
    twice = sorted({str(d) for d in destinations if destinations.count(d) > 1})
    if twice:
        raise AgentConfigError(f"{where}: files: {twice[0]!r} is the destination of two entries")
    return AgentConfig(
        path=Path(path),
        server=doc["server"].rstrip("/"),
        token=_token(doc, where, base, environ),
        ca_bundle=str(base / doc["ca_bundle"]) if "ca_bundle" in doc else None,
        cache_dir=str(base / doc["cache_dir"]) if "cache_dir" in doc else None,
        cache_secrets=bool(doc.get("cache_secrets", False)),
        instance=doc.get("instance"),
        log_level=doc.get("log_level", "info"),
        long_poll=float(doc.get("long_poll", 60)),
        wait_min=wait_min,
        wait_max=wait_max,
        backoff=Backoff(float(backoff.get("first", 0.5)), float(backoff.get("max", 30))),
        files=files,
    )
