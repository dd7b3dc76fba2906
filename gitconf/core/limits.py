"""The limits of what one commit may hold and expand to, as problems (Limits, in gitconf.yaml)."""

from __future__ import annotations

from collections.abc import Mapping

from gitconf.core.layers import is_config_path
from gitconf.core.manifest import MANIFEST_PATH
from gitconf.core.model import FileSet, Limits, Node, to_plain
from gitconf.core.render import json_size
from gitconf.errors import Problem, Source

__all__ = ["check_files", "check_manifest", "check_total", "check_total_configs", "too_big"]


def check_files(files: FileSet, limits: Limits) -> tuple[set[str], list[Problem]]:
    """Paths gitconf must not read (irregular or too large), as problems."""
    problems: list[Problem] = []
    skip: set[str] = set()
    for path, kind in sorted(files.irregular.items()):
        if is_config_path(path):
            skip.add(path)
            what = "a symbolic link" if kind == "symlink" else f"a {kind}"
            problems.append(
                Problem(
                    Source(path),
                    f"{what} among the config paths",
                    hint="commit the file itself: gitconf reads only regular files",
                )
            )
    for path, data in files.files.items():
        if path == MANIFEST_PATH or not is_config_path(path):
            continue
        schema = path.startswith("schemas/")
        limit = limits.schema_size if schema else limits.max_file_size
        if len(data) > limit:
            skip.add(path)
            setting = "max_schema_size" if schema else "max_file_size"
            problems.append(
                Problem(
                    Source(path),
                    f"the file is {len(data):,} bytes, over the limit of {limit:,}",
                    hint=f"split it, or raise validation.{setting} in gitconf.yaml",
                )
            )
    return skip, problems


def check_total(files: FileSet, limits: Limits) -> Problem | None:
    """A problem when the files gitconf reads hold more than validation.max_total_size."""
    total = sum(len(data) for path, data in files.files.items() if is_config_path(path))
    if total <= limits.max_total_size:
        return None  # sorted only to name the largest files, when over the limit
    sizes = sorted(
        ((len(data), path) for path, data in files.files.items() if is_config_path(path)),
        key=lambda item: (-item[0], item[1]),
    )
    largest = ", ".join(f"{path} ({size:,} bytes)" for size, path in sizes[:3])
    return Problem(
        Source(sizes[0][1]),
        f"the files gitconf reads total {total:,} bytes, over the limit of "
        f"{limits.max_total_size:,}; the largest: {largest}",
        hint="remove or shrink files, or raise validation.max_total_size in gitconf.yaml",
    )


def check_manifest(files: FileSet) -> Problem | None:
    size = len(files.files[MANIFEST_PATH])
    # Read before its own limits are known: the default limit of a file applies.
    limit = Limits().max_file_size
    if size <= limit:
        return None
    return Problem(
        Source(MANIFEST_PATH),
        f"the manifest is {size:,} bytes, over the limit of {limit:,}",
        hint="gitconf.yaml declares environments, validation and subscriptions; "
        "move anything else out of it",
    )


def check_total_configs(
    sizes: dict[tuple[str, str], int],
    layers: Mapping[tuple[str, str], list[str]],
    files: FileSet,
    limits: Limits,
) -> Problem | None:
    """A problem when the merged configs together pass validation.max_total_config_size."""
    total = sum(sizes.values())
    if total <= limits.max_total_config_size:
        return None
    largest = sorted(sizes, key=lambda pair: (-sizes[pair], pair))
    named = ", ".join(
        f"{env}/{service} ({sizes[(env, service)]:,} bytes)" for env, service in largest[:3]
    )
    # The largest file of the largest config: a file in every config (base/_all.yaml) is what
    # makes a small commit expand to many large configs.
    heaviest = max(layers[largest[0]], key=lambda p: (len(files.files.get(p, b"")), p))
    return Problem(
        Source(heaviest),
        f"the merged configs of this commit total {total:,} bytes of JSON, over the limit of "
        f"{limits.max_total_config_size:,}; the largest: {named}",
        hint="shrink the layers that every config includes, "
        "or raise validation.max_total_config_size in gitconf.yaml",
    )


def too_big(
    env: str, service: str, paths: list[str], trees: dict[str, Node], size: int, limit: int
) -> Problem:
    """The problem of a config over validation.max_config_size, at its largest layer."""
    # Only on this rare path: which layer weighs most once its aliases are expanded.
    heaviest = max(paths, key=lambda p: (json_size(to_plain(trees[p])), p))
    return Problem(
        Source(heaviest),
        f"{env}/{service} merges to {size:,} bytes of JSON, over the limit of {limit:,}; "
        f"its layers: {', '.join(paths)}",
        hint="shrink its layers (an alias counts as what it expands to), "
        "or raise validation.max_config_size in gitconf.yaml",
    )
