"""Service schemas bundled: every `$ref` replaced by its target, so validation looks nothing up."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin, urlsplit

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

if TYPE_CHECKING:
    from referencing._core import Resolved, Resolver

__all__ = ["Bundler", "Deps", "resource_uri"]

# A (path, blob) a result was computed from; a result is reused while they are all unchanged.
Deps = frozenset[tuple[str, str]]


def resource_uri(base: str, ref: str) -> tuple[str, str]:
    """The resource a `$ref` names and the fragment within it, as referencing resolves them."""
    if ref.startswith("#"):
        return base, ref[1:]
    if base.startswith("file:///") and "#" not in base and "?" not in base and ref[:1] not in "?;":
        # A reference with a path is joined to the base's folder alone (RFC 3986 5.2.3):
        # files in one folder share the join.
        return _joined(base[: base.rfind("/") + 1], ref)
    return _joined(base, ref)


@lru_cache(maxsize=4096)
def _joined(base: str, ref: str) -> tuple[str, str]:
    uri, fragment = urldefrag(urljoin(base, ref))
    return uri, fragment


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


class Bundler:
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
        # Lookups by absolute (resource, fragment): services refer to the same definitions.
        # No schema bundled has a dynamic scope, so where a lookup was made does not matter.
        self.lookups: dict[tuple[str, str], Resolved[Any] | None] = {}

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
        except (_Unbundlable, RecursionError):
            # Too deep a chain of $refs to inline: validated through the registry, which
            # reports it if validation cannot follow it either.
            self.stack.clear()
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
        uri, fragment = resource_uri(base, ref)
        path = self.uris.get(uri)
        if path is None or not urlsplit(uri).scheme:
            raise _Unbundlable
        if (uri, fragment) in self.lookups:
            found = self.lookups[(uri, fragment)]
        else:
            try:
                found = resolver.lookup(ref)
            except Unresolvable:
                found = None
            self.lookups[(uri, fragment)] = found
        if found is None:
            raise _Unbundlable
        resolved = found
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
