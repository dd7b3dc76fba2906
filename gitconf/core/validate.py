"""JSON Schema 2020-12: load a repository's schemas once, check configs, map errors to sources."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urldefrag, urljoin, urlsplit

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from gitconf.core.metaschema import meta_errors
from gitconf.core.model import KeyPath, Node, find, format_path, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.errors import Problem, Source

if TYPE_CHECKING:
    from referencing._core import Resolver

__all__ = ["SCHEMA_SUFFIXES", "SchemaCache", "SchemaSet", "load_schemas", "schema_errors"]

SCHEMA_SUFFIXES = (".schema.json", ".schema.yaml", ".schema.yml")
_BASE = "file:///"
# A (path, blob) a result was computed from; a result is reused while they are all unchanged.
Deps = frozenset[tuple[str, str]]


@dataclass
class SchemaSet:
    """The validators of a repository's service schemas, built once per revision.

    `keys` names, per service, what its validator was built from: equal keys validate alike.
    """

    validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    trees: dict[str, Node] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # services whose schema has problems
    keys: dict[str, str] = field(default_factory=dict)


class SchemaFile(NamedTuple):
    """One file under schemas/ read and checked on its own, which no other file changes."""

    contents: Any
    tree: Node | None
    loaded: bool  # an object or a boolean, so a schema
    problems: list[Problem]  # why it did not load, or its meta-schema errors
    plain: bool  # no $id below its root and no dynamic references: it can be bundled


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
    """A schema file's contents and, where it parses as YAML, its located tree."""
    tree, problems = parse_yaml(path, data)
    if path.endswith(".json"):
        try:
            contents = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            message = getattr(exc, "msg", str(exc))
            return None, None, [Problem(Source(path, line, col), f"invalid JSON: {message}")]
        return contents, tree, []
    if tree is None:
        return None, None, problems
    return to_plain(tree), tree, []


def _service_of(path: str) -> str | None:
    name = path[len("schemas/") :]
    if "/" in name:
        return None
    for suffix in SCHEMA_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _where(tree: Node | None, path: str, key_path: KeyPath) -> Source:
    if tree is None:
        return Source(path)
    return find(tree, key_path)[0].source


def _refs(node: Node, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Node]]:
    if node.kind == "map":
        for key, child in node.value.items():
            if key == "$ref" and child.kind == "scalar" and isinstance(child.value, str):
                yield (*path, key), child
            else:
                yield from _refs(child, (*path, key))
    elif node.kind == "seq":
        for index, child in enumerate(node.value):
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
    for error in meta_errors(contents):
        key_path = tuple(error.absolute_path)
        problems.append(
            Problem(
                _where(tree, path, key_path),
                f"invalid JSON Schema: {error.message}",
                format_path(key_path),
            )
        )
    return SchemaFile(contents, tree, True, problems, _plain(contents))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _key(signature: str, deps: Deps) -> str:
    return _digest(signature + "\n" + "\n".join(f"{p}\0{b}" for p, b in sorted(deps)))


def _resource_uri(base: str, ref: str) -> tuple[str, str]:
    """The resource a `$ref` names and the fragment within it, as referencing resolves them."""
    if ref.startswith("#"):
        return base, ref[1:]
    uri, fragment = urldefrag(urljoin(base, ref))
    return uri, fragment


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
        elif (service := _service_of(path)) is not None:
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
    registry: Registry[Any] = Registry().with_resources(resources).crawl()
    # What jsonschema would combine into each validator's registry, combined once.
    combined: Registry[Any] = SPECIFICATIONS.combine(registry)
    signature = _digest(repr(sorted(uris.items())))
    everything = _digest(signature + repr(sorted(checked)))
    if not bundling:
        cache.refs.clear()
        cache.bundles.clear()
    bundler = _Bundler(combined, uris, blobs)

    schemas = SchemaSet(broken=broken)
    for path, read in loaded.items():
        bad = any(p.message.startswith("invalid JSON Schema: ") for p in read.problems)
        if read.tree is not None:
            found = _check_refs(path, read, registry, uris, blobs, signature, cache, bundling)
            problems += found
            bad = bad or bool(found)
        service = _service_of(path)
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
        schemas.paths[service] = path
        if read.tree is not None:
            schemas.trees[service] = read.tree
    for gone in [s for s in cache.bundles if s not in schemas.validators]:
        del cache.bundles[gone]
    for gone in [p for p in cache.refs if p not in loaded]:
        del cache.refs[gone]
    return schemas, problems


