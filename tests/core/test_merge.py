"""The merge rules of DESIGN §1 as one table, plus the provenance a merge keeps (DESIGN §2)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import pytest

from gitconf.core.merge import merge
from gitconf.core.model import Node, Source, leaves, to_plain
from gitconf.core.parse import parse_yaml


class Fails(NamedTuple):
    """Expected outcome of a row that must produce exactly one Problem."""

    key_path: str
    line: int  # line of the offending value in overlay.yaml
    other: str | None = None  # "base.yaml:<line>:" that the message must name, if any
    word: str | None = None  # a word the message must contain (case-insensitive)


def parse(path: str, text: str) -> Node:
    """Parse text as the file path; the inputs of this table are all valid YAML."""
    node, problems = parse_yaml(path, text.encode())
    assert problems == [], [p.render() for p in problems]
    assert node is not None
    return node


def ordered(value: Any) -> Any:
    """Plain value with key order and scalar types made part of equality."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return (type(value).__name__, value)


ROWS = [
    # -- scalars, lists and mappings ------------------------------------------------------
    pytest.param("a: 1\nb: 2\n", "a: 3\n", {"a": 3, "b": 2}, id="scalar-replaces"),
    pytest.param("a: 1\n", 'a: "x"\n', {"a": "x"}, id="scalar-changes-type"),
    pytest.param("a: 1\n", "b: 2\n", {"a": 1, "b": 2}, id="new-key-added"),
    pytest.param(None, "a: 1\n", {"a": 1}, id="nothing-inherited"),
    pytest.param("a: 1\n", "", {"a": 1}, id="empty-overlay-file"),
    pytest.param("db: {a: 1}\n", "db: {}\n", {"db": {"a": 1}}, id="empty-mapping-merges"),
    pytest.param("l: [1, 2]\n", "l: [3]\n", {"l": [3]}, id="list-replaces"),
    pytest.param(
        "s:\n  - {a: 1, b: 2}\n  - {a: 9}\n",
        "s:\n  - {a: 3}\n",
        {"s": [{"a": 3}]},
        id="list-of-maps-replaces-no-index-merge",
    ),
    pytest.param("a: 1\n", "a: [1]\n", {"a": [1]}, id="list-over-scalar-replaces"),
    pytest.param("a: [1]\n", "a: 1\n", {"a": 1}, id="scalar-over-list-replaces"),
    pytest.param(
        "db:\n  host: h\n  pool:\n    min: 1\n    max: 10\n",
        "db:\n  pool:\n    max: 50\n",
        {"db": {"host": "h", "pool": {"min": 1, "max": 50}}},
        id="nested-deep-merge",
    ),
    pytest.param(
        "a:\n  b:\n    c:\n      d: 1\n      e: 2\n",
        "a:\n  b:\n    c:\n      e: 3\n      f: 4\n    g: 5\n",
        {"a": {"b": {"c": {"d": 1, "e": 3, "f": 4}, "g": 5}}},
        id="four-levels-deep-merge",
    ),
    # -- key order: inherited keys first (in their order), new keys after ------------------
    pytest.param("b: 1\na: 2\n", "c: 3\na: 4\n", {"b": 1, "a": 4, "c": 3}, id="key-order"),
    pytest.param(
        "m:\n  y: 1\n  x: 2\n",
        "m:\n  z: 3\n  x: 4\n",
        {"m": {"y": 1, "x": 4, "z": 3}},
        id="key-order-nested",
    ),
    # -- null is a value, not a deletion --------------------------------------------------
    pytest.param("a: 1\nb: 2\n", "a: null\n", {"a": None, "b": 2}, id="null-overrides-scalar"),
    pytest.param("a: 1\n", "a: ~\n", {"a": None}, id="tilde-null-overrides"),
    pytest.param("a: 1\n", "a:\n", {"a": None}, id="empty-value-overrides"),
    pytest.param("l: [1]\n", "l: null\n", {"l": None}, id="null-overrides-list"),
    pytest.param("a: null\n", "a: 1\n", {"a": 1}, id="value-overrides-null"),
    # -- !delete -------------------------------------------------------------------------
    pytest.param("a: 1\nb: 2\n", "a: !delete\n", {"b": 2}, id="delete-inherited-key"),
    pytest.param("db: {host: h}\nx: 1\n", "db: !delete\n", {"x": 1}, id="delete-inherited-mapping"),
    pytest.param(
        "db:\n  host: h\n  port: 1\n",
        "db:\n  port: !delete\n",
        {"db": {"host": "h"}},
        id="delete-nested-key",
    ),
    pytest.param(
        "a: 1\nb: 2\nc: 3\n",
        "b: !delete\nd: 4\n",
        {"a": 1, "c": 3, "d": 4},
        id="delete-keeps-order",
    ),
    pytest.param("a: 1\n", "z: !delete\n", {"a": 1}, id="delete-missing-key-noop"),
    pytest.param(None, "a: 1\nz: !delete\n", {"a": 1}, id="delete-nothing-inherited-noop"),
    # -- !replace ------------------------------------------------------------------------
    pytest.param(
        "db:\n  host: h\n  port: 1\n",
        "db: !replace\n  port: 2\n",
        {"db": {"port": 2}},
        id="replace-map-over-map",
    ),
    pytest.param(
        "db: x\n", "db: !replace\n  port: 2\n", {"db": {"port": 2}}, id="replace-map-over-scalar"
    ),
    pytest.param(
        "db: [1]\n", "db: !replace {port: 2}\n", {"db": {"port": 2}}, id="replace-map-over-list"
    ),
    pytest.param(
        "a: 1\n",
        "db: !replace {k: v}\n",
        {"a": 1, "db": {"k": "v"}},
        id="replace-nothing-inherited",
    ),
    # DESIGN: a non-mapping over a mapping is an error *without* !replace, so with it, it
    # replaces, and the value keeps its core-schema type
    pytest.param("db: {port: 1}\n", "db: !replace 5\n", {"db": 5}, id="replace-int-over-map"),
    pytest.param(
        "db: {port: 1}\n", "db: !replace true\n", {"db": True}, id="replace-bool-over-map"
    ),
    pytest.param(
        "db: {port: 1}\n", "db: !replace null\n", {"db": None}, id="replace-null-over-map"
    ),
    pytest.param(
        "db: {port: 1}\n", "db: !replace [1, 2]\n", {"db": [1, 2]}, id="replace-list-over-map"
    ),
    # -- !append -------------------------------------------------------------------------
    pytest.param(
        "l: [1, 2]\n", "l: !append [3, 4]\n", {"l": [1, 2, 3, 4]}, id="append-inherited-list"
    ),
    pytest.param(
        "l:\n  - a\n", "l: !append\n  - b\n  - c\n", {"l": ["a", "b", "c"]}, id="append-block-style"
    ),
    pytest.param(
        "a:\n  l: [1]\n", "a:\n  l: !append [2, 3]\n", {"a": {"l": [1, 2, 3]}}, id="append-nested"
    ),
    pytest.param("a: 1\n", "l: !append [3]\n", {"a": 1, "l": [3]}, id="append-nothing-inherited"),
    pytest.param(
        "x: 0\nl: 5\n",
        "y: 1\nl: !append [3]\n",
        Fails("l", 2, word="append"),
        id="append-onto-scalar",
    ),
    pytest.param(
        "x: 0\nl: {a: 1}\n",
        "y: 1\nl: !append [3]\n",
        Fails("l", 2, other="base.yaml:2:"),  # a list over a mapping: the conflict names both
        id="append-onto-mapping",
    ),
    # -- tags in a subtree with nothing inherited are resolved, never left in the result ---
    pytest.param(
        "a: 1\n",
        "db:\n  x: !delete\n  l: !append [1]\n  m: !replace {k: v}\n",
        {"a": 1, "db": {"l": [1], "m": {"k": "v"}}},
        id="tags-in-fresh-subtree-resolved",
    ),
    # -- a mapping overlaid by a non-mapping, or the reverse: a Problem naming both places --
    pytest.param(
        "x: 0\ndb: postgres\n",
        "y: 1\nz: 2\ndb: {port: 1}\n",
        Fails("db", 3, other="base.yaml:2:"),
        id="conflict-map-over-scalar",
    ),
    pytest.param(
        "x: 0\ndb: {port: 1}\n",
        "y: 1\nz: 2\ndb: postgres\n",
        Fails("db", 3, other="base.yaml:2:"),
        id="conflict-scalar-over-map",
    ),
    pytest.param(
        "x: 0\ndb: {port: 1}\n",
        "y: 1\nz: 2\ndb: [a, b]\n",
        Fails("db", 3, other="base.yaml:2:"),
        id="conflict-list-over-map",
    ),
    pytest.param(
        "x: 0\ndb: [a, b]\n",
        "y: 1\nz: 2\ndb: {port: 1}\n",
        Fails("db", 3, other="base.yaml:2:"),
        id="conflict-map-over-list",
    ),
    pytest.param(
        "x: 0\ndb: {port: 1}\n",
        "y: 1\nz: 2\ndb: null\n",
        Fails("db", 3, other="base.yaml:2:"),
        id="conflict-null-over-map",
    ),
    pytest.param(
        "db:\n  pool: {max: 5}\n",
        "db:\n  pool: 7\n",
        Fails("db.pool", 2, other="base.yaml:2:"),
        id="conflict-nested",
    ),
]


