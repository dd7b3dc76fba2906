"""Which files make each (environment, service), lowest precedence first, and misplaced files.

The reserved service names are in test_reserved_names.py.
"""

from __future__ import annotations

import pytest

from gitconf.core.layers import Layout, discover, is_config_path
from gitconf.core.manifest import parse_manifest
from gitconf.core.model import Manifest
from gitconf.testing import MINIMAL_MANIFEST

REPOSITORY = [
    "README.md",
    "docs/layout.md",
    "gitconf.yaml",
    "schemas/payments.schema.json",
    "schemas/search.schema.json",
    "base/_all.yaml",
    "base/README.md",
    "base/.gitkeep",
    "base/payments.yaml",
    "base/search/10-shards.yaml",
    "base/search/02-analyzers.yml",
    "base/search/README.md",
    "environments/staging/payments.yaml",
    "environments/production/_all.yaml",
    "environments/production/payments.yaml",
    "environments/production-eu/_all.yaml",
    "environments/production-eu/search/zz-eu.yaml",
    "environments/production-eu/checkout.yaml",
]


def minimal_manifest() -> Manifest:
    manifest, problems = parse_manifest(MINIMAL_MANIFEST.encode())
    assert problems == [] and manifest is not None
    return manifest


def layout_of(paths: list[str]) -> Layout:
    layout, problems = discover(paths)
    assert problems == [], [p.render() for p in problems]
    return layout


@pytest.mark.parametrize(
    ("env", "service", "layers"),
    [
        (
            "staging",
            "payments",
            ["base/_all.yaml", "base/payments.yaml", "environments/staging/payments.yaml"],
        ),
        (
            "production",
            "payments",
            [
                "base/_all.yaml",
                "base/payments.yaml",
                "environments/production/_all.yaml",
                "environments/production/payments.yaml",
            ],
        ),
        (
            # production-eu extends production: production's layers, then its own.
            "production-eu",
            "payments",
            [
                "base/_all.yaml",
                "base/payments.yaml",
                "environments/production/_all.yaml",
                "environments/production/payments.yaml",
                "environments/production-eu/_all.yaml",
            ],
        ),
        (
            # A folder-form service merges its files in name order, whatever their suffix.
            "production-eu",
            "search",
            [
                "base/_all.yaml",
                "base/search/02-analyzers.yml",
                "base/search/10-shards.yaml",
                "environments/production/_all.yaml",
                "environments/production-eu/_all.yaml",
                "environments/production-eu/search/zz-eu.yaml",
            ],
        ),
        (
            "staging",
            "search",
            ["base/_all.yaml", "base/search/02-analyzers.yml", "base/search/10-shards.yaml"],
        ),
        # A service of one environment's layers only is served everywhere, from base/_all.
        ("staging", "checkout", ["base/_all.yaml"]),
        (
            "production-eu",
            "checkout",
            [
                "base/_all.yaml",
                "environments/production/_all.yaml",
                "environments/production-eu/_all.yaml",
                "environments/production-eu/checkout.yaml",
            ],
        ),
    ],
)
def test_the_layers_of_a_config(env: str, service: str, layers: list[str]) -> None:
    assert layout_of(REPOSITORY).layers(minimal_manifest(), env, service) == layers


def test_services_are_every_name_of_any_layer_and_readmes_are_ignored() -> None:
    layout = layout_of(REPOSITORY)
    assert layout.services == ("checkout", "payments", "search")
    assert set(layout.environment_folders) == {"staging", "production", "production-eu"}


def test_the_order_of_the_paths_given_does_not_matter() -> None:
    forward = layout_of(REPOSITORY)
    backward = layout_of(list(reversed(REPOSITORY)))
    assert backward.files == forward.files and backward.services == forward.services


@pytest.mark.parametrize(
    ("paths", "rendered"),
    [
        (
            ["environments/payments.yaml"],
            "environments/payments.yaml:1:1: a file directly under environments/ belongs to no "
            "environment (put it in environments/<env>/)",
        ),
        (
            ["base/payments.json"],
            "base/payments.json:1:1: not a YAML file: layer files end in .yaml or .yml "
            "(rename it, or move it out of base/ and environments/)",
        ),
        (
            ["base/payments/nested/a.yaml"],
            "base/payments/nested/a.yaml:1:1: too deep: a service folder holds YAML files, "
            "not folders (move it to base/payments/a.yaml)",
        ),
        (
            ["environments/production/payments/old/a.yaml"],
            "environments/production/payments/old/a.yaml:1:1: too deep: a service folder holds "
            "YAML files, not folders (move it to environments/production/payments/a.yaml)",
        ),
        (
            ["base/Payments.yaml"],
            "base/Payments.yaml:1:1: service name 'Payments' is not allowed (names match "
            "[a-z0-9][a-z0-9._-]*: lower case letters, digits, '.', '_' and '-')",
        ),
        (
            ["environments/Prod/payments.yaml"],
            "environments/Prod/payments.yaml:1:1: environment name 'Prod' is not allowed (names "
            "match [a-z0-9][a-z0-9._-]*: lower case letters, digits, '.', '_' and '-')",
        ),
        (
            ["base/payments.yaml", "base/payments.yml"],
            "base/payments.yml:1:1: base/payments.yaml and base/payments.yml define the same "
            "layer; keep one",
        ),
        (
            ["base/payments.yaml", "base/payments/db.yaml"],
            "base/payments/db.yaml:1:1: base/payments.yaml and the folder of "
            "base/payments/db.yaml define the same layer; keep one",
        ),
    ],
    ids=[
        "directly-under-environments",
        "not-yaml",
        "too-deep-in-base",
        "too-deep-in-an-environment",
        "bad-service-name",
        "bad-environment-name",
        "yaml-and-yml",
        "file-and-folder",
    ],
)
def test_a_misplaced_file_is_a_problem_at_its_path(paths: list[str], rendered: str) -> None:
    _, problems = discover(paths)
    assert [p.render() for p in problems] == [rendered]


@pytest.mark.parametrize(
    "path",
    [
        "base/.gitkeep",
        "base/README.md",
        "base/readme.txt",
        "base/payments/README",
        "environments/README.md",
    ],
)
def test_dot_files_and_readmes_are_no_layer_and_no_problem(path: str) -> None:
    layout, problems = discover([path])
    assert problems == [] and layout.files == {}


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("gitconf.yaml", True),
        ("schemas/payments.schema.json", True),
        ("schemas/_common/db.json", True),
        ("base/_all.yaml", True),
        ("environments/production/payments.yaml", True),
        ("README.md", False),
        ("docs/gitconf.yaml", False),
        ("sub/base/payments.yaml", False),
        ("baseline/payments.yaml", False),
        ("gitconf.yml", False),
    ],
)
def test_which_paths_gitconf_reads(path: str, read: bool) -> None:
    assert is_config_path(path) is read
