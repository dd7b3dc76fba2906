"""`gitconf validate` on real repositories: one test per item of DESIGN §1 "What is an error"."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitconf.cli import main
from gitconf.testing import (
    MINIMAL_MANIFEST,
    OPEN_SCHEMA,
    commit_all,
    git,
    make_repo,
    write_files,
)
from tests.conftest import expect_one_line_exit_2

PROBLEM_LINE = re.compile(r"^(?P<path>[^:\s][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")

PAYMENTS_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "db": {
      "type": "object",
      "properties": {"port": {"type": "integer"}, "host": {"type": "string"}}
    }
  }
}
"""

VALID: dict[str, str | bytes | None] = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "base/payments.yaml": "db:\n  port: 5432\n",
}

MiB = 1024 * 1024

Run = Callable[..., Result]


def invoke(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(main, list(args))


@pytest.fixture(params=["disk", "ref"])
def run(request: pytest.FixtureRequest) -> Run:
    """Run a command against a repo, reading the work tree (disk) or the commit HEAD (ref)."""

    def _run(command: str, repo: Path, *args: str) -> Result:
        extra = ["--ref", "HEAD"] if request.param == "ref" else []
        return invoke(command, *args, "--repo", str(repo), *extra)

    return _run


def repo_with(tmp_path: Path, files: dict[str, str | bytes | None]) -> Path:
    """A committed repository holding VALID updated by files (None removes a file)."""
    everything: dict[str, str | bytes | None] = {**VALID, **files}
    return make_repo(tmp_path / "r", {k: v for k, v in everything.items() if v is not None})


def problem_lines(result: Result) -> list[re.Match[str]]:
    """The stdout lines that have the `path:line:col: message` shape."""
    return [m for m in map(PROBLEM_LINE.match, result.stdout.splitlines()) if m]


def expect_problem(
    result: Result,
    path: str,
    line: int | tuple[int, ...] | None = None,
    col: int | None = None,
    *words: str,
) -> str:
    """Assert exit 1 and a problem line at path[:line[:col]] containing every word; return it."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = (line,) if isinstance(line, int) else line
    for m in problem_lines(result):
        if m["path"] != path:
            continue
        if lines is not None and int(m["line"]) not in lines:
            continue
        if col is not None and int(m["col"]) != col:
            continue
        if all(w.lower() in m["message"].lower() for w in words):
            return m.group(0)
    pytest.fail(f"no problem at {path}:{line}:{col} with {words!r} in:\n{result.stdout}")


def assert_schema_not_called_missing(result: Result) -> None:
    """A schema file that exists but is broken must not also be reported as missing."""
    wrong = [m.group(0) for m in problem_lines(result) if "no schema" in m["message"].lower()]
    assert wrong == [], wrong


# -- the baseline ------------------------------------------------------------------------
def test_valid_repo_exit_0(tmp_path: Path, run: Run) -> None:
    result = run("validate", repo_with(tmp_path, {}))

    assert result.exit_code == 0, result.output
    assert problem_lines(result) == []


def test_plain_folder_without_git_is_read_from_disk(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    write_files(folder, VALID)

    assert invoke("validate", "--repo", str(folder)).exit_code == 0
    bad = invoke("validate", "--repo", str(folder), "--ref", "HEAD")
    expect_one_line_exit_2(bad)


def test_disk_reads_uncommitted_edits_ref_reads_the_commit(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    write_files(repo, {"base/payments.yaml": "a: 1\nb: c: d\n"})  # not committed

    expect_problem(invoke("validate", "--repo", str(repo)), "base/payments.yaml", 2)
    assert invoke("validate", "--repo", str(repo), "--ref", "HEAD").exit_code == 0


# -- YAML --------------------------------------------------------------------------------
def test_yaml_syntax_error(tmp_path: Path, run: Run) -> None:
    result = run("validate", repo_with(tmp_path, {"base/payments.yaml": "a: 1\nb: c: d\n"}))

    expect_problem(result, "base/payments.yaml", 2, 5)


def test_duplicate_key(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"base/payments.yaml": "db:\n  port: 1\n  port: 2\n"})

    line = expect_problem(run("validate", repo), "base/payments.yaml", 3, 3, "db.port")
    assert "duplicate" in line.lower()


def test_top_level_list(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"base/payments.yaml": "- a\n- b\n"})

    expect_problem(run("validate", repo), "base/payments.yaml", 1, 1, "mapping")


# -- the manifest ----------------------------------------------------------------------------
def test_environment_folder_not_declared(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"environments/qa/payments.yaml": "db:\n  port: 1\n"})

    line = expect_problem(run("validate", repo), "environments/qa/payments.yaml", None, None, "qa")
    assert "undeclared" in line.lower() or "not declared" in line.lower(), line


CYCLE_MANIFEST = """\
version: 1
environments:
  staging: {}
  a:
    extends: b
  b:
    extends: a
validation:
  require_schema: true
"""

UNKNOWN_PARENT_MANIFEST = """\
version: 1
environments:
  staging: {}
  eu:
    extends: nosuch
validation:
  require_schema: true
"""


def test_extends_cycle(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"gitconf.yaml": CYCLE_MANIFEST})

    expect_problem(run("validate", repo), "gitconf.yaml", (5, 7), 14, "cycle")


def test_extends_unknown_parent(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"gitconf.yaml": UNKNOWN_PARENT_MANIFEST})

    expect_problem(run("validate", repo), "gitconf.yaml", 5, 14, "nosuch")


# -- schemas --------------------------------------------------------------------------------
def test_schema_itself_invalid(tmp_path: Path, run: Run) -> None:
    schema = '{\n  "$schema": "https://json-schema.org/draft/2020-12/schema",\n  "type": 12\n}\n'
    repo = repo_with(tmp_path, {"schemas/payments.schema.json": schema})

    result = run("validate", repo)

    expect_problem(result, "schemas/payments.schema.json", 3)
    assert_schema_not_called_missing(result)


REF_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "db": {"$ref": "_common/db.json"}
  }
}
"""

COMMON_DB = '{"type": "object", "properties": {"port": {"type": "integer"}}}\n'


def test_schema_ref_does_not_resolve(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"schemas/payments.schema.json": REF_SCHEMA})

    result = run("validate", repo)

    expect_problem(result, "schemas/payments.schema.json", 5, None, "_common/db.json")
    assert_schema_not_called_missing(result)