def _validator(schema: Any, registry: Registry[Any]) -> Draft202012Validator:
    """jsonschema's validator for the schema, resolving against an already combined registry."""
    resource = DRAFT202012.create_resource(schema)
    return Draft202012Validator(schema, _resolver=registry.resolver_with_root(resource))


def _check_refs(
    path: str,
    read: SchemaFile,
    registry: Registry[Any],
    uris: Mapping[str, str],
    blobs: Mapping[str, str],
    signature: str,
    cache: SchemaCache,
    reuse: bool,
) -> list[Problem]:
    """A problem for each `$ref` in the file that does not resolve."""
    assert read.tree is not None
    hit = cache.refs.get(path) if reuse else None
    if hit is not None and hit[0] == signature and all(blobs.get(p) == b for p, b in hit[1]):
        return list(hit[2])
    base = _base_of(path, read.contents)
    resolver = registry.resolver(base_uri=base)
    problems = []
    deps = {(path, blobs[path])}
    for ref_path, ref in _refs(read.tree):
        if (target := uris.get(_resource_uri(base, ref.value)[0])) is not None:
            deps.add((target, blobs[target]))
        try:
            resolver.lookup(ref.value)
        except Unresolvable:
            problems.append(
                Problem(
                    ref.source,
                    f"$ref {ref.value!r} does not resolve",
                    format_path(ref_path),
                    "refer to a file under schemas/ by relative path, "
                    "e.g. _common/db.json#/$defs/db",
                )
            )
    if reuse:
        cache.refs[path] = (signature, frozenset(deps), list(problems))
    return problems


class _Unbundlable(Exception):
    """A schema that bundling would not keep equal: it is validated through the registry."""


# Keywords jsonschema's 2020-12 validator descends into, by the shape of their value.
_ONE = frozenset(
    {"additionalProperties", "contains", "if", "then", "else", "items", "not", "propertyNames"}
    | {"unevaluatedItems", "unevaluatedProperties"}
)
_MANY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_NAMED = frozenset({"dependentSchemas", "patternProperties", "properties"})
# Keywords that never produce an error: a `$ref` beside only these can be replaced by its target.
_ANNOTATIONS = frozenset(
    {"$comment", "default", "deprecated", "description", "examples", "readOnly", "title"}
    | {"writeOnly"}
)
_BUDGET = 200_000  # subschemas expanded for one service before giving up on bundling it


