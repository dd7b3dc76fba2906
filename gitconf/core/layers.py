"""Which files make each (environment, service), in precedence order, and what is misplaced."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from gitconf.core.model import Manifest
from gitconf.errors import Problem, Source

__all__ = ["NAME_RE", "RESERVED_SERVICES", "YAML_SUFFIXES", "Layout", "discover", "is_config_path"]

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
YAML_SUFFIXES = (".yaml", ".yml")
ALL = "_all"
CONFIG_ROOTS = ("base/", "environments/", "schemas/")
MANIFEST = "gitconf.yaml"
# First path segments of gitconf's own HTTP routes (`static` is Flask's static-file route).
# The Spring Cloud Config routes serve /<service>/<env>, so a service of one of these names
# could never be reached there.
# `ui` is the dashboard's (/ui/...).
RESERVED_SERVICES = frozenset(
    {"v1", "healthz", "readyz", "metrics", "openapi.json", "static", "ui"}
)


def is_config_path(path: str) -> bool:
    """Whether gitconf reads this repository path (the manifest, schemas and layers)."""
    return path == MANIFEST or path.startswith(CONFIG_ROOTS)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.upper().startswith("README")


def _stem(name: str) -> str | None:
    for suffix in YAML_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


@dataclass
class Layout:
    """The layer files of a repository: (scope, name) -> files in merge order.

    scope is "base" or an environment name; name is "_all" or a service.
    """

    files: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    environment_folders: dict[str, str] = field(default_factory=dict)

    def layers(self, manifest: Manifest, env: str, service: str) -> list[str]:
        """The files that make (env, service), lowest precedence first."""
        out: list[str] = []
        for scope in ["base", *manifest.chain(env)]:
            out += self.files.get((scope, ALL), [])
            out += self.files.get((scope, service), [])
        return out


def discover(paths: list[str]) -> tuple[Layout, list[Problem]]:
    """Sort the layer files among paths into a Layout; misplaced or misnamed files are problems."""
    problems: list[Problem] = []
    # (scope, name) -> {"file": [paths], "folder": [paths]}
    found: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    env_folders: dict[str, str] = {}
    reserved: set[tuple[str, str]] = set()
    for path in sorted(paths):
        parts = path.split("/")
        if parts[0] == "base":
            scope, rest = "base", parts[1:]
        elif parts[0] == "environments":
            if len(parts) < 3:
                if not _ignored(parts[-1]):
                    problems.append(
                        Problem(
                            Source(path),
                            "a file directly under environments/ belongs to no environment",
                            hint="put it in environments/<env>/",
                        )
                    )
                continue
            scope, rest = parts[1], parts[2:]
            env_folders.setdefault(scope, path)
            if not NAME_RE.match(scope):
                problems.append(_bad_name(path, "environment", scope))
                continue
        else:
            continue
        if _ignored(rest[-1]):
            continue
        if _stem(rest[-1]) is None:
            problems.append(
                Problem(
                    Source(path),
                    "not a YAML file: layer files end in .yaml or .yml",
                    hint="rename it, or move it out of base/ and environments/",
                )
            )
            continue
        if len(rest) == 1:
            name, form = _stem(rest[0]) or "", "file"
        elif len(rest) == 2:
            name, form = rest[0], "folder"
        else:
            problems.append(
                Problem(
                    Source(path),
                    "too deep: a service folder holds YAML files, not folders",
                    hint=f"move it to {'/'.join(parts[: -len(rest) + 1])}/{rest[-1]}",
                )
            )
            continue
        if name != ALL and not NAME_RE.match(name):
            problems.append(_bad_name(path, "service", name))
            continue
        if name in RESERVED_SERVICES:
            if (scope, name) not in reserved:  # once per layer, not once per file of a folder
                reserved.add((scope, name))
                problems.append(_reserved(path, name))
            continue
        found[(scope, name)][form].append(path)
    layout = Layout(environment_folders=env_folders)
    services: set[str] = set()
    for key, forms in found.items():
        files = forms.get("file", [])
        folder = forms.get("folder", [])
        if len(files) > 1:
            problems.append(
                Problem(
                    Source(files[1]), f"{files[0]} and {files[1]} define the same layer; keep one"
                )
            )
        if files and folder:
            problems.append(
                Problem(
                    Source(folder[0]),
                    f"{files[0]} and the folder of {folder[0]} define the same layer; keep one",
                )
            )
        layout.files[key] = files[:1] + sorted(folder, key=lambda p: p.rsplit("/", 1)[1])
        if key[1] != ALL:
            services.add(key[1])
    layout.services = tuple(sorted(services))
    return layout, problems


def _bad_name(path: str, what: str, name: str) -> Problem:
    return Problem(
        Source(path),
        f"{what} name {name!r} is not allowed",
        hint="names match [a-z0-9][a-z0-9._-]*: lower case letters, digits, '.', '_' and '-'",
    )


def _reserved(path: str, name: str) -> Problem:
    return Problem(
        Source(path),
        f"service name {name!r} is reserved: gitconf serves /{name} itself, "
        f"so the Spring Cloud Config route /{name}/<env> could never reach this service",
        hint=f"rename the service; reserved names: {', '.join(sorted(RESERVED_SERVICES))}",
    )