def test_schema_ref_to_common_resolves_and_is_applied(tmp_path: Path, run: Run) -> None:
    files: dict[str, str | bytes | None] = {
        "schemas/payments.schema.json": REF_SCHEMA,
        "schemas/_common/db.json": COMMON_DB,
    }
    repo = repo_with(tmp_path, files)
    assert run("validate", repo).exit_code == 0

    commit_all(repo, "bad port", {"environments/staging/payments.yaml": "db:\n  port: abc\n"})
    expect_problem(run("validate", repo), "environments/staging/payments.yaml", 2, 9, "db.port")


def test_merged_config_fails_schema_at_layer_that_set_the_value(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path,
        {
            "schemas/payments.schema.json": PAYMENTS_SCHEMA,
            "base/payments.yaml": "db:\n  port: 5432\n  host: db.internal\n",
            "environments/production/payments.yaml": '# production overrides\ndb:\n  port: "abc"\n',
        },
    )
    result = run("validate", repo)

    line = expect_problem(result, "environments/production/payments.yaml", 3, 9)
    assert line.startswith("environments/production/payments.yaml:3:9: db.port: 'abc' "), line
    assert "integer" in line
    assert "schemas/payments.schema.json" in line
    assert not [m for m in problem_lines(result) if m["path"] == "base/payments.yaml"]


NO_REQUIRE_MANIFEST = MINIMAL_MANIFEST.replace("require_schema: true", "require_schema: false")


def test_service_without_schema_when_required(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"schemas/payments.schema.json": None})

    expect_problem(run("validate", repo), "base/payments.yaml", 1, None, "payments", "schema")


def test_service_without_schema_when_not_required(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path, {"schemas/payments.schema.json": None, "gitconf.yaml": NO_REQUIRE_MANIFEST}
    )

    result = run("validate", repo)
    assert result.exit_code == 0, result.output


# -- names, sizes, links ------------------------------------------------------------------------
def test_bad_service_name(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path,
        {"base/Payments.yaml": "db:\n  port: 1\n", "schemas/Payments.schema.json": OPEN_SCHEMA},
    )

    expect_problem(run("validate", repo), "base/Payments.yaml", 1, None, "'Payments'")


BAD_ENV_MANIFEST = """\
version: 1
environments:
  staging: {}
  Prod_1: {}
validation:
  require_schema: true
"""


def test_bad_environment_name(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"gitconf.yaml": BAD_ENV_MANIFEST})

    expect_problem(run("validate", repo), "gitconf.yaml", 4, None, "Prod_1")


