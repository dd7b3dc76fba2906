"""Merged configs in Spring Cloud Config's shapes: property sources, Environment, .properties.

Spring flattens YAML the way its YamlProcessor does: nested keys joined by dots (`db.pool.max`),
list items as `servers[0]`, null and empty lists as "", empty maps dropped. A key that itself
holds a dot is written `labels[app.kubernetes.io]`, which Spring Boot binds as one map key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from gitconf.core.model import KeyPath, format_path

__all__ = [
    "environment",
    "flatten",
    "merge_profiles",
    "property_source",
    "source_name",
    "spring_key",
    "to_properties",
]


def spring_key(path: KeyPath) -> str:
    """A key path as a Spring property name: `a.b.c`, `servers[0].host`, `labels[a.b]`.

    Not gitconf's format_path on purpose: Spring's relaxed binding reads a key with a dot as
    `[a.b]`, where gitconf writes `["a.b"]`.
    """
    out: list[str] = []
    for part in path:
        if isinstance(part, int) or "." in part:
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if out else part)
    return "".join(out)


def leaves(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every leaf Spring keeps, with its key path: null and [] as "", empty maps left out.

    Not gitconf.core.render.flatten on purpose: Spring Config Server writes null and empty
    lists as "" and leaves empty maps out; gitconf's own flattening keeps them as they are.
    """
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        if not value:
            yield path, ""
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    else:
        yield path, "" if value is None else value


def flatten(value: Any) -> dict[str, Any]:
    """A merged config as Spring property names to values, in merge order."""
    return {spring_key(path): leaf for path, leaf in leaves(value)}


def source_name(env: str, service: str, revision: str) -> str:
    """The name of the one property source of (env, service) at a revision."""
    return f"gitconf:{env}/{service}@{revision}"


def property_source(
    env: str,
    service: str,
    revision: str,
    value: Any,
    origins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One Spring property source holding the whole merged config, flattened.

    With origins (gitconf key path -> `file:line:col`), each value is Spring's v2 form
    `{"value": ..., "origin": ...}`, which Spring Boot shows as the property's origin.
    """
    source: dict[str, Any] = {}
    for path, leaf in leaves(value):
        origin = origins.get(format_path(path)) if origins is not None else None
        source[spring_key(path)] = leaf if origin is None else {"value": leaf, "origin": origin}
    return {"name": source_name(env, service, revision), "source": source}


def environment(
    name: str,
    profiles: Sequence[str],
    label: str | None,
    revision: str,
    sources: list[dict[str, Any]],
) -> dict[str, Any]:
    """Spring's Environment document; sources are listed highest precedence first."""
    return {
        "name": name,
        "profiles": list(profiles),
        "label": label,
        "version": revision,
        "state": None,
        "propertySources": sources,
    }


def merge_profiles(values: Sequence[Any]) -> Any:
    """Configs of several profiles merged in order, the last winning.

    Maps merge key by key; anything else (lists included) replaces, as Spring replaces a
    whole list when a later profile sets it.
    """
    merged: Any = {}
    for value in values:
        merged = _merge(merged, value)
    return merged


def _merge(low: Any, high: Any) -> Any:
    if isinstance(low, dict) and isinstance(high, dict):
        out = dict(low)
        for key, value in high.items():
            out[key] = _merge(low[key], value) if key in low else value
        return out
    return high


_KEY_ESCAPES = re.compile(r"([\\:= ])")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A value must stay on its line; escaped the way java.util.Properties reads it back.
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _key(key: str) -> str:
    return _KEY_ESCAPES.sub(r"\\\1", key)


def to_properties(value: Any) -> bytes:
    """`key: value` lines, one per Spring property, as Spring's `.properties` route serves."""
    lines = [f"{_key(key)}: {_text(leaf)}\n" for key, leaf in flatten(value).items()]
    return "".join(lines).encode()
