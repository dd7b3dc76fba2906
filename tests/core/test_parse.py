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


@pytest.mark.parametrize(
    "raw", [".inf", ".Inf", "-.inf", "+.INF", ".nan", ".NaN", "1e999", "9" * 5000]
)
def test_numbers_json_cannot_carry_are_problems(raw: str) -> None:
    tree, problems = parse_yaml("base/a.yaml", f"db:\n  ratio: {raw}\n".encode())
    assert tree is None
    [problem] = problems
    assert (problem.source.line, problem.source.col, problem.key_path) == (2, 10, "db.ratio")
    assert "JSON cannot carry" in problem.message
    assert problem.hint == "quote it to keep it as a string"
