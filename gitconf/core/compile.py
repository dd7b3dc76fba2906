"""A FileSet to a CompiledRevision: parse, lay out, merge and validate, collecting every problem."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import MutableMapping
from typing import NamedTuple

from gitconf.core.layers import Layout, discover, is_config_path
from gitconf.core.manifest import MANIFEST_PATH, parse_manifest
from gitconf.core.merge import merge
from gitconf.core.model import CompiledRevision, Config, FileSet, Manifest, Node
from gitconf.core.parse import parse_yaml
from gitconf.core.validate import SchemaSet, load_schemas, schema_errors
from gitconf.errors import Problem, Source, sorted_problems

__all__ = ["CompileResult", "ParseCache", "compile_fileset"]

ParseCache = MutableMapping[tuple[str, str], tuple[Node | None, list[Problem]]]


class CompileResult(NamedTuple):
    """A compiled revision, or None and every problem that rejects the commit."""

    revision: CompiledRevision | None
    problems: list[Problem]


def _parse(
    path: str, files: FileSet, cache: ParseCache | None
) -> tuple[Node | None, list[Problem]]:
    data = files.files[path]
    if cache is None:
        return parse_yaml(path, data)
    # Sources name the path, so the same blob at another path is parsed anew.
    key = (path, files.oids.get(path) or hashlib.blake2b(data, digest_size=16).hexdigest())
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = parse_yaml(path, data)
    return hit


def _check_files(files: FileSet, limit: int) -> tuple[set[str], list[Problem]]:
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
        if len(data) > limit and is_config_path(path):
            skip.add(path)
            problems.append(
                Problem(
                    Source(path),
                    f"the file is {len(data):,} bytes, over the limit of {limit:,}",
                    hint="split it, or raise validation.max_file_size in gitconf.yaml",
                )
            )
    return skip, problems


def compile_fileset(files: FileSet, cache: ParseCache | None = None) -> CompileResult:
    """Compile every (environment, service) of the file set, or report every problem."""
    if MANIFEST_PATH not in files.files:
        return CompileResult(
            None, [Problem(Source(MANIFEST_PATH), "the repository has no gitconf.yaml manifest")]
        )
    manifest, problems = parse_manifest(files.files[MANIFEST_PATH])
    limit = manifest.max_file_size if manifest else 1024 * 1024
    skip, found = _check_files(files, limit)
    problems += found
    paths = [p for p in files.files if p not in skip]
    layout, found = discover(paths)
    problems += found
    schemas, found = load_schemas({p: files.files[p] for p in paths if p.startswith("schemas/")})
    problems += found
    trees: dict[str, Node] = {}
    for path in sorted({p for group in layout.files.values() for p in group}):
        tree, found = _parse(path, files, cache)
        problems += found
        if tree is not None:
            trees[path] = tree
    if manifest is None:
        return CompileResult(None, sorted_problems(problems))
    problems += _check_layout(manifest, layout, schemas)
    configs, found = _merge_all(manifest, layout, trees, schemas)
    problems += found
    if problems:
        return CompileResult(None, sorted_problems(problems))
    revision = CompiledRevision(
        manifest=manifest,
        environments=tuple(manifest.environments),
        services=layout.services,
        configs=configs,
        schemas=dict(schemas.paths),
    )
    return CompileResult(revision, [])


def _check_layout(manifest: Manifest, layout: Layout, schemas: SchemaSet) -> list[Problem]:
    problems = []
    for env, first in sorted(layout.environment_folders.items()):
        if env not in manifest.environments:
            problems.append(
                Problem(
                    Source(first),
                    f"environment {env!r} is not declared in gitconf.yaml",
                    hint=f"add `{env}: {{}}` under environments:, or remove the folder",
                )
            )
    if manifest.require_schema:
        for service in layout.services:
            if service not in schemas.paths and service not in schemas.broken:
                first = min(
                    p for (_, name), group in layout.files.items() if name == service for p in group
                )
                problems.append(
                    Problem(
                        Source(first),
                        f"service {service!r} has no schema",
                        hint=f"add schemas/{service}.schema.json, "
                        "or set validation.require_schema: false in gitconf.yaml",
                    )
                )
    return problems


def _merge_all(
    manifest: Manifest, layout: Layout, trees: dict[str, Node], schemas: SchemaSet
) -> tuple[dict[tuple[str, str], Config], list[Problem]]:
    configs: dict[tuple[str, str], Config] = {}
    problems: list[Problem] = []
    # The same problem seen in several environments is reported once, naming them all.
    schema_problems: dict[tuple[Source, str, str], list[str]] = defaultdict(list)
    for env in manifest.environments:
        for service in layout.services:
            paths = layout.layers(manifest, env, service)
            tree: Node | None = None
            for path in paths:
                if path not in trees:
                    tree = None
                    break
                tree, found = merge(tree, trees[path])
                problems += found
            if tree is None:
                continue
            configs[(env, service)] = Config(env, service, tree, tuple(paths))
            validator = schemas.validators.get(service)
            if validator is None:
                continue
            for source, key_path, message in schema_errors(validator, tree):
                schema_problems[(source, key_path, message)].append(f"{env}/{service}")
    for (source, key_path, message), where in schema_problems.items():
        service = where[0].split("/", 1)[1]
        hint = f"schema {schemas.paths[service]}, in {', '.join(where)}"
        problems.append(Problem(source, message, key_path, hint))
    return configs, problems
