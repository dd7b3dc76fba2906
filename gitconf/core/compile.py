"""A FileSet to a CompiledRevision: parse, lay out, merge and validate, collecting every problem."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import NamedTuple

from referencing.exceptions import Unresolvable

from gitconf.core.incremental import CompileCache, MergeBasis, Pair, PairKey, Parsed, SchemaProblem
from gitconf.core.layers import Layout, discover
from gitconf.core.limits import (
    check_files,
    check_manifest,
    check_total,
    check_total_configs,
    too_big,
)
from gitconf.core.manifest import MANIFEST_PATH, parse_manifest
from gitconf.core.merge import merge
from gitconf.core.model import (
    CompiledRevision,
    Config,
    FileSet,
    Limits,
    Manifest,
    Node,
    to_plain,
)
from gitconf.core.render import json_size
from gitconf.core.schemas import SchemaSet, load_schemas, service_of
from gitconf.core.secretpaths import secrets_in_plaintext
from gitconf.core.validate import located_errors
from gitconf.errors import Problem, Source, sorted_problems
from gitconf.secrets import Keyring, Skipped, check_yaml, read_yaml

__all__ = [
    "KEYLESS",
    "NO_KEYS",
    "CompileCache",
    "CompileResult",
    "SecretReading",
    "compile_fileset",
    "parse_layer",
]


class CompileResult(NamedTuple):
    """A compiled revision, or None and every problem that rejects the commit; and the
    checks that could not be made without the age keys (key-less validation only)."""

    revision: CompiledRevision | None
    problems: list[Problem]
    skipped: tuple[Skipped, ...] = ()


class SecretReading(NamedTuple):
    """How SOPS files are read: decrypted with these age keys (a SOPS file no key opens is a
    problem: fail closed), or, key-less, checked as far as that goes (`gitconf validate`
    without a key: its structure, and type checks from the types the ENC[...] values record).
    """

    keyring: Keyring | None = None
    keyless: bool = False

    @property
    def key(self) -> str:
        """What a cache of parses made this way is keyed by."""
        if self.keyless:
            return "key-less"
        return self.keyring.fingerprint if self.keyring is not None else ""


NO_KEYS = SecretReading()
KEYLESS = SecretReading(keyless=True)


def _blob(path: str, files: FileSet) -> str:
    oid = files.oids.get(path)
    if oid:
        return oid
    return hashlib.blake2b(files.files[path], digest_size=16).hexdigest()


def _read(path: str, data: bytes, reading: SecretReading) -> Parsed:
    found = check_yaml(path, data) if reading.keyless else read_yaml(path, data, reading.keyring)
    return Parsed(found.tree, found.problems, found.sources, found.skipped)


def _parse(
    path: str, blob: str, data: bytes, cache: CompileCache | None, reading: SecretReading
) -> Parsed:
    if cache is None:
        return _read(path, data, reading)
    # Sources name the path, so the same blob at another path is parsed anew.
    key = (path, blob)
    hit = cache.parsed.get(key)
    if hit is None:
        hit = cache.parsed[key] = _read(path, data, reading)
    return hit


def parse_layer(
    path: str, files: FileSet, cache: CompileCache | None, reading: SecretReading
) -> Parsed:
    """One layer file of a file set read as a compile reads it (from cache's parses when it
    holds this blob), without adding to the cache."""
    hit = cache.parsed.get((path, _blob(path, files))) if cache is not None else None
    return hit if hit is not None else _read(path, files.files[path], reading)


def compile_fileset(
    files: FileSet, cache: CompileCache | None = None, secrets: SecretReading = NO_KEYS
) -> CompileResult:
    """Compile every (environment, service) of the file set, or report every problem.

    SOPS-encrypted layer files are decrypted with secrets.keyring (gitconf.secrets); a leaf
    whose value came from an encrypted place is a secret (CompiledRevision.secrets).
    """
    if cache is not None:
        cache.read_with(secrets.key)
    if MANIFEST_PATH not in files.files:
        return CompileResult(
            None, [Problem(Source(MANIFEST_PATH), "the repository has no gitconf.yaml manifest")]
        )
    too_big = check_manifest(files)
    if too_big is not None:
        return CompileResult(None, [too_big])
    manifest, problems = parse_manifest(files.files[MANIFEST_PATH])
    limits = manifest.limits if manifest else Limits()
    skip, found = check_files(files, limits)
    problems += found
    too_big = check_total(files, limits)
    if too_big is not None:
        # Nothing more is read: the point of the limit is not to parse what it refuses.
        return CompileResult(None, sorted_problems([*problems, too_big]))
    paths = [p for p in files.files if p not in skip]
    blobs = {p: _blob(p, files) for p in paths if p != MANIFEST_PATH}
    layout, found = _discover(paths, cache)
    problems += found
    schemas, found = _schemas(files, blobs, cache)
    problems += found
    trees: dict[str, Node] = {}
    hidden: set[Source] = set()
    skipped: list[Skipped] = []
    for path in sorted({p for group in layout.files.values() for p in group}):
        parsed = _parse(path, blobs[path], files.files[path], cache, secrets)
        problems += parsed.problems
        hidden |= parsed.secrets
        skipped += parsed.skipped
        if parsed.tree is not None:
            trees[path] = parsed.tree
    if cache is not None:
        cache.keep_only(set(blobs.items()))
    if manifest is None:
        return CompileResult(None, sorted_problems(problems))
    # A service whose schema file was refused (too large, a link) is not also "without one".
    refused = {service_of(p) for p in skip if p.startswith("schemas/")}
    problems += _check_layout(manifest, layout, schemas, refused)
    configs, found, unchecked = _merge_all(
        manifest, layout, trees, schemas, blobs, files, cache, frozenset(hidden), secrets.keyless
    )
    problems += found
    skipped += unchecked
    done = tuple(sorted(set(skipped), key=lambda s: (s.source, s.message)))
    if problems:
        return CompileResult(None, sorted_problems(problems), done)
    revision = CompiledRevision(
        manifest=manifest,
        environments=tuple(manifest.environments),
        services=layout.services,
        configs=configs,
        secrets=frozenset(hidden),
    )
    return CompileResult(revision, [], done)


def _discover(paths: list[str], cache: CompileCache | None) -> tuple[Layout, list[Problem]]:
    key = tuple(paths)
    if cache is not None and cache.layout is not None and cache.layout[0] == key:
        return cache.layout[1], list(cache.layout[2])
    layout, problems = discover(paths)
    if cache is not None:
        cache.layout = (key, layout, list(problems))
    return layout, problems


def _schemas(
    files: FileSet, blobs: dict[str, str], cache: CompileCache | None
) -> tuple[SchemaSet, list[Problem]]:
    schema_paths = sorted(p for p in blobs if p.startswith("schemas/"))
    digest = hashlib.blake2b(
        "\n".join(f"{p}\0{blobs[p]}" for p in schema_paths).encode(), digest_size=16
    ).hexdigest()
    if cache is not None and cache.schemas is not None and cache.schemas[0] == digest:
        return cache.schemas[1], list(cache.schemas[2])
    schemas, problems = load_schemas(
        {p: files.files[p] for p in schema_paths},
        {p: blobs[p] for p in schema_paths},
        cache.schema_files if cache is not None else None,
    )
    if cache is not None:
        # Pairs stay: each is keyed by its service's schema key, which says if it changed.
        cache.schemas = (digest, schemas, list(problems))
    return schemas, problems


def _check_layout(
    manifest: Manifest, layout: Layout, schemas: SchemaSet, refused: set[str | None]
) -> list[Problem]:
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
            if (
                service not in schemas.paths
                and service not in schemas.broken
                and service not in refused
            ):
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
    manifest: Manifest,
    layout: Layout,
    trees: dict[str, Node],
    schemas: SchemaSet,
    blobs: dict[str, str],
    files: FileSet,
    cache: CompileCache | None,
    hidden: frozenset[Source] = frozenset(),
    keyless: bool = False,
) -> tuple[dict[tuple[str, str], Config], list[Problem], list[Skipped]]:
    configs: dict[tuple[str, str], Config] = {}
    problems: list[Problem] = []
    skipped: list[Skipped] = []
    # The same problem seen in several environments is reported once, naming them all.
    schema_problems: dict[SchemaProblem, list[str]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    sizes: dict[tuple[str, str], int] = {}
    limit = manifest.limits.max_config_size
    # Environments share the first layers of a service (base/_all, base/<service>, and a
    # parent's along an extends chain): each prefix of layers is merged once.
    prefixes: Prefixes = {}
    basis = _merge_basis(manifest, layout, schemas, cache)
    dirty: set[tuple[str, str]] | None = None
    if cache is not None and cache.merged is basis:
        # The same layout, chains, schemas and limit as the last merge: only the pairs of a
        # changed blob can differ from what the cache holds.
        last = basis.blobs
        dirty = {
            pair
            for p, blob in blobs.items()
            if last.get(p) != blob
            for pair in basis.users.get(p, ())
        }
    if cache is not None:
        # Set again once every pair is merged: a merge that raises midway must not leave
        # pairs newer than the blobs the basis remembers.
        cache.merged = None
    for env in manifest.environments:
        for service in layout.services:
            pair = (env, service)
            seen.add(pair)
            hit = cache.pairs.get(pair) if cache is not None else None
            if hit is None or dirty is None or pair in dirty:
                paths = basis.layers[pair]
                key: PairKey = (
                    tuple((p, blobs[p]) for p in paths),
                    schemas.keys.get(service, ""),
                    limit,
                )
                if hit is None or hit.key != key:
                    hit = Pair(
                        key,
                        *_merge_one(
                            env, service, paths, trees, schemas, prefixes, limit, hidden, keyless
                        ),
                    )
                    if cache is not None:
                        cache.pairs[pair] = hit
            problems += hit.problems
            skipped += hit.skipped
            sizes[pair] = hit.size
            if hit.config is not None:
                configs[pair] = hit.config
            for error in hit.errors:
                schema_problems[error].append(f"{env}/{service}")
    if cache is not None:
        for gone in [k for k in cache.pairs if k not in seen]:
            del cache.pairs[gone]
        basis.blobs = blobs
        cache.merged = basis
    for (source, key_path, message), where in schema_problems.items():
        # A value set in base/_all.yaml can fail several services' schemas: name each.
        used = sorted({schemas.paths[w.split("/", 1)[1]] for w in where})
        hint = f"schema {', '.join(used)}, in {', '.join(where)}"
        problems.append(Problem(source, message, key_path, hint))
    too_big = check_total_configs(sizes, basis.layers, files, manifest.limits)
    if too_big is not None:
        problems.append(too_big)
    return configs, problems, skipped


Prefixes = dict[tuple[str, ...], tuple[Node, tuple[Problem, ...]]]


def _merge_basis(
    manifest: Manifest,
    layout: Layout,
    schemas: SchemaSet,
    cache: CompileCache | None,
) -> MergeBasis:
    """The last merge's basis if this merge has the same one, else a new one."""
    chains = {env: manifest.chain(env) for env in manifest.environments}
    last = cache.merged if cache is not None else None
    limit = manifest.limits.max_config_size
    if (
        last is not None
        and last.layout is layout
        and last.schemas is schemas
        and last.chains == chains
        and last.max_config_size == limit
    ):
        return last
    layers: dict[tuple[str, str], list[str]] = {}
    users: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for env in manifest.environments:
        for service in layout.services:
            paths = layout.layers(manifest, env, service)
            layers[(env, service)] = paths
            for path in paths:
                users[path].append((env, service))
    return MergeBasis(layout, chains, schemas, limit, layers, dict(users))


