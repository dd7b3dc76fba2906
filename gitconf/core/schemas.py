"""JSON Schema 2020-12: load a repository's schemas (checked against the meta-schema, $refs
resolved) into one validator per service; gitconf.core.validate applies them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from gitconf.core.bundle import Bundler, Deps, resource_uri
from gitconf.core.evaluated import Validator
from gitconf.core.metaschema import meta_errors
from gitconf.core.model import KeyPath, Node, find, format_path, to_plain
from gitconf.core.parse import MAX_DEPTH, parse_yaml
from gitconf.core.refcycles import RefSite, describe, find_cycles, ref_sites
from gitconf.core.secretpaths import secret_paths
from gitconf.errors import Problem, Source

__all__ = ["SCHEMA_SUFFIXES", "SchemaCache", "SchemaSet", "load_schemas", "service_of"]

SCHEMA_SUFFIXES = (".schema.json", ".schema.yaml", ".schema.yml")
_BASE = "file:///"


@dataclass
class SchemaSet:
    """The validators of a repository's service schemas, built once per revision.

    `keys` names, per service, what its validator was built from: equal keys validate alike.
    """

    validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # services whose schema has problems
    keys: dict[str, str] = field(default_factory=dict)
    # Instance paths each service's schema marks "x-gitconf-secret": true.
    secret_paths: dict[str, tuple[tuple[str | None, ...], ...]] = field(default_factory=dict)


class SchemaFile(NamedTuple):
    """One file under schemas/ read and checked on its own, which no other file changes."""

    contents: Any
    tree: Node | None  # a YAML schema's located tree; a JSON one is located only for a problem
    loaded: bool  # an object or a boolean, so a schema
    problems: list[Problem]  # why it did not load, or its meta-schema errors
    plain: bool  # no $id below its root and no dynamic references: it can be bundled
    data: bytes = b""  # the file, to locate a JSON schema's values when a problem needs it
    sites: tuple[RefSite, ...] = ()  # its `$ref`s, for the cycle check of the whole set


@dataclass
class SchemaCache:
    """What load_schemas reuses from an earlier revision: compile's CompileCache holds one.

    Files by (path, blob); each file's `$ref` check and each service's validator with the
    files it read and the signature of the registry it resolved against.
    """

    files: dict[tuple[str, str], SchemaFile] = field(default_factory=dict)
    refs: dict[str, tuple[str, Deps, list[Problem]]] = field(default_factory=dict)
    bundles: dict[str, tuple[str, Deps, Draft202012Validator]] = field(default_factory=dict)


def _load_document(path: str, data: bytes) -> tuple[Any, Node | None, list[Problem]]:
    """A schema file's contents and, for a YAML one, its located tree (JSON: `_located`)."""
    if path.endswith(".json"):
        try:
            contents = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            message = getattr(exc, "msg", str(exc))
            return None, None, [Problem(Source(path, line, col), f"invalid JSON: {message}")]
        except (ValueError, RecursionError):
            # Valid JSON past gitconf's limits (an integer of thousands of digits, nesting
            # deeper than Python's decoder goes): the YAML reader says where, as for a config.
            return None, None, _beyond_limits(path, data)
        if _deeper_than(contents, MAX_DEPTH):
            return None, None, _beyond_limits(path, data)
        return contents, None, []
    tree, problems = parse_yaml(path, data)
    if tree is None:
        return None, None, problems
    return to_plain(tree), tree, []


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether the JSON value nests more than limit arrays and objects (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _beyond_limits(path: str, data: bytes) -> list[Problem]:
    """The problems of a JSON file that passes a limit of gitconf, where the YAML reader finds them."""
    problems = parse_yaml(path, data)[1]
    return problems or [
        Problem(
            Source(path),
            f"the file nests more than {MAX_DEPTH} levels or holds a number too long to read",
            hint=f"gitconf reads at most {MAX_DEPTH} levels and integers of 4,300 digits",
        )
    ]


def service_of(path: str) -> str | None:
    """The service whose schema the path under schemas/ is, if it is one."""
    name = path[len("schemas/") :]
    if "/" in name:
        return None
    for suffix in SCHEMA_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _located(path: str, tree: Node | None, data: bytes) -> Node | None:
    """The file's located tree: a JSON schema is parsed as YAML only when a problem needs it.

    None where the JSON does not parse as YAML (duplicate keys, say): its problems then name
    the file without a line.
    """
    if tree is None and path.endswith(".json"):
        tree = parse_yaml(path, data)[0]
    return tree


def _where(tree: Node | None, path: str, key_path: KeyPath) -> Source:
    if tree is None:
        return Source(path)
    return find(tree, key_path)[0].source


def _refs(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "$ref" and isinstance(child, str):
                yield (*path, key), child
            else:
                yield from _refs(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _refs(child, (*path, index))


_DYNAMIC = frozenset({"$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"})


def _plain(value: Any, root: bool = True) -> bool:
    """No `$id` below the root and no dynamic keyword anywhere (keys, not schema positions)."""
    if isinstance(value, dict):
        if not _DYNAMIC.isdisjoint(value) or (not root and "$id" in value):
            return False
        return all(_plain(v, False) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v, False) for v in value)
    return True


def read_schema_file(path: str, data: bytes) -> SchemaFile:
    """A file under schemas/ parsed and checked against the 2020-12 meta-schema."""
    contents, tree, problems = _load_document(path, data)
    if problems or not isinstance(contents, (dict, bool)):
        if not problems:
            problems = [Problem(Source(path), "a JSON Schema is an object or a boolean")]
        return SchemaFile(None, None, False, problems, False)
    errors = list(meta_errors(contents))
    if errors:
        tree = _located(path, tree, data)
    for error in errors:
        key_path = tuple(error.absolute_path)
        problems.append(
            Problem(
                _where(tree, path, key_path),
                f"invalid JSON Schema: {error.message}",
                format_path(key_path),
            )
        )
    sites = ref_sites(contents, _base_of(path, contents))
    return SchemaFile(contents, tree, True, problems, _plain(contents), data, sites)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _key(signature: str, deps: Deps) -> str:
    return _digest(signature + "\n" + "\n".join(f"{p}\0{b}" for p, b in sorted(deps)))


def _base_of(path: str, contents: Any) -> str:
    if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
        return str(contents["$id"])
    return _BASE + path


def load_schemas(
    files: Mapping[str, bytes],
    blobs: Mapping[str, str] | None = None,
    cache: SchemaCache | None = None,
) -> tuple[SchemaSet, list[Problem]]:
    """Check every file under schemas/ and build one validator per service schema.

    With a cache (and the files' blob ids), a file whose blob is unchanged is not checked
    again, and a service whose schema files are all unchanged keeps its validator.
    """
    paths = [
        p
        for p in sorted(files)
        if p.startswith("schemas/") and p.endswith((".json", ".yaml", ".yml"))
    ]
    if blobs is None:
        blobs = {p: hashlib.blake2b(files[p], digest_size=16).hexdigest() for p in paths}
    if cache is None:
        cache = SchemaCache()
    checked: dict[tuple[str, str], SchemaFile] = {}
    problems: list[Problem] = []
    loaded: dict[str, SchemaFile] = {}
    broken: set[str] = set()
    for path in paths:
        blob = (path, blobs[path])
        read = checked[blob] = cache.files.get(blob) or read_schema_file(path, files[path])
        if read.loaded:
            loaded[path] = read
        elif (service := service_of(path)) is not None:
            broken.add(service)
        problems += read.problems
    cache.files = checked
    # Every file still checked as a schema, so that a bundle never walks an invalid one.
    bundling = all(read.plain and not read.problems for read in checked.values())

    resources = []
    uris: dict[str, str] = {}
    for path, read in loaded.items():
        resource = Resource.from_contents(read.contents, default_specification=DRAFT202012)
        resources.append((_BASE + path, resource))
        uris[_BASE + path] = path
        if isinstance(read.contents, dict) and isinstance(read.contents.get("$id"), str):
            resources.append((read.contents["$id"], resource))
            uris[read.contents["$id"]] = path
    # Crawling indexes ids and anchors; a schema that failed the meta-schema can be shaped so
    # that referencing cannot crawl it (`"items": [1]`): it is registered, never crawled.
    valid = [(uri, r) for uri, r in resources if not loaded[uris[uri]].problems]
    invalid = [(uri, r) for uri, r in resources if loaded[uris[uri]].problems]
    registry: Registry[Any] = Registry().with_resources(valid).crawl().with_resources(invalid)
    # What jsonschema would combine into each validator's registry, combined once.
    combined: Registry[Any] = SPECIFICATIONS.combine(registry)
    signature = _digest(repr(sorted(uris.items())))
    everything = _digest(signature + repr(sorted(checked)))
    if not bundling:
        cache.refs.clear()
        cache.bundles.clear()
    bundler = Bundler(combined, uris, blobs)
    resolves: dict[tuple[str, str], bool] = {}
    cycles = _cycle_problems(loaded, registry)

    schemas = SchemaSet(broken=broken)
    for path, read in loaded.items():
        bad = bool(read.problems)  # a loaded file's problems are its meta-schema errors
        found = _check_refs(path, read, registry, uris, blobs, signature, cache, bundling, resolves)
        found += cycles.problems.get(path, [])
        problems += found
        bad = bad or bool(found) or not cycles.reach.get(path, set()).isdisjoint(cycles.problems)
        service = service_of(path)
        if service is None:
            continue
        if bad:
            schemas.broken.add(service)
            continue
        if service in schemas.paths:
            problems.append(
                Problem(
                    Source(path), f"{schemas.paths[service]} is already the schema of {service!r}"
                )
            )
            continue
        schema = read.contents
        if isinstance(schema, dict) and "$id" not in schema:
            schema = {**schema, "$id": _BASE + path}
        hit = cache.bundles.get(service) if bundling else None
        if hit is not None and hit[0] == signature and all(blobs.get(p) == b for p, b in hit[1]):
            validator, built = hit[2], _key(signature, hit[1])
        else:
            bundled, deps = bundler.bundle(path, schema) if bundling else (None, None)
            validator = _validator(bundled if deps is not None else schema, combined)
            built = everything if deps is None else _key(signature, deps)
            if deps is not None:
                cache.bundles[service] = (signature, deps, validator)
        schemas.validators[service] = validator
        schemas.keys[service] = built
        marked = secret_paths(validator.schema)
        if marked:
            schemas.secret_paths[service] = marked
        schemas.paths[service] = path
    for gone in [s for s in cache.bundles if s not in schemas.validators]:
        del cache.bundles[gone]
    for gone in [p for p in cache.refs if p not in loaded]:
        del cache.refs[gone]
    return schemas, problems


class _Cycles(NamedTuple):
    problems: dict[str, list[Problem]]  # by the file of the `$ref` that closes a cycle
    reach: dict[str, set[str]]  # the files each file reaches (only when there is a cycle)


def _cycle_problems(loaded: Mapping[str, SchemaFile], registry: Registry[Any]) -> _Cycles:
    """A problem at each `$ref` that closes a cycle validation would never leave."""
    valid = {path: read for path, read in loaded.items() if not read.problems}
    found, reach = find_cycles({p: r.sites for p, r in valid.items()}, registry)
    problems: dict[str, list[Problem]] = {}
    for cycle in found:
        read = valid[cycle.path]
        tree = _located(cycle.path, read.tree, read.data)
        problems.setdefault(cycle.path, []).append(
            Problem(
                _where(tree, cycle.path, cycle.key_path),
                describe(cycle),
                format_path(cycle.key_path),
                "a $ref may come back to where it began only through properties, items or "
                "another keyword that descends into the value",
            )
        )
    return _Cycles(problems, reach)


def _validator(schema: Any, registry: Registry[Any]) -> Draft202012Validator:
    """jsonschema's validator for the schema, resolving against an already combined registry."""
    resource = DRAFT202012.create_resource(schema)
    validator: Draft202012Validator = Validator(
        schema, _resolver=registry.resolver_with_root(resource)
    )
    return validator


def _check_refs(
    path: str,
    read: SchemaFile,
    registry: Registry[Any],
    uris: Mapping[str, str],
    blobs: Mapping[str, str],
    signature: str,
    cache: SchemaCache,
    reuse: bool,
    resolves: dict[tuple[str, str], bool],
) -> list[Problem]:
    """A problem for each `$ref` in the file that does not resolve.

    `resolves` holds, per (resource, fragment), whether it resolves in this registry: files
    mostly refer to the same few definitions.
    """
    hit = cache.refs.get(path) if reuse else None
    if hit is not None and hit[0] == signature and all(blobs.get(p) == b for p, b in hit[1]):
        return list(hit[2])
    base = _base_of(path, read.contents)
    resolver = registry.resolver(base_uri=base)
    problems = []
    deps = {(path, blobs[path])}
    tree, located = read.tree, read.tree is not None
    for ref_path, ref in _refs(read.contents):
        uri = resource_uri(base, ref)
        if (target := uris.get(uri[0])) is not None:
            deps.add((target, blobs[target]))
        ok = resolves.get(uri)
        if ok is None:
            try:
                resolver.lookup(ref)
                ok = resolves[uri] = True
            except (
                Unresolvable,
                AttributeError,
                TypeError,
            ):  # the last two: into an invalid schema
                ok = resolves[uri] = False
        if not ok:
            if not located:
                tree, located = _located(path, tree, read.data), True
            if tree is None:
                # A JSON file that YAML cannot read (duplicate keys) never had its $refs
                # checked, having no located tree; that stays so.
                continue
            problems.append(
                Problem(
                    find(tree, ref_path)[0].source,
                    f"$ref {ref!r} does not resolve",
                    format_path(ref_path),
                    "refer to a file under schemas/ by relative path, "
                    "e.g. _common/db.json#/$defs/db",
                )
            )
    if reuse:
        cache.refs[path] = (signature, frozenset(deps), list(problems))
    return problems
