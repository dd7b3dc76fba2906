"""`gitconf set` on real work trees: validate first, write only if valid, --commit commits."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gitconf.changes.command import parse_assignment
from gitconf.changes.errors import BadKey
from gitconf.cli import main
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, git, make_repo
from tests.conftest import expect_one_line_exit_2

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"
EU_PAYMENTS = "environments/production-eu/payments.yaml"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """The sample repository, committed in a fresh Git work tree with an author configured."""
    root = Path(shutil.copytree(SAMPLE, tmp_path / "config"))
    make_repo(root, {})
    git(root, "config", "user.name", "Ada Operator")
    git(root, "config", "user.email", "ada@example.com")
    return root


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("db.pool.max=60", 60),
        ("flag=true", True),
        ("name='60'", "60"),
        ("name=yes", "yes"),
        ("list=[a, b]", ["a", "b"]),
        ("map={a: 1, b: [x]}", {"a": 1, "b": ["x"]}),
        ("empty=", None),
        ("ratio=0.5", 0.5),
        ("url=https://x.example/a=b", "https://x.example/a=b"),
        ('labels["a=b"]=x', "x"),
    ],
)
def test_values_are_yaml_flow_values(text: str, value: Any) -> None:
    assert parse_assignment(text)[1] == value


@pytest.mark.parametrize("text", ["novalue", "a=[1", "a=!delete", "a=1\nb: 2", "a..b=1", "=1"])
def test_bad_assignments(text: str) -> None:
    with pytest.raises(BadKey):
        parse_assignment(text)


def test_set_writes_the_edit_and_prints_the_effective_diff(sample: Path) -> None:
    result = invoke("set", "production-eu", "payments", "db.pool.max=60", "--repo", str(sample))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"production-eu/payments (changed)\n  ~ db.pool.max: 30 -> 60\nwrote {EU_PAYMENTS}\n"
    )
    assert git(sample, "diff", "--numstat") == f"1\t1\t{EU_PAYMENTS}"


def test_set_an_invalid_value_writes_nothing(sample: Path) -> None:
    result = invoke("set", "production-eu", "payments", "db.pool.max=many", "--repo", str(sample))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{EU_PAYMENTS}:22:10: db.pool.max: 'many' is not of type 'integer' "
        "(schema schemas/payments.schema.json, in production-eu/payments)",
        "gitconf: 1 problem(s); nothing was written",
    ]
    assert git(sample, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["prod", "payments", "a=1"], ["unknown environment 'prod'", "production-eu"]),
        (["production", "pay", "a=1"], ["unknown service 'pay'", "payments, search"]),
        (["production", "payments", "a..b=1"], ["is not a key path"]),
        (["production", "payments", "noequals"], ["is not KEY=VALUE"]),
        (["production", "payments"], ["nothing to do"]),
        (
            ["production", "payments", "a=1", "--layer", "environments/staging/payments.yaml"],
            ["is not a layer of production/payments", "its layers"],
        ),
        (["production", "payments", "a=1", "--message", "m"], ["give --commit too"]),
        (["production-eu", "payments", "db.host.x=1"], ["db.host is the scalar payments-db"]),
        (["production", "payments", "--unset", "nothing.here"], ["does not set nothing.here"]),
    ],
)
def test_usage_errors_exit_2_with_one_line(sample: Path, args: list[str], words: list[str]) -> None:
    expect_one_line_exit_2(invoke("set", *args, "--repo", str(sample)), *words)
    assert git(sample, "status", "--porcelain") == ""


def test_an_encrypted_layer_exits_2(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "c",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": "db:\n  pool:\n    max: 20\n",
            "environments/production/payments.yaml": (
                "db:\n  password: ENC[AES256_GCM,data:x,type:str]\nsops:\n  version: 3.9.0\n"
            ),
        },
    )
    result = invoke("set", "production", "payments", "db.password=x", "--repo", str(repo))
    expect_one_line_exit_2(result, "environments/production/payments.yaml", "encrypted with SOPS")


def test_commit_records_only_the_changed_files_with_the_default_message(sample: Path) -> None:
    (sample / "NOTES.md").write_text("unrelated, staged\n")
    git(sample, "add", "NOTES.md")
    result = invoke(
        "set", "production-eu", "payments", "db.pool.max=60", "features.new_checkout=true",
        "--unset", "upstreams.fraud", "--repo", str(sample), "--commit",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sha = git(sample, "rev-parse", "--short", "HEAD")
    assert result.stdout.splitlines()[-1] == f"committed {sha}"
    assert git(sample, "log", "-1", "--format=%an <%ae>%n%s") == (
        "Ada Operator <ada@example.com>\n"
        "set production-eu/payments db.pool.max=60, features.new_checkout=true; "
        "unset upstreams.fraud"
    )
    assert git(sample, "show", "--name-only", "--format=", "HEAD") == EU_PAYMENTS
    assert git(sample, "status", "--porcelain") == "A  NOTES.md"


def test_commit_with_a_message_creates_a_missing_layer(sample: Path) -> None:
    result = invoke(
        "set", "staging", "search", "cluster.replicas=2", "--repo", str(sample),
        "--commit", "--message", "Faster refresh on staging",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "created environments/staging/search.yaml" in result.stdout
    assert git(sample, "log", "-1", "--format=%s") == "Faster refresh on staging"
    assert (sample / "environments/staging/search.yaml").read_text() == (
        "cluster:\n  replicas: 2\n"
    )


def test_a_change_that_changes_nothing_writes_nothing(sample: Path) -> None:
    result = invoke("set", "production-eu", "payments", "db.pool.max=30", "--repo", str(sample))
    assert result.exit_code == 0, result.output
    assert result.stdout == "no change: the layer files already say that\n"
    assert git(sample, "status", "--porcelain") == ""


def test_the_docs_show_what_set_prints(sample: Path) -> None:
    doc = (SAMPLE.parent / "docs" / "changes.md").read_text()
    shown = doc.split("$ gitconf set production-eu payments db.pool.max=60\n", 1)[1]
    shown = shown.split("\n\n", 1)[0] + "\n"
    result = invoke("set", "production-eu", "payments", "db.pool.max=60", "--repo", str(sample))
    assert result.stdout == shown
    diff = git(sample, "diff", "-U0", "--no-color")
    assert diff.split("\n", 2)[2] == doc.split("$ git diff -U0\n", 1)[1].split("\n```", 1)[0]