class _Bundler:
    """Service schemas with every `$ref` replaced by its target, so validation looks nothing up.

    jsonschema reports an error of a referenced subschema exactly as if it stood in place of
    the `$ref` (same message, instance path and failing subschema), so a `{"$ref": ...}`
    (with at most annotations beside it) is replaced by its target, itself bundled relative to
    its own file. A `$ref` back into a target being expanded, or to a boolean schema, stays a
    `$ref`, made absolute so that it resolves through the registry as before. Anything else (a `$ref` beside other
    keywords, a target outside schemas/) leaves the whole schema to the registry.
    Expansions are shared between services; each records the files it read.
    """

    def __init__(self, registry: Registry[Any], uris: Mapping[str, str], blobs: Mapping[str, str]):
        self.registry = registry
        self.uris = uris
        self.blobs = blobs
        self.memo: dict[tuple[int, str], tuple[Any, Deps]] = {}
        self.stack: set[tuple[int, str]] = set()
        self.deps: set[tuple[str, str]] = set()
        self.cuts = 0
        self.budget = 0

    def bundle(self, path: str, schema: Any) -> tuple[Any, Deps | None]:
        """The schema bundled and the files it read, or (None, None) if it cannot be."""
        self.deps = {(path, self.blobs[path])}
        self.stack.clear()
        self.budget = _BUDGET
        if not isinstance(schema, dict):
            return schema, frozenset(self.deps)
        base = str(schema["$id"])
        resolver = self.registry.resolver_with_root(DRAFT202012.create_resource(schema))
        try:
            bundled = self._keywords(schema, resolver, base)
        except _Unbundlable:
            return None, None
        return bundled, frozenset(self.deps)

    def _subschema(self, schema: Any, resolver: Resolver[Any], base: str) -> Any:
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and _ANNOTATIONS.issuperset(k for k in schema if k != "$ref"):
            return self._inline(schema, ref, resolver, base)
        return self._keywords(schema, resolver, base)

    def _keywords(self, schema: dict[str, Any], resolver: Resolver[Any], base: str) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Unbundlable
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "$ref":
                raise _Unbundlable
            if key in _ONE:
                out[key] = self._subschema(value, resolver, base)
            elif key in _MANY and isinstance(value, list):
                out[key] = [self._subschema(v, resolver, base) for v in value]
            elif key in _NAMED and isinstance(value, dict):
                out[key] = {k: self._subschema(v, resolver, base) for k, v in value.items()}
            else:
                out[key] = value
        return out

    def _inline(self, wrapper: dict[str, Any], ref: str, resolver: Resolver[Any], base: str) -> Any:
        uri, fragment = _resource_uri(base, ref)
        path = self.uris.get(uri)
        if path is None or not urlsplit(uri).scheme:
            raise _Unbundlable
        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            raise _Unbundlable from None
        self.deps.add((path, self.blobs[path]))
        target = resolved.contents
        key = (id(target), uri)
        # jsonschema puts no path on an error of a boolean subschema met directly, only on
        # one met through a $ref: so a boolean target stays a $ref, as does a cycle.
        if key in self.stack or isinstance(target, bool):
            self.cuts += key in self.stack
            return {**wrapper, "$ref": f"{uri}#{fragment}" if fragment else uri}
        hit = self.memo.get(key)
        if hit is not None:
            self.deps |= hit[1]
            return hit[0]
        if not isinstance(target, dict):
            raise _Unbundlable
        outer, cuts = self.deps, self.cuts
        self.deps = {(path, self.blobs[path])}
        self.stack.add(key)
        try:
            inner = target.get("$ref")
            if isinstance(inner, str) and _ANNOTATIONS.issuperset(k for k in target if k != "$ref"):
                bundled = self._inline(target, inner, resolved.resolver, uri)
            else:
                bundled = self._keywords(target, resolved.resolver, uri)
        finally:
            self.stack.discard(key)
            deps, self.deps = frozenset(self.deps), outer | self.deps
        if self.cuts == cuts:
            self.memo[key] = (bundled, deps)
        return bundled


_UNEXPECTED = re.compile(
    r"'((?:[^'\\]|\\.)*)' (?:was|were) unexpected|'((?:[^'\\]|\\.)*)'(?:, |\))"
)


def schema_errors(
    validator: Draft202012Validator, tree: Node, value: Any | None = None
) -> Iterator[tuple[Source, str, str]]:
    """Each error of the tree's value against the schema: (where it was set, key path, message)."""
    instance = to_plain(tree) if value is None else value
    for error in validator.iter_errors(instance):
        yield from _locate(error, tree)


def _locate(error: jsonschema.ValidationError, tree: Node) -> Iterator[tuple[Source, str, str]]:
    key_path: KeyPath = tuple(error.absolute_path)
    node, covered = find(tree, key_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and node.kind == "map":
        extras = [k for k in _unexpected_keys(error) if k in node.value]
        if extras:
            for key in extras:
                yield (
                    node.value[key].source,
                    format_path((*covered, key)),
                    f"{key!r} is not allowed here ({error.validator} is false)",
                )
            return
    name = error.instance
    if "propertyNames" in error.schema_path and node.kind == "map" and name in node.value:
        yield node.value[name].source, format_path((*covered, name)), f"key {error.message}"
        return
    yield node.source, format_path(key_path), error.message


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
    if error.validator == "unevaluatedProperties":
        named = {a or b for a, b in _UNEXPECTED.findall(error.message)}
        extras = [k for k in instance if k in named]
    return extras