def _merge_one(
    env: str,
    service: str,
    paths: list[str],
    trees: dict[str, Node],
    schemas: SchemaSet,
    prefixes: Prefixes | None = None,
    max_size: int = Limits().max_config_size,
    hidden: frozenset[Source] = frozenset(),
    keyless: bool = False,
) -> tuple[Config | None, list[Problem], list[SchemaProblem], int, tuple[Skipped, ...]]:
    """Merge one config's layers and validate it.

    The config, merge problems, schema errors, its size as compact JSON, and the checks of
    stand-in values skipped without a key; a config over max_size is a problem and is not
    validated.
    """
    tree: Node | None = None
    merged: tuple[Problem, ...] = ()
    for end, path in enumerate(paths, 1):
        if path not in trees:
            return None, list(merged), [], 0, ()
        prefix = tuple(paths[:end])
        hit = prefixes.get(prefix) if prefixes is not None else None
        if hit is None:
            tree, found = merge(tree, trees[path])
            merged += tuple(found)
            if prefixes is not None:
                prefixes[prefix] = (tree, merged)
        else:
            tree, merged = hit
    problems = list(merged)
    if tree is None:
        return None, problems, [], 0, ()
    value = to_plain(tree)
    size = json_size(value)
    if size > max_size:
        problems.append(too_big(env, service, paths, trees, size, max_size))
        return None, problems, [], size, ()
    validator = schemas.validators.get(service)
    unchecked: list[Skipped] = []
    try:
        located = list(located_errors(validator, tree, value)) if validator is not None else []
        errors = []
        for error in located:
            if keyless and error.source in hidden and error.keyword != "type":
                # A stand-in for a value only the key reveals: only its type is known.
                unchecked.append(
                    Skipped(
                        error.source,
                        f"{error.key_path}: {error.keyword} not checked without the age key",
                    )
                )
            else:
                errors.append((error.source, error.key_path, error.message))
    except re.error as exc:
        # The meta-schema does not check that a pattern is a regular expression.
        schema = schemas.paths.get(service, "its schema")
        problems.append(
            Problem(
                Source(schema),
                f"cannot validate {env}/{service}: the schema (or one it refers to) has a "
                f"pattern that is not a regular expression: {exc}",
                hint="patterns are ECMA 262 regular expressions, checked with Python's re",
            )
        )
        errors = []
    except RecursionError:
        # Not the config's depth (the parse bounds it), so the schema's: a chain of `$ref`s
        # or in-place keywords longer than Python's stack, with no cycle (those are found
        # when the schemas load).
        schema = schemas.paths.get(service, "its schema")
        problems.append(
            Problem(
                Source(schema),
                f"cannot validate {env}/{service}: the schema (or one it refers to) applies "
                "subschemas one inside another, through $ref, allOf, anyOf or the like, "
                "deeper than gitconf can follow",
                hint="shorten the chain of $refs, or refer to the last definition directly",
            )
        )
        errors = []
    except (AttributeError, TypeError, Unresolvable) as exc:
        # A valid schema that $refs into one that failed the meta-schema (reported on its
        # own) can make jsonschema fail midway; the commit is rejected for that problem.
        schema = schemas.paths.get(service, "its schema")
        problems.append(
            Problem(
                Source(schema),
                f"cannot validate {env}/{service}: the schema refers to an invalid one ({exc})",
            )
        )
        errors = []
    problems += secrets_in_plaintext(
        env, service, tree, schemas.secret_paths.get(service, ()), hidden
    )
    return Config(env, service, tree, tuple(paths)), problems, errors, size, tuple(unchecked)
