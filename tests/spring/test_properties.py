"""Spring's shapes of a merged config: property names, property sources, merges, .properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config._config import to_dict  # config-client's own rebuild of nested config

from gitconf.core.compile import compile_fileset
from gitconf.git.read import fileset_from_dir
from gitconf.spring.properties import (
    environment,
    flatten,
    merge_profiles,
    property_source,
    spring_key,
    to_properties,
)

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("a",), "a"),
        (("db", "pool", "max"), "db.pool.max"),
        (("servers", 0), "servers[0]"),
        (("servers", 1, "host"), "servers[1].host"),
        (("matrix", 0, 1), "matrix[0][1]"),
        (("labels", "app.kubernetes.io/name"), "labels[app.kubernetes.io/name]"),
        (("with-dash", "under_score"), "with-dash.under_score"),
    ],
)
def test_spring_key(path: tuple[str | int, ...], key: str) -> None:
    assert spring_key(path) == key


@pytest.mark.parametrize(
    ("value", "flat"),
    [
        ({"a": {"b": {"c": 1}}}, {"a.b.c": 1}),
        ({"servers": ["x", "y"]}, {"servers[0]": "x", "servers[1]": "y"}),
        (
            {"hosts": [{"name": "a", "port": 1}, {"name": "b"}]},
            {"hosts[0].name": "a", "hosts[0].port": 1, "hosts[1].name": "b"},
        ),
        ({"matrix": [[1, 2], [3]]}, {"matrix[0][0]": 1, "matrix[0][1]": 2, "matrix[1][0]": 3}),
        # Spring's YamlProcessor: null and empty lists become "", empty maps vanish.
        ({"fallback": None}, {"fallback": ""}),
        ({"origins": []}, {"origins": ""}),
        ({"extra": {}, "kept": True}, {"kept": True}),
        ({"ratio": 0.05, "on": False, "n": 0}, {"ratio": 0.05, "on": False, "n": 0}),
    ],
)
def test_flatten(value: dict[str, Any], flat: dict[str, Any]) -> None:
    assert flatten(value) == flat


def test_flatten_keeps_the_merge_order() -> None:
    assert list(flatten({"z": 1, "a": {"y": 2, "b": 3}})) == ["z", "a.y", "a.b"]


def test_property_source_names_environment_service_and_revision() -> None:
    assert property_source("production-eu", "checkout", "abc123", {"a": {"b": 1}}) == {
        "name": "gitconf:production-eu/checkout@abc123",
        "source": {"a.b": 1},
    }


def test_property_source_with_origins_is_springs_v2_form() -> None:
    origins = {"a.b": "base/x.yaml:2:6", "list[0]": "environments/p/x.yaml:3:5"}
    source = property_source("p", "x", "abc", {"a": {"b": 1}, "list": [7], "c": None}, origins)
    assert source["source"] == {
        "a.b": {"value": 1, "origin": "base/x.yaml:2:6"},
        "list[0]": {"value": 7, "origin": "environments/p/x.yaml:3:5"},
        "c": "",  # no origin known: the plain value, which Spring clients also accept
    }


def test_environment_document() -> None:
    sources = [property_source("production", "api", "abc", {"a": 1})]
    assert environment("api", ("production",), None, "abc", sources) == {
        "name": "api",
        "profiles": ["production"],
        "label": None,
        "version": "abc",
        "state": None,
        "propertySources": sources,
    }


@pytest.mark.parametrize(
    ("values", "merged"),
    [
        ([{"a": 1}], {"a": 1}),
        ([{"a": 1, "b": 1}, {"b": 2}], {"a": 1, "b": 2}),
        ([{"db": {"host": "x", "port": 1}}, {"db": {"port": 2}}], {"db": {"host": "x", "port": 2}}),
        ([{"l": [1, 2, 3]}, {"l": [9]}], {"l": [9]}),  # a later list replaces, as in Spring
        ([{"m": {"k": 1}}, {"m": "flat"}], {"m": "flat"}),
        ([{"m": "flat"}, {"m": {"k": 1}}], {"m": {"k": 1}}),
        ([{"a": 1}, {"a": None}], {"a": None}),
        ([{"a": 1}, {"b": 2}, {"a": 3}], {"a": 3, "b": 2}),
    ],
)
def test_merge_profiles_last_wins(values: list[Any], merged: Any) -> None:
    assert merge_profiles(values) == merged


def test_merge_profiles_leaves_its_inputs_alone() -> None:
    low, high = {"db": {"host": "x"}}, {"db": {"port": 2}}
    merge_profiles([low, high])
    assert low == {"db": {"host": "x"}} and high == {"db": {"port": 2}}


def test_to_properties() -> None:
    value = {
        "db": {"host": "h", "pool": {"max": 50}},
        "servers": ["a", "b"],
        "tls": True,
        "ratio": 0.05,
        "fallback": None,
        "origins": [],
        "motd": "line one\nline two \\o/",
        "odd key": {"a:b": "c=d"},
    }
    assert to_properties(value).decode() == (
        "db.host: h\n"
        "db.pool.max: 50\n"
        "servers[0]: a\n"
        "servers[1]: b\n"
        "tls: true\n"
        "ratio: 0.05\n"
        "fallback: \n"
        "origins: \n"
        "motd: line one\\nline two \\\\o/\n"
        "odd\\ key.a\\:b: c=d\n"
    )


def _spring_view(value: Any) -> Any:
    """What any Spring client rebuilds: null and [] read back as "", empty maps are gone."""
    if isinstance(value, dict):
        views = {k: _spring_view(v) for k, v in value.items()}
        return {k: v for k, v in views.items() if v != {}}
    if isinstance(value, list):
        return [_spring_view(v) for v in value] if value else ""
    return "" if value is None else value


def test_config_client_rebuilds_every_sample_config_from_the_flat_form() -> None:
    revision = compile_fileset(fileset_from_dir(SAMPLE)).revision
    assert revision is not None
    for (env, service), config in revision.configs.items():
        value = config.value
        assert to_dict(flatten(value)) == _spring_view(value), (env, service)
