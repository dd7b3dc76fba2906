"""parse_yaml: the YAML 1.2 core-schema dialect of DESIGN §1, with provenance and Problems."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitconf.core.model import Node, Source, leaves, to_plain
from gitconf.core.parse import parse_yaml

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str | bytes, path: str = "f.yaml") -> tuple[Node | None, list[Any]]:
    """Parse text (str is UTF-8 encoded) as the file path."""
    data = text.encode() if isinstance(text, str) else text
    return parse_yaml(path, data)


def parse_ok(text: str, path: str = "f.yaml") -> Any:
    """Parse text that must be valid and return it as plain Python."""
    node, problems = parse(text, path)
    assert problems == [], [p.render() for p in problems]
    assert node is not None
    return to_plain(node)


# -- the dialect ------------------------------------------------------------------------

SCALARS = [
    # booleans: only the true/false family
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("False", False),
    ("FALSE", False),
    # the Norway problem: YAML 1.1 booleans stay strings
    ("yes", "yes"),
    ("no", "no"),
    ("Yes", "Yes"),
    ("NO", "NO"),
    ("on", "on"),
    ("off", "off"),
    ("ON", "ON"),
    ("y", "y"),
    ("n", "n"),
    # dates and times stay strings (JSON has none)
    ("2024-01-01", "2024-01-01"),
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
    ("12:30:00", "12:30:00"),
    ("1:30", "1:30"),  # YAML 1.1 sexagesimal int 90
    # nulls
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("", None),
    # ints
    ("0", 0),
    ("42", 42),
    ("-7", -7),
    ("+3", 3),
    ("12345678901234567890", 12345678901234567890),
    ("0o17", 15),
    ("0x1F", 31),
    ("0x1f", 31),
    ("010", 10),  # YAML 1.2: no leading-zero octal
    ("1_000", "1_000"),  # YAML 1.2: no underscores
    ("0b101", "0b101"),  # YAML 1.2 core: no binary ints
    # floats
    ("1.5", 1.5),
    ("-0.5", -0.5),
    (".5", 0.5),
    ("1e3", 1000.0),  # YAML 1.1 (PyYAML) reads this as a string
    ("1.5e-3", 0.0015),
    ("1_000.5", "1_000.5"),
    # quoting always gives a string; plain odd scalars stay strings
    ('"true"', "true"),
    ("'123'", "123"),
    ('"null"', "null"),
    ("=", "="),  # PyYAML 1.1 has a "value" tag for this
    ("!!str 123", "123"),
]


@pytest.mark.parametrize(("raw", "expected"), SCALARS, ids=[repr(raw) for raw, _ in SCALARS])
def test_scalar_dialect(raw: str, expected: Any) -> None:
    value = parse_ok(f"v: {raw}\n")["v"]

    assert type(value) is type(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected


@pytest.mark.parametrize(
    "text",
    ["", "\n", "# only a comment\n", "   \n\n"],
    ids=["empty", "newline", "comment", "blank"],
)
def test_empty_file_is_empty_mapping(text: str) -> None:
    assert parse_ok(text) == {}


@pytest.mark.parametrize(
    "text",
    ["---\na: 1\n", "a: 1\n...\n", "%YAML 1.2\n---\na: 1\n"],
    ids=["start", "end", "directive"],
)
def test_one_explicit_document_is_fine(text: str) -> None:
    assert parse_ok(text) == {"a": 1}


def test_aliases_and_anchors_work() -> None:
    plain = parse_ok("defaults: &d {a: 1, b: [x, y]}\nfirst: *d\nname: &n svc\nsecond: *n\n")

    assert plain == {
        "defaults": {"a": 1, "b": ["x", "y"]},
        "first": {"a": 1, "b": ["x", "y"]},
        "name": "svc",
        "second": "svc",
    }


def test_gitconf_tags_parse_without_problems() -> None:
    _, problems = parse("a: !delete\nb: !replace {x: 1}\nc: !append [1]\nd: !append\n  - 2\n")

    assert problems == []


# -- provenance ---------------------------------------------------------------------------
def test_source_of_nested_leaf() -> None:
    node, problems = parse("db:\n  pool:\n    max: 50\nx: {b: true}\n", "base/payments.yaml")
    assert problems == []
    assert node is not None

    found = leaves(node)

    assert set(found) == {"db.pool.max", "x.b"}
    assert found["db.pool.max"].source == Source("base/payments.yaml", 3, 10)
    assert found["db.pool.max"].overrides == ()
    assert to_plain(found["db.pool.max"]) == 50
    assert found["x.b"].source == Source("base/payments.yaml", 4, 8)


# -- duplicate keys --------------------------------------------------------------------
def test_duplicate_key_fields_and_rendering() -> None:
    _, problems = parse("a: 1\nb:\n  c: 1\n  c: 2\n", "base/payments.yaml")

    assert len(problems) == 1
    (problem,) = problems
    assert problem.source == Source("base/payments.yaml", 4, 3)
    assert problem.key_path == "b.c"
    assert re.search(r"(line |:)3\b", problem.message), problem.message
    assert "duplicate" in problem.message.lower()
    assert problem.render().startswith("base/payments.yaml:4:3: b.c: ")


@pytest.mark.parametrize(
    ("text", "line", "col", "key_path", "first_line"),
    [
        ("a: 1\na: 2\n", 2, 1, "a", 1),
        ('a: 1\n"a": 2\n', 2, 1, "a", 1),
        ("x: {a: 1, a: 2}\n", 1, 11, "x.a", 1),
        ("servers:\n  - name: x\n    port: 1\n    name: y\n", 4, 5, "servers[0].name", 2),
    ],
    ids=["top-level", "quoted-same-key", "flow-mapping", "inside-list-item"],
)
def test_duplicate_key(text: str, line: int, col: int, key_path: str, first_line: int) -> None:
    _, problems = parse(text)

    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert problem.source == Source("f.yaml", line, col)
    assert problem.key_path == key_path
    assert re.search(rf"(line |:){first_line}\b", problem.message), problem.message


def test_every_duplicate_key_is_reported() -> None:
    _, problems = parse("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n")

    assert sorted((p.key_path, p.source.line) for p in problems) == [("a", 2), ("b.c", 5)]


# -- documents that are not one mapping ------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["- a\n- b\n", "[1, 2]\n", "hello\n", "42\n"],
    ids=["list", "flow-list", "string", "int"],
)
def test_top_level_not_a_mapping(text: str) -> None:
    _, problems = parse(text)

    assert len(problems) == 1, [p.render() for p in problems]
    assert problems[0].source == Source("f.yaml", 1, 1)
    assert "mapping" in problems[0].message.lower()


def test_multiple_documents() -> None:
    _, problems = parse("a: 1\n---\nb: 2\n")

    assert len(problems) == 1, [p.render() for p in problems]
    assert problems[0].source is not None
    assert problems[0].source.path == "f.yaml"
    assert problems[0].source.line in (2, 3)  # the second document's marker or content
    assert "document" in problems[0].message.lower()


# -- syntax errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a: 1\nb: c: d\n", 2, 5),
        ("a:\n\tb: 1\n", 2, 1),
        ("a: 1\nb: 2\nc: [1, 2\nd: 4\n", None, None),
    ],
    ids=["mapping-in-scalar", "tab-indent", "unclosed-flow"],
)
def test_syntax_error_has_line_and_col(text: str, line: int | None, col: int | None) -> None:
    _, problems = parse(text)

    assert len(problems) >= 1
    source = problems[0].source
    assert source is not None and source.path == "f.yaml"
    assert source.line >= 1 and source.col >= 1
    if line is not None:
        assert (source.line, source.col) == (line, col)
    else:
        assert source.line in (3, 4)


@pytest.mark.parametrize("data", [b"a: \xff\xfe\n", b"a: \x00\n"], ids=["not-utf8", "nul-byte"])
def test_undecodable_input_is_a_problem_not_an_exception(data: bytes) -> None:
    _, problems = parse(data)

    assert len(problems) >= 1
    assert problems[0].source is None or problems[0].source.path == "f.yaml"


# -- tags --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tagged",
    [
        "!!timestamp 2024-01-01",
        "!foo bar",
        "!!binary aGVsbG8=",
        "!!python/object/apply:os.system ['echo hi']",
        "!!set {a: null}",
        "!<tag:example.com,2000:thing> x",
    ],
    ids=["timestamp", "local-tag", "binary", "python-object", "set", "verbatim"],
)
def test_unknown_tag_is_a_problem(tagged: str) -> None:
    _, problems = parse(f"x: 1\nv: {tagged}\n")

    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert problem.source is not None
    assert (problem.source.path, problem.source.line) == ("f.yaml", 2)
    assert problem.key_path == "v"
    assert "tag" in problem.message.lower()


# -- billion laughs ---------------------------------------------------------------------------
def laughs(levels: int = 9, fanout: int = 10) -> str:
    """A YAML document whose aliases expand to fanout**levels scalars."""
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*l{i - 1}"] * fanout)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


BOMB_SCRIPT = """
import json, resource, sys
limit = 2 * 1024 ** 3
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from gitconf.core.parse import parse_yaml
node, problems = parse_yaml("bomb.yaml", sys.stdin.buffer.read())
print(json.dumps([[p.source and list(p.source), p.key_path, p.message] for p in problems]))
"""


def test_billion_laughs_is_refused_quickly() -> None:
    # A subprocess with a memory cap: a hang or a runaway expansion cannot take the test run down.
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT],
        input=laughs().encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    problems = json.loads(done.stdout)
    assert len(problems) >= 1
    source, _, message = problems[0]
    assert source is None or source[0] == "bomb.yaml"
    assert message
    assert elapsed < 5, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("raw", [".inf", ".Inf", "-.inf", "+.INF", ".nan", ".NaN", "1e999"])
def test_numbers_json_cannot_carry_are_problems(raw: str) -> None:
    tree, problems = parse_yaml("base/a.yaml", f"db:\n  ratio: {raw}\n".encode())
    assert tree is None
    [problem] = problems
    assert (problem.source.line, problem.source.col, problem.key_path) == (2, 10, "db.ratio")
    assert "JSON cannot carry" in problem.message
    assert problem.hint == "quote it to keep it as a string"


# -- integers in every notation: at most MAX_INT_DIGITS decimal digits -------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "9" * 5000,
        "-" + "9" * 5000,
        "0x" + "f" * 3600,  # 3,600 hex digits are 4,335 decimal digits
        "0o" + "7" * 5000,  # 5,000 octal digits are 4,516 decimal digits
        "!!int 0x" + "f" * 3600,
    ],
    ids=["decimal", "negative", "hex", "octal", "tagged-hex"],
)
def test_integers_too_long_to_serve_are_refused_where_written(raw: str) -> None:
    tree, problems = parse_yaml("base/a.yaml", f"db:\n  port: {raw}\n".encode())

    assert tree is None
    [problem] = problems
    assert problem.source == Source("base/a.yaml", 2, 9)
    assert problem.key_path == "db.port"
    assert "is an integer of more than 4,300 decimal digits" in problem.message
    assert problem.hint == "quote it to keep it as a string"
    assert problem.render().startswith("base/a.yaml:2:9: db.port: '")
    assert len(problem.render()) < 200  # the value is cut, not quoted whole


def test_the_longest_integers_gitconf_serves_render_as_json() -> None:
    hex_digits = "f" * 3500  # 4,214 decimal digits
    value = parse_ok(f"a: 0x{hex_digits}\nb: {'9' * 4300}\nc: {'0' * 5000}1\n")

    assert value["a"] == int(hex_digits, 16)
    assert value["c"] == 1 and type(value["c"]) is int  # leading zeros do not count
    assert json.loads(json.dumps(value)) == value


def test_an_integer_too_long_rendered_in_full() -> None:
    _, problems = parse_yaml("base/a.yaml", b"n: 0x" + b"f" * 3600 + b"\n")

    assert problems[0].render() == (
        "base/a.yaml:1:4: n: '0xffffffffffffffffffffff'... (3,602 characters) is an integer of "
        "more than 4,300 decimal digits, more than gitconf can serve "
        "(quote it to keep it as a string)"
    )


# -- aliases are paid for by the size they expand to -------------------------------------------
def test_many_aliases_of_a_big_anchor_are_refused_at_the_alias() -> None:
    # 90 KB of YAML that would expand to 200 MB: 20,000 aliases of a 10 KB anchor.
    text = f'a: &a "{"x" * 10_000}"\nl: [{", ".join(["*a"] * 20_000)}]\n'

    tree, problems = parse(text, "base/big.yaml")

    assert tree is None
    [problem] = problems
    # The anchor costs 10,001 (its characters and itself): the 420th alias passes 4 MiB.
    assert problem.source == Source("base/big.yaml", 2, 5 + 4 * 419)
    assert problem.key_path == "l[419]"
    assert "4,194,304" in problem.message and "alias budget" in problem.message
    assert problem.render() == (
        "base/big.yaml:2:1681: l[419]: the aliases of this file expand to more than 4,194,304 "
        "characters and values (gitconf's alias budget) (refused as a possible 'billion laughs' "
        "document; write the values out, or use fewer or smaller anchors)"
    )


def test_an_alias_shares_its_anchors_tree() -> None:
    node, problems = parse("d: &d {a: 1, b: [x, y]}\nfirst: *d\nsecond: {<<: *d, c: 2}\n")

    assert problems == []
    assert node is not None
    assert node.value["first"] is node.value["d"]
    assert node.value["second"].value["a"] is node.value["d"].value["a"]


@pytest.mark.parametrize(
    ("text", "where", "key_path", "message"),
    [
        ("a: *x\n", (1, 4), "a", "alias *x names no anchor before it"),
        ("a: &x 1\nb: &x 2\n", (2, 4), "b", "anchor &x is defined twice (first at line 1)"),
        ("a: &x [1, *x]\n", (1, 11), "a[1]", "recursive alias"),
    ],
    ids=["undefined", "defined-twice", "recursive"],
)
def test_alias_problems(text: str, where: tuple[int, int], key_path: str, message: str) -> None:
    _, problems = parse(text)

    [problem] = problems
    assert problem.source == Source("f.yaml", *where)
    assert (problem.key_path, problem.message) == (key_path, message)


# -- nesting ------------------------------------------------------------------------------------
def nested(depth: int) -> str:
    """A mapping whose key `a` holds lists nested so that the file is `depth` levels deep."""
    inner = depth - 1
    return "a: " + "[" * inner + "]" * inner + "\n"


def test_the_deepest_document_gitconf_reads() -> None:
    node, problems = parse(nested(128))

    assert problems == [] and node is not None


@pytest.mark.parametrize("depth", [129, 10_000])
def test_a_document_nested_too_deeply_is_refused_where_it_passes_the_limit(depth: int) -> None:
    _, problems = parse(nested(depth), "base/deep.yaml")

    [problem] = problems
    # The top-level mapping is the first level: the 128th `[` opens level 129.
    assert problem.source == Source("base/deep.yaml", 1, 4 + 127)
    assert problem.key_path == "a" + "[0]" * 127
    assert problem.message == "the document nests more than 128 levels of mappings and lists"
    assert problem.hint == "gitconf reads at most 128 levels; flatten the deepest part"


def test_block_nesting_is_refused_like_flow_nesting() -> None:
    text = "".join(" " * i + "k:\n" for i in range(200)) + " " * 200 + "v: 1\n"

    _, problems = parse(text, "base/deep.yaml")

    [problem] = problems
    assert problem.source == Source("base/deep.yaml", 129, 129)
    assert problem.key_path == ".".join(["k"] * 128)
    assert "more than 128 levels" in problem.message


# -- memory -------------------------------------------------------------------------------------
def test_every_source_of_a_file_shares_one_path_string() -> None:
    path = "".join(["base/", "payments.yaml"])  # a string object of its own
    node, _ = parse_yaml(path, b"a: {b: [1, 2]}\nc: d\n")
    assert node is not None

    assert all(leaf.source.path is path for leaf in leaves(node).values())
    assert node.value["a"].source.path is path


def test_parse_memory_is_a_small_multiple_of_the_yaml() -> None:
    import tracemalloc

    data = "".join(f"key_{i:07d}: value number {i}\n" for i in range(20_000)).encode()
    tracemalloc.start()
    try:
        node, problems = parse_yaml("base/big.yaml", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert problems == [] and node is not None
    # The located tree itself is about 11 bytes per byte of this file; a composed PyYAML node
    # tree beside it (two marks per value) took the peak past 30.
    assert peak / len(data) < 16, f"{peak / len(data):.1f} bytes per YAML byte"


def test_keys_are_one_string_across_files() -> None:
    first, _ = parse_yaml("base/a.yaml", b"db:\n  host: a\n")
    second, _ = parse_yaml("base/b.yaml", b"{db: {host: b}}\n")
    assert first is not None and second is not None

    [(key_a, db_a)] = first.value.items()
    [(key_b, db_b)] = second.value.items()
    assert key_a is key_b
    assert next(iter(db_a.value)) is next(iter(db_b.value))
