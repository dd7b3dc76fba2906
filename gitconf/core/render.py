"""A merged config as the bytes gitconf serves: JSON, YAML, or flattened `KEY=value` lines."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import yaml

from gitconf.core.model import KeyPath, format_path
from gitconf.core.scalars import resolve_plain
from gitconf.errors import GitconfError

__all__ = [
    "FORMATS",
    "RenderError",
    "etag_of",
    "flatten",
    "json_size",
    "render",
    "to_env",
    "to_json",
    "to_yaml",
]

FORMATS = ("json", "yaml", "env")


def json_size(value: Any) -> int:
    """The bytes of the value as compact JSON: what gitconf's config size limits count."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text) if text.isascii() else len(text.encode())


def to_json(value: Any) -> bytes:
    """Pretty JSON with a final newline; key order as merged."""
    return (json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


class _Dumper(yaml.CSafeDumper):
    """Quotes strings that a YAML 1.2 reader would take for numbers, on top of YAML 1.1's set."""


# Booleans of YAML 1.1 (and of readers such as Go's yaml.v2) that PyYAML's resolver leaves out.
_YAML_1_1_ONLY = frozenset({"y", "Y", "n", "N"})


def _represent_str(dumper: Any, data: str) -> yaml.Node:
    if data in _YAML_1_1_ONLY or not isinstance(resolve_plain(data), str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def to_yaml(value: Any) -> bytes:
    """Block-style YAML that YAML 1.1 and 1.2 readers both read back as it was."""
    dumped: str = yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return dumped.encode()


def flatten(value: Any, *, lists: bool = True) -> dict[str, Any]:
    """Leaves by dotted key path; list items as `key[0]`, or whole lists when lists=False."""
    out: dict[str, Any] = {}

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict) and node:
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list) and node and lists:
            for index, child in enumerate(node):
                walk(child, (*path, index))
        else:
            out[format_path(path)] = node

    walk(value, ())
    return out


_ENV_NAME = re.compile(r"[^A-Za-z0-9]+")
_ENV_SAFE = re.compile(r"[A-Za-z0-9_./:@%+,-]*\Z")


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # Only empty dicts and lists reach here: the others were flattened.
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if _ENV_SAFE.match(text):
        return text
    for char in '\\"$`':  # the characters special inside double quotes, backslash first
        text = text.replace(char, "\\" + char)
    escaped = text.replace("\n", "\\n")
    return f'"{escaped}"'


class RenderError(GitconfError):
    """A config that cannot be written in a format; the message names the keys and why."""


def to_env(value: Any) -> bytes:
    """`DB_POOL_MAX=50` lines, one per leaf; values quoted where a shell would need it.

    RenderError when two keys would make the same variable (`db.pool` and `db_pool`), or a
    key has no letter or digit to make one of: a variable must not silently lose a value.
    """
    lines = []
    names: dict[str, str] = {}
    for path, leaf in flatten(value).items():
        if not path:
            if leaf in ({}, []):
                continue  # an empty config: no variables
            raise RenderError("the config is a single value, not keys: env lines need keys")
        name = _ENV_NAME.sub("_", path).strip("_").upper()
        if not name:
            raise RenderError(f"key {path} has no letter or digit to make a variable name of")
        first = names.setdefault(name, path)
        if first != path:
            raise RenderError(
                f"keys {first} and {path} would both be the variable {name}; "
                "rename one, or read this config as json or yaml"
            )
        lines.append(f"{name}={_env_value(leaf)}\n")
    return "".join(lines).encode()


def render(value: Any, fmt: str) -> bytes:
    """The config in one of FORMATS."""
    if fmt == "json":
        return to_json(value)
    if fmt == "yaml":
        return to_yaml(value)
    if fmt == "env":
        return to_env(value)
    raise ValueError(f"unknown format {fmt!r}")


def etag_of(data: bytes) -> str:
    """The strong ETag of served bytes: a hash of them, so equal bytes keep equal ETags."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
