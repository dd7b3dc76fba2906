"""The incremental compile cache: what a compile keeps so the next one redoes only what changed.

compile_fileset (gitconf.core.compile) fills and reads it; a cache only ever speeds a compile
up: its results equal a cold compile's (tests/core/test_incremental.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitconf.core.layers import Layout
from gitconf.core.model import Config, Node
from gitconf.core.schemas import SchemaCache, SchemaSet
from gitconf.errors import Problem, Source

__all__ = ["CompileCache", "MergeBasis", "Pair", "PairKey", "Parsed", "SchemaProblem"]

# What a config depends on: its layer files (path, blob), its schema's key (the schema
# files its validator was built from) and the size limit of one config.
PairKey = tuple[tuple[tuple[str, str], ...], str, int]
SchemaProblem = tuple[Source, str, str]


@dataclass
class CompileCache:
    """Results of earlier compiles that a later one reuses when their inputs are unchanged.

    Parses are kept by (path, blob id); the schema set by a digest of every schema file, and
    within it each schema file's check and each service's validator by the files it read; each
    (environment, service)'s merge and validation by its layers' blobs and its schema's key.
    So a commit that changes one file re-parses one blob and re-merges only the configs that
    file is a layer of, or re-checks one schema file and re-validates only the services whose
    schema read it. The cache only speeds compiles up: results equal a cold compile's.
    """

    parsed: dict[tuple[str, str], Parsed] = field(default_factory=dict)
    schemas: tuple[str, SchemaSet, list[Problem]] | None = None
    schema_files: SchemaCache = field(default_factory=SchemaCache)
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    # The layout of the last paths seen, which only a new, gone or renamed file changes.
    layout: tuple[tuple[str, ...], Layout, list[Problem]] | None = None
    # What the last merge of every pair was made from: when the layout, the environments'
    # chains and the schema set are the very same, only pairs with a layer whose blob changed
    # are looked at again.
    merged: MergeBasis | None = None
    # How SOPS files were read for all of the above (the keys' fingerprint, or key-less): a
    # compile that reads them otherwise starts from an empty cache.
    reading: str = ""

    def fork(self) -> CompileCache:
        """A cache for compiling another commit: it starts with what this one holds (parse
        results, schema checks and merges are values nobody changes) and changes nothing here."""
        files = self.schema_files
        return CompileCache(
            parsed=dict(self.parsed),
            schemas=self.schemas,
            schema_files=SchemaCache(dict(files.files), dict(files.refs), dict(files.bundles)),
            pairs=dict(self.pairs),
            layout=self.layout,
            merged=None,
            reading=self.reading,
        )

    def read_with(self, reading: str) -> None:
        """Forget everything read another way (other age keys, or none)."""
        if reading != self.reading:
            self.parsed.clear()
            self.pairs.clear()
            self.merged = None
            self.reading = reading

    def keep_only(self, blobs: set[tuple[str, str]]) -> None:
        """Forget parses of blobs no longer in the repository."""
        for key in [k for k in self.parsed if k not in blobs]:
            del self.parsed[key]


class Parsed(NamedTuple):
    """One layer file read: its tree or problems, where its secrets are, what was skipped."""

    tree: Node | None
    problems: list[Problem]
    secrets: frozenset[Source] = frozenset()  # the places of its encrypted values
    skipped: tuple[Any, ...] = ()  # checks made without a key (gitconf.secrets.Skipped)


class Pair(NamedTuple):
    """One (environment, service) merged and validated, and what it was made from."""

    key: PairKey
    config: Config | None
    problems: list[Problem]
    errors: list[SchemaProblem]
    size: int  # the merged config's bytes as compact JSON (0 when it did not merge)
    skipped: tuple[Any, ...] = ()  # schema checks of stand-in values, without a key


@dataclass
class MergeBasis:
    layout: Layout
    chains: dict[str, tuple[str, ...]]
    schemas: SchemaSet
    max_config_size: int
    layers: dict[tuple[str, str], list[str]]
    # layer file -> the pairs it is a layer of
    users: dict[str, list[tuple[str, str]]]
    # The blobs of the last merge made on this basis, set once it is done.
    blobs: dict[str, str] = field(default_factory=dict)
