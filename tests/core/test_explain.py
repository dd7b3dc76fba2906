"""Provenance of a merged config: each leaf's value, the place that set it, what it overrode.

The text `gitconf explain` prints from these entries is tested in tests/test_cli.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitconf.core.compile import compile_fileset
from gitconf.core.explain import explain_config
from gitconf.core.model import Config, FileSet
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA

FILES = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "base/_all.yaml": "region: us-east-1\n",
    "base/payments.yaml": (
        "db:\n  host: db.internal\n  pool: {max: 10}\nhosts: [a, b]\n"
        "labels:\n  app.kubernetes.io/name: pay\nempty: {}\n"
    ),
    "environments/production/payments.yaml": "db:\n  pool: {max: 50}\n",
    "environments/production-eu/payments.yaml": "db:\n  pool: {max: 80}\nfallback: null\n",
}


def config(env: str = "production-eu") -> Config:
    result = compile_fileset(FileSet({path: text.encode() for path, text in FILES.items()}))
    assert result.revision is not None, [p.render() for p in result.problems]
    return result.revision.configs[(env, "payments")]


POOL_MAX = {
    "key": "db.pool.max",
    "value": 80,
    "source": "environments/production-eu/payments.yaml:2:15",
    # lowest layer first
    "overrides": ["base/payments.yaml:3:15", "environments/production/payments.yaml:2:15"],
}


def test_every_leaf_in_merge_order_with_where_it_was_set() -> None:
    assert explain_config(config()) == [
        {"key": "region", "value": "us-east-1", "source": "base/_all.yaml:1:9", "overrides": []},
        {
            "key": "db.host",
            "value": "db.internal",
            "source": "base/payments.yaml:2:9",
            "overrides": [],
        },
        POOL_MAX,
        {"key": "hosts[0]", "value": "a", "source": "base/payments.yaml:4:9", "overrides": []},
        {"key": "hosts[1]", "value": "b", "source": "base/payments.yaml:4:12", "overrides": []},
        {
            "key": 'labels["app.kubernetes.io/name"]',
            "value": "pay",
            "source": "base/payments.yaml:6:27",
            "overrides": [],
        },
        {"key": "empty", "value": {}, "source": "base/payments.yaml:7:8", "overrides": []},
        {
            "key": "fallback",
            "value": None,
            "source": "environments/production-eu/payments.yaml:3:11",
            "overrides": [],
        },
    ]


def test_a_parent_environment_sees_only_its_own_chain() -> None:
    [entry] = explain_config(config("production"), "db.pool.max")
    assert entry["value"] == 50
    assert entry["overrides"] == ["base/payments.yaml:3:15"]


@pytest.mark.parametrize(
    ("key", "keys"),
    [
        ("db", ["db.host", "db.pool.max"]),
        ("db.pool", ["db.pool.max"]),
        ("db.pool.max", ["db.pool.max"]),
        ("hosts", ["hosts[0]", "hosts[1]"]),
        ("hosts[1]", ["hosts[1]"]),
        ('labels["app.kubernetes.io/name"]', ['labels["app.kubernetes.io/name"]']),
        ("empty", ["empty"]),
    ],
)
def test_a_key_narrows_to_the_leaves_under_it(key: str, keys: list[str]) -> None:
    entries = explain_config(config(), key)
    assert [e["key"] for e in entries] == keys
    if key == "db.pool.max":
        assert entries == [POOL_MAX]


@pytest.mark.parametrize(
    "key", ["nope", "db.nope", "db.host.deeper", "hosts[5]", "hosts.0", "db[0]"]
)
def test_a_key_that_is_not_there_explains_nothing(key: str) -> None:
    assert explain_config(config(), key) == []


def test_no_key_and_an_empty_key_explain_everything() -> None:
    everything: list[dict[str, Any]] = explain_config(config())
    assert explain_config(config(), "") == everything
    assert len(everything) == 8
