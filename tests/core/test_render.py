"""The bytes gitconf serves for a config: JSON, YAML, and `KEY=value` lines.

Reading the env lines back with a real shell is in tests/test_cli.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from gitconf.core.model import to_plain
from gitconf.core.parse import parse_yaml
from gitconf.core.render import (
    RenderError,
    etag_of,
    flatten,
    json_size,
    render,
    to_env,
    to_json,
    to_yaml,
)


def read_yaml_1_2(data: bytes) -> Any:
    """What a YAML 1.2 reader (gitconf's own dialect) makes of data."""
    node, problems = parse_yaml("rendered.yaml", data)
    assert problems == [] and node is not None
    return to_plain(node)


def test_json_is_indented_keeps_key_order_and_unicode() -> None:
    value = {"region": "eu-west-1", "db": {"port": 5432, "host": "café.internal"}, "on": True}
    assert (
        to_json(value)
        == (
            '{\n  "region": "eu-west-1",\n  "db": {\n    "port": 5432,\n'
            '    "host": "café.internal"\n  },\n  "on": true\n}\n'
        ).encode()
    )


def test_json_refuses_numbers_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        to_json({"x": math.nan})


def test_yaml_is_block_style_in_merge_order() -> None:
    value = {"region": "eu", "db": {"port": 5432, "hosts": ["a", {"b": None}]}, "e": {}, "l": []}
    assert to_yaml(value) == (
        b"region: eu\ndb:\n  port: 5432\n  hosts:\n  - a\n  - b: null\ne: {}\nl: []\n"
    )


def test_yaml_writes_unicode_as_is() -> None:
    assert to_yaml({"city": "Zürich"}) == "city: Zürich\n".encode()


# Strings that some YAML reader would take for something else if they were written unquoted.
TRICKY = [
    # YAML 1.1 booleans and nulls (the "Norway problem"), read by PyYAML, SnakeYAML, ...
    *["yes", "no", "on", "off", "Yes", "NO", "On", "OFF"],
    # YAML 1.2 core values
    *["true", "True", "FALSE", "null", "Null", "~", ""],
    # numbers in one dialect or both
    *["1", "-0", "+1", "0777", "0o17", "0x1F", "1e3", "+.5e3", ".5", "1_000", "0b101"],
    *[".inf", "-.Inf", ".nan", "190:20:30", "1:20"],
    # YAML 1.1 timestamps
    *["2024-01-01", "2001-12-14t21:59:43.10-05:00"],
    # syntax
    *["-", "a: b", "#x", "x #y", "  lead", "trail ", "multi\nline", "'", '"', "<<", "="],
]


@pytest.mark.parametrize("text", TRICKY, ids=[repr(t) for t in TRICKY])
def test_yaml_strings_read_back_as_strings_in_yaml_1_1_and_1_2(text: str) -> None:
    out = to_yaml({"v": text, text: "key"})
    assert yaml.safe_load(out) == {"v": text, text: "key"}  # PyYAML reads YAML 1.1
    assert read_yaml_1_2(out) == {"v": text, text: "key"}


# The booleans of YAML 1.1 (https://yaml.org/type/bool.html), which readers such as Go's
# gopkg.in/yaml.v2 still apply; PyYAML's own resolver leaves out y, Y, n and N.
YAML_1_1_BOOLEANS = [
    *["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO"],
    *["true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"],
]


@pytest.mark.parametrize("word", YAML_1_1_BOOLEANS)
def test_yaml_quotes_every_yaml_1_1_boolean(word: str) -> None:
    quoted = {f"'{word}'", f'"{word}"'}
    [line] = to_yaml({word: word}).decode().splitlines()
    key, value = line.split(": ")
    assert key in quoted and value in quoted, line


@pytest.mark.parametrize("text", ["db.internal", "hello world", "https://x.example/a", "é"])
def test_yaml_leaves_ordinary_strings_unquoted(text: str) -> None:
    assert to_yaml({"v": text}) == f"v: {text}\n".encode()


@pytest.mark.parametrize(
    ("value", "lines"),
    [
        ({"db": {"pool": {"max": 50}}}, "DB_POOL_MAX=50\n"),
        ({"hosts": ["a", "b"]}, "HOSTS_0=a\nHOSTS_1=b\n"),
        ({"tls": True, "debug": False}, "TLS=true\nDEBUG=false\n"),
        ({"f": 1.5, "i": -3}, "F=1.5\nI=-3\n"),
        ({"nothing": None, "empty": ""}, "NOTHING=\nEMPTY=\n"),
        ({"e": {}, "l": []}, 'E="{}"\nL="[]"\n'),
        ({"labels": {"app.kubernetes.io/name": "pay"}}, "LABELS_APP_KUBERNETES_IO_NAME=pay\n"),
        ({"camelCase": 1}, "CAMELCASE=1\n"),
        ({"path": "/srv/a_b-c.d:e@f%g+h,i"}, "PATH=/srv/a_b-c.d:e@f%g+h,i\n"),
        ({"s": "hello world"}, 'S="hello world"\n'),
        ({"s": "it's"}, 'S="it\'s"\n'),
        ({"s": 'a"b$c`d\\e'}, 'S="a\\"b\\$c\\`d\\\\e"\n'),
        ({"s": "line1\nline2"}, 'S="line1\\nline2"\n'),
        ({"url": "https://x.example/?a=b&c=d"}, 'URL="https://x.example/?a=b&c=d"\n'),
        ({"glob": "*"}, 'GLOB="*"\n'),
        ({"home": "~/x"}, 'HOME="~/x"\n'),
        ({"u": "café"}, 'U="café"\n'),
        ({}, ""),
    ],
    ids=[
        "nested",
        "list-items",
        "booleans",
        "numbers",
        "null-and-empty",
        "empty-map-and-list",
        "punctuation-in-keys",
        "upper-cased",
        "safe-characters-unquoted",
        "space",
        "single-quote",
        "shell-specials",
        "newline",
        "ampersand",
        "glob",
        "tilde",
        "unicode",
        "empty-config",
    ],
)
def test_env_lines(value: Any, lines: str) -> None:
    assert to_env(value) == lines.encode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"db": {"pool": 1}, "db_pool": 2},
            "keys db.pool and db_pool would both be the variable DB_POOL; "
            "rename one, or read this config as json or yaml",
        ),
        (
            {"DB": 1, "db": 2},
            "keys DB and db would both be the variable DB; "
            "rename one, or read this config as json or yaml",
        ),
        ({"--": 1}, "key -- has no letter or digit to make a variable name of"),
        (5, "the config is a single value, not keys: env lines need keys"),
    ],
    ids=["punctuation-collision", "case-collision", "no-name", "not-keys"],
)
def test_env_refuses_what_would_lose_a_value(value: Any, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        to_env(value)
    assert str(caught.value) == message


def test_flatten_names_leaves_as_users_write_keys() -> None:
    value = {"db": {"hosts": ["a", {"port": 1}]}, "labels": {"a.b": "x"}, "e": {}, "l": []}
    assert flatten(value) == {
        "db.hosts[0]": "a",
        "db.hosts[1].port": 1,
        'labels["a.b"]': "x",
        "e": {},
        "l": [],
    }
    assert flatten(value, lists=False) == {
        "db.hosts": ["a", {"port": 1}],
        'labels["a.b"]': "x",
        "e": {},
        "l": [],
    }


@pytest.mark.parametrize(
    ("value", "size"),
    [({}, 2), ({"a": 1}, 7), ({"a": [1, 2]}, 11), ({"a": "é"}, 10), ({"a": "€"}, 11)],
)
def test_json_size_counts_bytes_of_compact_json(value: Any, size: int) -> None:
    assert json_size(value) == size


def test_an_etag_is_strong_and_follows_the_bytes() -> None:
    etag = etag_of(b'{"a": 1}\n')
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    assert etag_of(b'{"a": 1}\n') == etag
    assert etag_of(b'{"a": 2}\n') != etag


@pytest.mark.parametrize("fmt", ["json", "yaml", "env"])
def test_render_by_format_name(fmt: str) -> None:
    value = {"db": {"port": 5432}}
    assert render(value, fmt) == {"json": to_json, "yaml": to_yaml, "env": to_env}[fmt](value)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'toml'"):
        render({}, "toml")