@pytest.mark.parametrize(("base_yaml", "overlay_yaml", "expected"), ROWS)
def test_merge(base_yaml: str | None, overlay_yaml: str, expected: Any) -> None:
    base = None if base_yaml is None else parse("base.yaml", base_yaml)
    overlay = parse("overlay.yaml", overlay_yaml)

    result, problems = merge(base, overlay)

    if isinstance(expected, Fails):
        assert len(problems) == 1, [p.render() for p in problems]
        (problem,) = problems
        assert problem.key_path == expected.key_path
        assert problem.source is not None
        assert problem.source.path == "overlay.yaml"
        assert problem.source.line == expected.line
        if expected.other is not None:
            assert expected.other in problem.message, problem.render()
        if expected.word is not None:
            assert expected.word in problem.message.lower(), problem.render()
        rendered = problem.render()
        assert rendered.startswith(
            f"overlay.yaml:{expected.line}:{problem.source.col}: {expected.key_path}: "
        )
    else:
        assert problems == [], [p.render() for p in problems]
        assert ordered(to_plain(result)) == ordered(expected)


def test_conflict_rendered_names_both_files() -> None:
    base = parse("base/payments.yaml", "db:\n  port: 5432\n")
    overlay = parse("environments/staging/payments.yaml", "# staging\ndb: postgres://db\n")

    _, problems = merge(base, overlay)

    assert len(problems) == 1
    rendered = problems[0].render()
    assert rendered.startswith("environments/staging/payments.yaml:2:")
    assert re.search(r"base/payments\.yaml:\d+:\d+", rendered), rendered