def test_file_over_size_limit(tmp_path: Path, run: Run) -> None:
    big = "db:\n  port: 5432\n" + "#" * MiB + "\n"
    repo = repo_with(tmp_path, {"base/payments.yaml": big})

    line = expect_problem(run("validate", repo), "base/payments.yaml", 1, 1)
    assert re.search(r"MiB|size|large|limit|bytes", line, re.IGNORECASE), line


def test_file_at_size_limit_is_fine(tmp_path: Path, run: Run) -> None:
    head = "db:\n  port: 5432\n"
    exact = head + "#" * (MiB - len(head) - 1) + "\n"
    assert len(exact.encode()) == MiB
    repo = repo_with(tmp_path, {"base/payments.yaml": exact})

    result = run("validate", repo)
    assert result.exit_code == 0, result.output


def limited(**validation: int) -> str:
    """MINIMAL_MANIFEST with these validation settings added."""
    return MINIMAL_MANIFEST + "".join(f"  {key}: {value}\n" for key, value in validation.items())


def test_schema_over_its_size_limit(tmp_path: Path, run: Run) -> None:
    schema = '{"type": "object", "description": "' + "x" * 3000 + '"}\n'
    repo = repo_with(
        tmp_path,
        {"gitconf.yaml": limited(max_schema_size=2000), "schemas/payments.schema.json": schema},
    )

    result = run("validate", repo)

    line = expect_problem(result, "schemas/payments.schema.json", 1, 1, "over the limit of 2,000")
    assert line.endswith("(split it, or raise validation.max_schema_size in gitconf.yaml)")
    assert_schema_not_called_missing(result)


def test_commit_over_the_total_size_limit(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path,
        {"gitconf.yaml": limited(max_total_size=500), "base/payments.yaml": "a: 1\n" + "#" * 600},
    )

    line = expect_problem(run("validate", repo), "base/payments.yaml", 1, 1, "total")
    assert (
        "over the limit of 500; the largest: base/payments.yaml (605 bytes), gitconf.yaml" in line
    )
    assert line.endswith("raise validation.max_total_size in gitconf.yaml)")


def test_config_over_the_rendered_size_limit(tmp_path: Path, run: Run) -> None:
    overlay = "db:\n  host: " + "h" * 100 + "\n"
    repo = repo_with(
        tmp_path,
        {
            "gitconf.yaml": limited(max_config_size=100),
            "environments/production/payments.yaml": overlay,
        },
    )

    result = run("validate", repo)

    line = expect_problem(
        result, "environments/production/payments.yaml", 1, 1, "production/payments merges to"
    )
    assert "over the limit of 100; its layers: base/payments.yaml, " in line
    assert line.endswith("or raise validation.max_config_size in gitconf.yaml)")
    # staging's config is small: only the two that include the overlay are refused.
    merged = [m["message"].split(" merges")[0] for m in problem_lines(result)]
    assert sorted(merged) == ["production-eu/payments", "production/payments"]


def test_configs_over_the_total_rendered_size_limit(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"gitconf.yaml": limited(max_total_config_size=40)})

    line = expect_problem(run("validate", repo), "base/payments.yaml", 1, 1, "merged configs")
    assert "total 60 bytes of JSON, over the limit of 40" in line
    assert line.endswith("raise validation.max_total_config_size in gitconf.yaml)")


@pytest.mark.parametrize(
    ("link", "target", "reported"),
    [
        (
            "environments/staging/payments.yaml",
            "../../base/payments.yaml",
            "environments/staging/payments.yaml",
        ),
        ("environments/production", "../shared-env", "environments/production"),
    ],
    ids=["file", "folder"],
)
def test_symlink_among_config_paths(
    tmp_path: Path, run: Run, link: str, target: str, reported: str
) -> None:
    repo = make_repo(
        tmp_path / "r", {**VALID, "shared-env/payments.yaml": "db:\n  port: 1\n"}, commit=False
    )
    (repo / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, repo / link)
    commit_all(repo, "a symlink")

    result = run("validate", repo)

    assert result.exit_code == 1, result.output
    hits = [
        m
        for m in problem_lines(result)
        if (m["path"] == reported or m["path"].startswith(reported + "/"))
        and re.search(r"symlink|symbolic link", m["message"], re.IGNORECASE)
    ]
    assert hits, result.stdout
    assert hits[0]["line"] == "1"


