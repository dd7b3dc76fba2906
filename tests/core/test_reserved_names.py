"""Service names that gitconf's own routes use are rejected (DESIGN §4, the Spring routes)."""

from __future__ import annotations

import pytest

from gitconf.core.compile import compile_fileset
from gitconf.core.layers import RESERVED_SERVICES, discover
from gitconf.core.model import FileSet
from gitconf.errors import Source
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA


def fileset(files: dict[str, str]) -> FileSet:
    return FileSet({path: text.encode() for path, text in files.items()})


@pytest.mark.parametrize("name", sorted(RESERVED_SERVICES))
def test_a_reserved_service_name_rejects_the_commit(name: str) -> None:
    result = compile_fileset(
        fileset(
            {
                "gitconf.yaml": MINIMAL_MANIFEST,
                f"schemas/{name}.schema.json": OPEN_SCHEMA,
                f"base/{name}.yaml": "a: 1\n",
            }
        )
    )
    assert result.revision is None
    [problem] = result.problems
    assert problem.source == Source(f"base/{name}.yaml", 1, 1)
    assert f"service name {name!r} is reserved" in problem.message
    assert "rename the service" in problem.hint


def test_the_rendered_problem_names_file_line_and_fix() -> None:
    result = compile_fileset(
        fileset(
            {
                "gitconf.yaml": MINIMAL_MANIFEST,
                "schemas/healthz.schema.json": OPEN_SCHEMA,
                "environments/production/healthz.yaml": "a: 1\n",
            }
        )
    )
    assert [p.render() for p in result.problems] == [
        "environments/production/healthz.yaml:1:1: service name 'healthz' is reserved: "
        "gitconf serves /healthz itself, so the Spring Cloud Config route /healthz/<env> "
        "could never reach this service (rename the service; reserved names: healthz, "
        "metrics, openapi.json, readyz, static, ui, v1)"
    ]


def test_a_reserved_service_folder_is_reported_once_per_layer() -> None:
    layout, problems = discover(
        ["base/v1/10-a.yaml", "base/v1/20-b.yaml", "environments/staging/v1.yaml"]
    )
    assert [p.source for p in problems] == [
        Source("base/v1/10-a.yaml"),
        Source("environments/staging/v1.yaml"),
    ]
    assert layout.services == ()


@pytest.mark.parametrize("name", ["v2", "health", "metrics-exporter", "api.v1", "openapi"])
def test_names_that_only_resemble_reserved_ones_are_fine(name: str) -> None:
    layout, problems = discover([f"base/{name}.yaml"])
    assert problems == []
    assert layout.services == (name,)
