"""Key paths as users write them (format_path and parse_path), leaves, and extends chains."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from gitconf.core.manifest import parse_manifest
from gitconf.core.model import (
    KeyPath,
    Limits,
    Manifest,
    Node,
    find,
    format_path,
    iter_leaves,
    leaves,
    parse_path,
    to_plain,
)
from gitconf.core.parse import parse_yaml
from gitconf.errors import Source

PATHS = [
    pytest.param(("db", "pool", "max"), "db.pool.max", id="dotted"),
    pytest.param(("servers", 0), "servers[0]", id="index"),
    pytest.param(("servers", 0, "host"), "servers[0].host", id="key-after-index"),
    pytest.param(("matrix", 1, 2), "matrix[1][2]", id="nested-lists"),
    pytest.param((0,), "[0]", id="top-level-index"),
    pytest.param(
        ("snake_case", "kebab-case", "UPPER9"), "snake_case.kebab-case.UPPER9", id="plain"
    ),
    pytest.param(("labels", "app.kubernetes.io"), 'labels["app.kubernetes.io"]', id="dot-in-key"),
    pytest.param(("a b",), '["a b"]', id="space"),
    pytest.param(('say "hi"',), '["say \\"hi\\""]', id="quote"),
    pytest.param(("C:\\temp",), '["C:\\\\temp"]', id="backslash"),
    pytest.param(("x[0]",), '["x[0]"]', id="brackets-in-key"),
    pytest.param(("",), '[""]', id="empty-key"),
    pytest.param(("ports", "0"), "ports.0", id="digit-string-key"),
    pytest.param((), "", id="root"),
]


@pytest.mark.parametrize(("path", "text"), PATHS)
def test_format_path_writes_keys_as_users_do(path: KeyPath, text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize(("path", "text"), PATHS)
def test_parse_path_reads_back_what_format_path_wrote(path: KeyPath, text: str) -> None:
    assert parse_path(text) == path


def test_every_short_key_round_trips() -> None:
    # Every key of up to three characters from the ones the syntax gives a meaning to.
    alphabet = 'a.[]"\\ 0_'
    keys = [""] + ["".join(p) for n in (1, 2, 3) for p in itertools.product(alphabet, repeat=n)]
    for key in keys:
        for path in [(key,), ("a", key, 0), (key, key)]:
            assert parse_path(format_path(path)) == path, (path, format_path(path))


def test_an_index_and_a_digit_key_stay_apart() -> None:
    assert parse_path("ports[0]") == ("ports", 0)
    assert parse_path("ports.0") == ("ports", "0")


def tree(text: str) -> Node:
    node, problems = parse_yaml("base/p.yaml", text.encode())
    assert problems == [] and node is not None
    return node


def test_leaves_by_key_path_with_their_sources() -> None:
    node = tree('db:\n  port: 5432\n  "pool.size": 4\nhosts: [a, b]\nempty: {}\nnone: []\n')
    found = leaves(node)
    assert list(found) == ["db.port", 'db["pool.size"]', "hosts[0]", "hosts[1]", "empty", "none"]
    assert found["db.port"].source == Source("base/p.yaml", 2, 9)
    assert found["hosts[1]"].source == Source("base/p.yaml", 4, 12)
    assert to_plain(found["empty"]) == {} and to_plain(found["none"]) == []


def test_an_empty_tree_is_one_leaf_at_the_root() -> None:
    assert [path for path, _ in iter_leaves(tree(""))] == [()]


@pytest.mark.parametrize(
    ("path", "covered", "value"),
    [
        (("db", "pool", "max"), ("db", "pool", "max"), 50),
        (("db", "pool"), ("db", "pool"), {"max": 50}),
        (("db", "nope", "max"), ("db",), {"pool": {"max": 50}}),
        (("hosts", 1), ("hosts", 1), "b"),
        (("hosts", 2), ("hosts",), ["a", "b"]),
        (("hosts", "1"), ("hosts",), ["a", "b"]),  # a key is not an index
        (("db", 0), ("db",), {"pool": {"max": 50}}),  # nor an index a key
        (("db", "pool", "max", "deeper"), ("db", "pool", "max"), 50),
    ],
)
def test_find_goes_as_deep_as_the_path_exists(path: KeyPath, covered: KeyPath, value: Any) -> None:
    found, got = find(tree("db:\n  pool: {max: 50}\nhosts: [a, b]\n"), path)
    assert got == covered
    assert to_plain(found) == value


def manifest(environments: str) -> Manifest:
    text = f"version: 1\nenvironments:\n{environments}"
    parsed, _ = parse_manifest(text.encode())
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("env", "chain"),
    [
        ("staging", ("staging",)),
        ("production", ("production",)),
        ("production-eu", ("production", "production-eu")),
        ("production-eu-west", ("production", "production-eu", "production-eu-west")),
        ("unknown", ("unknown",)),
    ],
)
def test_a_chain_is_root_first(env: str, chain: tuple[str, ...]) -> None:
    found = manifest(
        "  staging: {}\n  production: {}\n  production-eu: {extends: production}\n"
        "  production-eu-west: {extends: production-eu}\n"
    )
    assert found.chain(env) == chain


def test_a_chain_ends_at_a_cycle_or_an_unknown_parent() -> None:
    cyclic = manifest("  a: {extends: b}\n  b: {extends: a}\n  c: {extends: gone}\n")
    assert cyclic.chain("a") == ("b", "a")
    assert cyclic.chain("b") == ("a", "b")
    assert cyclic.chain("c") == ("gone", "c")


def test_the_schema_limit_is_the_file_limit_unless_set() -> None:
    assert Limits().schema_size == Limits().max_file_size == 1024 * 1024
    assert Limits(max_file_size=10).schema_size == 10
    assert Limits(max_file_size=10, max_schema_size=99).schema_size == 99