def test_merge_leaves_its_inputs_unchanged() -> None:
    # Parsed files are cached by blob id (DESIGN §6) and reused by every (env, service).
    base = parse("base.yaml", "db:\n  port: 1\n  host: h\nl: [1]\n")
    overlay = parse("overlay.yaml", "db:\n  port: !delete\n  host: x\nl: !append [2]\nn: 3\n")
    base_before = ordered(to_plain(base))
    top = parse("top.yaml", "db:\n  port: 2\n")
    top_before = ordered(to_plain(top))

    first, _ = merge(base, overlay)
    first_before = ordered(to_plain(first))
    merge(first, top)
    again, _ = merge(base, overlay)

    assert ordered(to_plain(base)) == base_before
    assert ordered(to_plain(top)) == top_before
    assert ordered(to_plain(first)) == first_before
    assert ordered(to_plain(again)) == first_before


def merge_layers(*layers: tuple[str, str]) -> Node:
    """Merge the (path, text) layers lowest first, asserting no problems."""
    acc: Node | None = None
    for path, text in layers:
        acc, problems = merge(acc, parse(path, text))
        assert problems == [], [p.render() for p in problems]
    assert acc is not None
    return acc


THREE_LAYERS = (
    ("base.yaml", "db:\n  host: base-host\n  port: 5432\n"),
    ("staging.yaml", "# staging\n\ndb:\n  port: 5433\n  user: app\n"),
    ("top.yaml", "db:\n    port: 6000\n"),
)


def test_provenance_leaf_source_is_top_layer_and_overrides_lower_in_order() -> None:
    port = leaves(merge_layers(*THREE_LAYERS))["db.port"]

    assert to_plain(port) == 6000
    assert port.source == Source("top.yaml", 2, 11)
    assert port.overrides == (Source("base.yaml", 3, 9), Source("staging.yaml", 4, 9))


def test_provenance_untouched_leaves_keep_their_own_layer() -> None:
    merged = leaves(merge_layers(*THREE_LAYERS))

    assert set(merged) == {"db.host", "db.port", "db.user"}
    assert merged["db.host"].source == Source("base.yaml", 2, 9)
    assert merged["db.host"].overrides == ()
    assert merged["db.user"].source == Source("staging.yaml", 5, 9)
    assert merged["db.user"].overrides == ()


def test_provenance_null_is_a_leaf_with_its_source() -> None:
    merged = leaves(
        merge_layers(("base.yaml", "db:\n  port: 5432\n"), ("top.yaml", "db:\n  port: null\n"))
    )

    assert to_plain(merged["db.port"]) is None
    assert merged["db.port"].source == Source("top.yaml", 2, 9)
    assert merged["db.port"].overrides == (Source("base.yaml", 2, 9),)
