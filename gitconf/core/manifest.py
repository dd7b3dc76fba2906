"""gitconf.yaml: checked against gitconf's manifest schema, then its extends chains."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from gitconf.core.model import (
    EnvironmentSpec,
    Limits,
    Manifest,
    Node,
    SubscriptionSpec,
    to_plain,
)
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import schema_errors
from gitconf.errors import Problem
from gitconf.package_data import own_schema

__all__ = ["MANIFEST_PATH", "parse_manifest"]

MANIFEST_PATH = "gitconf.yaml"


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(own_schema("manifest"))


def parse_manifest(data: bytes) -> tuple[Manifest | None, list[Problem]]:
    """The manifest and its problems; None when it is too broken to lay out the repository."""
    tree, problems = parse_yaml(MANIFEST_PATH, data)
    if tree is None:
        return None, problems
    for source, key_path, message in schema_errors(_validator(), tree):
        problems.append(
            Problem(source, message, key_path, "see gitconf's schemas/manifest.schema.json")
        )
    if problems:
        return None, problems
    raw = to_plain(tree)
    envs_node: Node = tree.value["environments"]
    environments: dict[str, EnvironmentSpec] = {}
    for name, spec in envs_node.value.items():
        extends = spec.value.get("extends") if spec.kind == "map" else None
        source = extends.source if extends is not None else spec.source
        environments[name] = EnvironmentSpec(name, extends.value if extends else None, source)
    problems += _check_chains(environments)
    validation = raw.get("validation") or {}
    subscriptions = tuple(
        SubscriptionSpec(
            name=item["name"],
            url=item["url"],
            environments=tuple(item.get("environments", ["*"])),
            services=tuple(item.get("services", ["*"])),
            secret_env=item.get("secret_env"),
            events=tuple(item.get("events", ["io.gitconf.config.changed"])),
            include_config=bool(item.get("include_config", False)),
            source=node.source,
        )
        for item, node in zip(
            raw.get("subscriptions", []), _seq(tree, "subscriptions"), strict=True
        )
    )
    names = [s.name for s in subscriptions]
    for sub in subscriptions:
        if names.count(sub.name) > 1 and names.index(sub.name) != subscriptions.index(sub):
            problems.append(
                Problem(
                    sub.source, f"subscription name {sub.name!r} is used twice", "subscriptions"
                )
            )
    if any(p.key_path.startswith("subscriptions") for p in problems):
        return None, problems
    rollouts: dict[str, dict[str, Any]] = {}
    for env, spec in (raw.get("rollouts") or {}).items():
        where = tree.value["rollouts"].value[env]
        steps = [int(p) for p in spec["steps"]]
        if env not in environments:
            problems.append(
                Problem(where.source, f"rollouts: {env!r} is not an environment", f"rollouts.{env}")
            )
        if steps != sorted(set(steps)):
            problems.append(
                Problem(
                    where.source,
                    f"steps {steps} must rise, each percent higher than the one before",
                    f"rollouts.{env}.steps",
                )
            )
        if steps[-1] != 100:
            steps.append(100)
        rollouts[env] = {"steps": steps, "bake": float(spec.get("bake", 600))}
    manifest = Manifest(
        environments=environments,
        rollouts=rollouts,
        require_schema=validation.get("require_schema", True),
        limits=Limits(**{k: v for k, v in validation.items() if k in Limits._fields}),
        subscriptions=subscriptions,
    )
    # Chain problems still leave a usable manifest (chains stop at a cycle or an unknown
    # parent), so the rest of the commit is checked and every problem reported at once.
    return manifest, problems


def _seq(tree: Node, key: str) -> tuple[Node, ...]:
    node = tree.value.get(key)
    return node.value if node is not None and node.kind == "seq" else ()


def _check_chains(environments: dict[str, EnvironmentSpec]) -> list[Problem]:
    problems: list[Problem] = []
    for name, spec in environments.items():
        if spec.extends is None:
            continue
        if spec.extends not in environments:
            problems.append(
                Problem(
                    spec.source,
                    f"environment {name!r} extends {spec.extends!r}, which is not declared",
                    f"environments.{name}.extends",
                    f"declare {spec.extends!r} under environments, or fix the name",
                )
            )
            continue
        chain = [name]
        current: str | None = spec.extends
        while current is not None and current in environments:
            if current in chain:
                if current == name:
                    cycle = " -> ".join([*chain, current])
                    problems.append(
                        Problem(
                            spec.source,
                            f"environment {name!r} extends itself through a cycle: {cycle}",
                            f"environments.{name}.extends",
                        )
                    )
                break
            chain.append(current)
            current = environments[current].extends
    return problems