def test_submodule_among_config_paths_at_ref(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},environments/staging/vendored")
    git(repo, "commit", "-q", "-m", "a submodule")  # not commit_all: `add -A` would drop it

    result = invoke("validate", "--repo", str(repo), "--ref", "HEAD")

    expect_problem(result, "environments/staging/vendored", 1, None, "submodule")


def test_submodule_among_config_paths_on_disk(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})
    write_files(
        repo,
        {
            "environments/staging/vendored/.git": "gitdir: ../../../.git/modules/vendored\n",
            "environments/staging/vendored/payments.yaml": "db:\n  port: 1\n",
        },
    )

    result = invoke("validate", "--repo", str(repo))

    expect_problem(result, "environments/staging/vendored", 1, None, "submodule")


# -- merge conflicts across layers --------------------------------------------------------------
def test_mapping_vs_scalar_conflict_names_both_files(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path, {"environments/staging/payments.yaml": "# staging\ndb: postgres://db\n"}
    )

    line = expect_problem(run("validate", repo), "environments/staging/payments.yaml", 2)
    assert re.search(r"base/payments\.yaml:\d+:\d+", line), line


# -- all problems of a commit, sorted -----------------------------------------------------------
BILLING_SCHEMA = (
    '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",'
    ' "properties": {"limit": {"type": "integer"}}}\n'
)

PAYMENTS_TWO_DUPLICATES = (
    "db:\n  port: 1\n  port: 2\n" + "".join(f"a{i}: {i}\n" for i in range(1, 8)) + "x: 1\nx: 2\n"
)


def test_every_problem_is_reported_sorted(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path,
        {
            "schemas/orders.schema.json": OPEN_SCHEMA,
            "schemas/billing.schema.json": BILLING_SCHEMA,
            "base/payments.yaml": PAYMENTS_TWO_DUPLICATES,  # duplicates at 3:3 and 12:1
            "base/orders.yaml": "a: 1\nb: c: d\n",  # syntax error at 2:5
            "base/billing.yaml": "limit: 5\n",
            "environments/staging/billing.yaml": "limit: many\n",  # schema error at 1:8
        },
    )
    result = run("validate", repo)

    expect_problem(result, "base/orders.yaml", 2, 5)
    expect_problem(result, "base/payments.yaml", 3, 3, "db.port")
    expect_problem(result, "base/payments.yaml", 12, 1)
    expect_problem(result, "environments/staging/billing.yaml", 1, 8, "limit")
    found = [(m["path"], int(m["line"])) for m in problem_lines(result)]
    assert found == sorted(found)


# -- usage and access errors: exit 2, one line -------------------------------------------------
def test_missing_manifest(tmp_path: Path, run: Run) -> None:
    repo = repo_with(tmp_path, {"gitconf.yaml": None})

    expect_one_line_exit_2(run("validate", repo), "gitconf.yaml")


def test_nonexistent_repo_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    expect_one_line_exit_2(invoke("validate", "--repo", str(missing)), "nope")


def test_unknown_ref(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {})

    expect_one_line_exit_2(
        invoke("validate", "--repo", str(repo), "--ref", "nosuchref"), "nosuchref"
    )


# -- render ----------------------------------------------------------------------------------
def test_render_prints_merged_json(tmp_path: Path, run: Run) -> None:
    repo = repo_with(
        tmp_path,
        {
            "base/_all.yaml": "log_level: info\n",
            "base/payments.yaml": "db:\n  host: db.internal\n  port: 5432\n",
            "environments/staging/payments.yaml": "db:\n  port: 6432\n",
            "environments/production/payments.yaml": "db:\n  port: 7000\n",
        },
    )

    result = run("render", repo, "staging", "payments")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "log_level": "info",
        "db": {"host": "db.internal", "port": 6432},
    }


def test_a_value_failing_several_schemas_names_each_schema(tmp_path: Path) -> None:
    schema = '{"type": "object", "properties": {"flag": {"type": "boolean"}}}'
    repo = make_repo(
        tmp_path / "r",
        {
            "gitconf.yaml": "version: 1\nenvironments: {prod: {}}\n",
            "schemas/api.schema.json": schema,
            "schemas/web.schema.json": schema,
            "base/_all.yaml": "flag: yes\n",
            "base/api.yaml": "a: 1\n",
            "base/web.yaml": "w: 1\n",
        },
    )
    result = CliRunner().invoke(main, ["validate", "--repo", str(repo)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "base/_all.yaml:1:7: flag: 'yes' is not of type 'boolean' "
        "(schema schemas/api.schema.json, schemas/web.schema.json, in prod/api, prod/web)"
    ]
