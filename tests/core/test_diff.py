"""Effective changes between two revisions, key by key, and the reports users read.

`gitconf diff` over real Git commits is in tests/test_cli.py; these are the pure functions.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gitconf.core.compile import compile_fileset
from gitconf.core.diff import (
    ConfigChange,
    KeyChange,
    diff_configs,
    diff_revisions,
    diff_values,
    to_json_report,
    to_markdown,
    to_text,
)
from gitconf.core.model import CompiledRevision, FileSet
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA

ORDER = ["staging", "production", "production-eu"]
OLD = {
    ("production", "payments"): {"db": {"port": 1, "host": "h"}, "hosts": ["x"], "gone": True},
    ("production", "search"): {"shards": 2},
    ("staging", "legacy"): {"a": 1},
}
NEW = {
    ("production", "payments"): {"db": {"host": "h", "port": 2}, "hosts": ["x", "y"], "new": "é"},
    ("production", "search"): {"shards": 2},
    ("production-eu", "checkout"): {"currency": "EUR"},
}
CHANGES = diff_configs(OLD, NEW, ORDER)


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, []),  # key order is no change
        ({"a": 1}, {"a": 2}, [KeyChange("a", "changed", 1, 2)]),
        ({"a": 1}, {"a": 1.0}, [KeyChange("a", "changed", 1, 1.0)]),  # served as 1 vs 1.0
        ({"a": 1}, {"a": True}, [KeyChange("a", "changed", 1, True)]),
        ({"a": 0}, {"a": False}, [KeyChange("a", "changed", 0, False)]),
        ({"a": None}, {"a": "null"}, [KeyChange("a", "changed", None, "null")]),
        # An emptied config lost its keys; its root is no key of its own.
        ({"a": 1}, {}, [KeyChange("a", "removed", 1, None)]),
        ({}, {"a": None}, [KeyChange("a", "added", None, None)]),
        ({}, {}, []),
        (None, {}, []),
        ({"l": [1, 2]}, {"l": [2, 1]}, [KeyChange("l", "changed", [1, 2], [2, 1])]),  # whole
        (
            {"m": {}},
            {"m": {"k": 1}},
            [KeyChange("m", "removed", {}, None), KeyChange("m.k", "added", None, 1)],
        ),
        (
            {"db": {"pool": {"max": 10, "min": 1}}},
            {"db": {"pool": {"max": 50, "min": 1}}},
            [KeyChange("db.pool.max", "changed", 10, 50)],
        ),
        (None, {"a": 1}, [KeyChange("a", "added", None, 1)]),
        ({"a": 1}, None, [KeyChange("a", "removed", 1, None)]),
    ],
    ids=[
        "same",
        "reordered",
        "changed",
        "int-to-float",
        "int-to-bool",
        "zero-to-false",
        "null-to-string",
        "emptied",
        "filled-with-null",
        "empty-both",
        "empty-appeared",
        "list-reordered",
        "empty-map-filled",
        "nested",
        "config-appeared",
        "config-vanished",
    ],
)
def test_diff_values_key_by_key(old: Any, new: Any, changes: list[KeyChange]) -> None:
    assert list(diff_values(old, new)) == changes


def test_configs_that_changed_appeared_or_vanished_in_environment_order() -> None:
    assert [(c.environment, c.service, c.status) for c in CHANGES] == [
        ("staging", "legacy", "removed"),
        ("production", "payments", "changed"),
        ("production-eu", "checkout", "added"),
    ]
    assert CHANGES[1].keys == (
        KeyChange("db.port", "changed", 1, 2),
        KeyChange("gone", "removed", True, None),
        KeyChange("hosts", "changed", ["x"], ["x", "y"]),
        KeyChange("new", "added", None, "é"),
    )


def test_an_environment_no_longer_declared_sorts_last() -> None:
    changes = diff_configs({("qa", "p"): {"a": 1}, ("staging", "p"): {"a": 1}}, {}, ["staging"])
    assert [c.environment for c in changes] == ["staging", "qa"]


def test_text_report() -> None:
    assert to_text(CHANGES) == (
        "staging/legacy (removed)\n"
        "  - a: 1\n"
        "production/payments (changed)\n"
        "  ~ db.port: 1 -> 2\n"
        "  - gone: true\n"
        '  ~ hosts: ["x"] -> ["x", "y"]\n'
        '  + new: "é"\n'
        "production-eu/checkout (added)\n"
        '  + currency: "EUR"\n'
    )
    assert to_text([]) == "no effective changes\n"


def test_markdown_report_for_a_pull_request() -> None:
    assert to_markdown(CHANGES, "main", "feature") == (
        "### gitconf: effective configuration changes (main → feature)\n"
        "\n"
        "6 key(s) in 3 config(s).\n"
        "\n"
        "#### `staging/legacy` (removed)\n"
        "\n"
        "| key | before | after |\n"
        "|---|---|---|\n"
        "| `a` | `1` |  |\n"
        "\n"
        "#### `production/payments` (changed)\n"
        "\n"
        "| key | before | after |\n"
        "|---|---|---|\n"
        "| `db.port` | `1` | `2` |\n"
        "| `gone` | `true` |  |\n"
        '| `hosts` | `["x"]` | `["x", "y"]` |\n'
        '| `new` |  | `"é"` |\n'
        "\n"
        "#### `production-eu/checkout` (added)\n"
        "\n"
        "| key | before | after |\n"
        "|---|---|---|\n"
        '| `currency` |  | `"EUR"` |\n'
    )


def test_markdown_without_changes_or_refs() -> None:
    assert to_markdown([]) == (
        "### gitconf: effective configuration changes\n\nNo effective configuration changes.\n"
    )


def cells(row: str) -> list[str]:
    """The cells of a GitHub table row: it splits at every pipe not escaped by a backslash."""
    return re.split(r"(?<!\\)\|", row)[1:-1]


@pytest.mark.parametrize(
    ("key", "old", "new", "row"),
    [
        ("cmd", "a|b", "c", [" `cmd` ", ' `"a\\|b"` ', ' `"c"` ']),
        ('["a|b"]', 1, 2, [' `["a\\|b"]` ', " `1` ", " `2` "]),
        # A code span ends at the next run of as many backticks as opened it.
        ("run", "echo `date`", None, [" `run` ", ' ``"echo `date`"`` ', "  "]),
        ("k", ["`"], ["``"], [" `k` ", ' ``["`"]`` ', ' ```["``"]``` ']),
    ],
    ids=["pipe-in-a-value", "pipe-in-a-key", "backticks-in-a-value", "backtick-runs"],
)
def test_markdown_rows_keep_three_cells_and_their_code_spans(
    key: str, old: Any, new: Any, row: list[str]
) -> None:
    status = "removed" if new is None else "changed"
    change = ConfigChange("staging", "p", "changed", (KeyChange(key, status, old, new),))
    [line] = [line for line in to_markdown([change]).splitlines() if line.startswith("| `")]
    assert cells(line) == row


def test_json_report_is_what_the_api_serves() -> None:
    doc = json.loads(to_json_report(CHANGES))
    assert doc[1] == {
        "environment": "production",
        "service": "payments",
        "status": "changed",
        "changes": [
            {"key": "db.port", "status": "changed", "old": 1, "new": 2},
            {"key": "gone", "status": "removed", "old": True, "new": None},
            {"key": "hosts", "status": "changed", "old": ["x"], "new": ["x", "y"]},
            {"key": "new", "status": "added", "old": None, "new": "é"},
        ],
    }
    assert "é" in to_json_report(CHANGES)  # not \u00e9: the report is for people too


def compiled(files: dict[str, str]) -> CompiledRevision:
    fileset = FileSet({path: text.encode() for path, text in files.items()})
    result = compile_fileset(fileset)
    assert result.revision is not None, [p.render() for p in result.problems]
    return result.revision


BASE = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "schemas/search.schema.json": OPEN_SCHEMA,
    "base/_all.yaml": "region: us-east-1\n",
    "base/payments.yaml": "db: {port: 5432}\n",
    "base/search.yaml": "shards: 2\n",
}


def test_a_change_in_a_parent_environment_shows_in_each_child() -> None:
    old = compiled(BASE)
    new = compiled({**BASE, "environments/production/payments.yaml": "db: {port: 6000}\n"})
    assert [(c.environment, c.service, c.keys) for c in diff_revisions(old, new)] == [
        ("production", "payments", (KeyChange("db.port", "changed", 5432, 6000),)),
        ("production-eu", "payments", (KeyChange("db.port", "changed", 5432, 6000),)),
    ]


def test_a_change_to_base_all_shows_in_every_config() -> None:
    old = compiled(BASE)
    new = compiled({**BASE, "base/_all.yaml": "region: eu-west-1\n"})
    changes = diff_revisions(old, new)
    assert len(changes) == 6
    assert {c.keys for c in changes} == {
        (KeyChange("region", "changed", "us-east-1", "eu-west-1"),)
    }


def test_a_first_revision_adds_every_config() -> None:
    changes = diff_revisions(None, compiled(BASE))
    assert [(c.environment, c.service, c.status) for c in changes] == [
        (env, service, "added")
        for env in ["staging", "production", "production-eu"]
        for service in ["payments", "search"]
    ]
