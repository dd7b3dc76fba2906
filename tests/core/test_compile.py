"""compile_fileset's limits: what one commit may hold and expand to (gitconf.yaml `validation:`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitconf.core.compile import CompileCache, CompileResult, compile_fileset
from gitconf.core.model import FileSet, Limits, MiB, to_plain
from gitconf.errors import Problem, Source
from gitconf.testing import OPEN_SCHEMA

MANIFEST = """\
version: 1
environments:
  staging: {}
  production: {}
  production-eu: {extends: production}
"""


def manifest(**validation: int) -> str:
    """MANIFEST with these validation settings."""
    lines = "".join(f"  {key}: {value}\n" for key, value in validation.items())
    return MANIFEST + ("validation:\n" + lines if lines else "")


def compile_files(
    files: dict[str, str | bytes], cache: CompileCache | None = None
) -> CompileResult:
    data = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
    return compile_fileset(FileSet(data), cache)


def only(result: CompileResult) -> Problem:
    assert result.revision is None
    assert len(result.problems) == 1, [p.render() for p in result.problems]
    return result.problems[0]


BASE = {
    "gitconf.yaml": MANIFEST,
    "schemas/p.schema.json": OPEN_SCHEMA,
    "base/p.yaml": "port: 1\n",
}


def test_the_defaults_are_far_above_a_real_repository() -> None:
    limits = Limits()

    assert (limits.max_file_size, limits.schema_size) == (MiB, MiB)
    assert (limits.max_total_size, limits.max_total_config_size) == (256 * MiB, 256 * MiB)
    assert limits.max_config_size == 16 * MiB


# -- files under schemas/ ---------------------------------------------------------------------
def big_schema(size: int) -> str:
    head = '{"type": "object", "description": "'
    return head + "x" * (size - len(head) - 2) + '"}'


def test_a_schema_file_over_the_limit_names_its_own_setting() -> None:
    files = {**BASE, "gitconf.yaml": manifest(max_schema_size=1000)}
    files["schemas/p.schema.json"] = big_schema(1001)

    problem = only(compile_files(files))

    assert problem.source == Source("schemas/p.schema.json")
    assert problem.message == "the file is 1,001 bytes, over the limit of 1,000"
    assert problem.render() == (
        "schemas/p.schema.json:1:1: the file is 1,001 bytes, over the limit of 1,000 "
        "(split it, or raise validation.max_schema_size in gitconf.yaml)"
    )


def test_the_schema_limit_is_max_file_size_unless_set() -> None:
    files = {**BASE, "schemas/p.schema.json": big_schema(MiB + 1)}
    assert "max_schema_size" in only(compile_files(files)).hint

    files["gitconf.yaml"] = manifest(max_schema_size=2 * MiB)
    assert compile_files(files).problems == []
    files["gitconf.yaml"] = manifest(max_file_size=2 * MiB)
    assert compile_files(files).problems == []


# -- every file together --------------------------------------------------------------------
def test_a_commit_over_the_total_limit_is_refused_before_anything_is_parsed() -> None:
    files = {**BASE, "gitconf.yaml": manifest(max_total_size=2000)}
    files["base/big.yaml"] = "a: [" + "1, " * 400 + "]\n"  # 1,206 bytes
    files["base/broken.yaml"] = "a: : b\n" + "#" * 600 + "\n"  # a syntax error nobody reads

    problem = only(compile_files(files))

    total = sum(len(c.encode()) for c in files.values())
    assert (total, len(files["gitconf.yaml"])) == (2030, 130)
    assert problem.source == Source("base/big.yaml")
    assert problem.message == (
        "the files gitconf reads total 2,030 bytes, over the limit of 2,000; the largest: "
        "base/big.yaml (1,206 bytes), base/broken.yaml (608 bytes), gitconf.yaml (130 bytes)"
    )
    assert problem.hint == (
        "remove or shrink files, or raise validation.max_total_size in gitconf.yaml"
    )


def test_a_manifest_over_the_file_limit_is_not_parsed() -> None:
    files = {**BASE, "gitconf.yaml": MANIFEST + "#" * MiB + "\n"}

    problem = only(compile_files(files))

    assert problem.source == Source("gitconf.yaml")
    assert problem.message.startswith("the manifest is 1,048,")
    assert problem.message.endswith("bytes, over the limit of 1,048,576")


# -- one merged config ----------------------------------------------------------------------
def expanding(key: str, aliases: int, anchor: int = 10_000) -> str:
    """A layer whose key holds `aliases` copies of a string of `anchor` characters."""
    return f'{key}a: &a "{"x" * anchor}"\n{key}: [{", ".join(["*a"] * aliases)}]\n'


LAYERED = {
    "gitconf.yaml": MANIFEST,
    "schemas/p.schema.json": OPEN_SCHEMA,
    "base/_all.yaml": expanding("l1", 400),
    "base/p.yaml": expanding("l2", 400),
    "environments/production/_all.yaml": expanding("l3", 400),
    "environments/production/p.yaml": expanding("l4", 400),
    "environments/production-eu/_all.yaml": expanding("l5", 400),
    "environments/production-eu/p.yaml": expanding("l6", 401),
}


def test_a_config_that_merges_past_16_mib_is_refused_at_its_heaviest_layer() -> None:
    # Each layer is 40 KB of YAML that expands to 4 MB, within the alias budget; four of them
    # (production) stay under 16 MiB, six (production-eu) do not.
    result = compile_files(LAYERED)

    problem = only(result)
    assert problem.source == Source("environments/production-eu/p.yaml")
    assert problem.key_path == ""
    size = int(problem.message.split(" merges to ")[1].split(" bytes")[0].replace(",", ""))
    assert size > 16 * MiB
    assert problem.message == (
        f"production-eu/p merges to {size:,} bytes of JSON, over the limit of 16,777,216; "
        "its layers: base/_all.yaml, base/p.yaml, environments/production/_all.yaml, "
        "environments/production/p.yaml, environments/production-eu/_all.yaml, "
        "environments/production-eu/p.yaml"
    )
    assert problem.hint == (
        "shrink its layers (an alias counts as what it expands to), "
        "or raise validation.max_config_size in gitconf.yaml"
    )


def test_the_config_limit_counts_compact_json() -> None:
    files = {**BASE, "base/p.yaml": 'port: 1\nname: "é"\n'}
    value = {"port": 1, "name": "é"}
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    files["gitconf.yaml"] = manifest(max_config_size=size)
    assert compile_files(files).problems == []
    files["gitconf.yaml"] = manifest(max_config_size=size - 1)
    problems = compile_files(files).problems
    assert {p.message.split(" merges")[0] for p in problems} == {
        "staging/p",
        "production/p",
        "production-eu/p",
    }
    assert all(p.source == Source("base/p.yaml") for p in problems)


def test_raising_the_config_limit_recompiles_cached_configs() -> None:
    files = {**BASE, "gitconf.yaml": manifest(max_config_size=5)}
    cache = CompileCache()
    assert len(compile_files(files, cache).problems) == 3

    files["gitconf.yaml"] = manifest(max_config_size=100)
    incremental = compile_files(files, cache)
    cold = compile_files(files)

    assert incremental.problems == cold.problems == []
    assert incremental.revision is not None and cold.revision is not None
    got = {k: to_plain(c.tree) for k, c in incremental.revision.configs.items()}
    assert got == {k: to_plain(c.tree) for k, c in cold.revision.configs.items()}


# -- every merged config together -------------------------------------------------------------
def test_configs_over_the_total_limit_name_the_largest() -> None:
    files = {
        **BASE,
        "gitconf.yaml": manifest(max_total_config_size=100),
        "schemas/q.schema.json": OPEN_SCHEMA,
        "base/_all.yaml": "shared: " + "s" * 20 + "\n",
        "base/q.yaml": "q: " + "q" * 10 + "\n",
        "environments/production/p.yaml": "port: 2\nname: production\n",
    }

    problem = only(compile_files(files))

    shared = "s" * 20
    p = {"shared": shared, "port": 1}
    p_production = {"shared": shared, "port": 2, "name": "production"}
    q = {"shared": shared, "q": "q" * 10}
    sizes = [len(json.dumps(v, separators=(",", ":"))) for v in (p, p_production, q)]
    assert sizes == [42, 62, 50]
    assert sum(sizes) + sizes[1] + 2 * sizes[2] == 316  # production-eu/p is production's
    # base/_all.yaml, in every config, is the largest file of the largest config.
    assert problem.source == Source("base/_all.yaml")
    assert problem.message == (
        "the merged configs of this commit total 316 bytes of JSON, over the limit of 100; "
        "the largest: production/p (62 bytes), production-eu/p (62 bytes), "
        "production/q (50 bytes)"
    )
    assert "validation.max_total_config_size" in problem.hint


# -- nesting through the whole compile ----------------------------------------------------------
RECURSIVE_SCHEMA = json.dumps(
    {
        "type": "object",
        "additionalProperties": {"$ref": "#/$defs/value"},
        "$defs": {
            "value": {
                "anyOf": [
                    {"type": "integer"},
                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/value"}},
                ]
            }
        },
    }
)


def nested(depth: int, leaf: str = "1") -> str:
    """A layer `depth` levels deep: mappings of `a` down to leaf."""
    return "a: " + "{a: " * (depth - 1) + leaf + "}" * (depth - 1) + "\n"


def test_the_deepest_config_validates_against_a_recursive_schema() -> None:
    files = {**BASE, "schemas/p.schema.json": RECURSIVE_SCHEMA, "base/p.yaml": nested(128)}
    files["environments/production/p.yaml"] = nested(128, "2")

    assert compile_files(files).problems == []
    files["environments/production/p.yaml"] = nested(128, "x")
    problems = compile_files(files).problems
    # anyOf fails at every level: jsonschema reports the outermost one.
    assert {(p.source, p.key_path) for p in problems} == {
        (Source("environments/production/p.yaml", 1, 4), "a")
    }


def test_a_config_too_deep_to_validate_is_a_problem_not_a_recursion_error() -> None:
    # 300 levels passed the parse before and then exhausted Python's stack in jsonschema.
    files = {**BASE, "schemas/p.schema.json": RECURSIVE_SCHEMA, "base/p.yaml": nested(300)}

    problem = only(compile_files(files))

    assert problem.source == Source("base/p.yaml", 1, 4 + 4 * 127)
    assert problem.key_path == ".".join(["a"] * 128)
    assert "more than 128 levels" in problem.message


@pytest.mark.parametrize("depth", [128])
def test_merging_the_deepest_layers_keeps_every_level(depth: int) -> None:
    files = {
        **BASE,
        "base/p.yaml": nested(depth),
        "environments/staging/p.yaml": nested(depth, "2"),
    }

    result = compile_files(files)

    assert result.revision is not None, [p.render() for p in result.problems]
    value = to_plain(result.revision.configs[("staging", "p")].tree)
    for _ in range(depth):
        value = value["a"]
    assert value == 2


def test_every_limit_is_a_manifest_setting_documented_in_the_readme() -> None:
    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas" / "manifest.schema.json").read_text())
    settings = schema["properties"]["validation"]["properties"]
    readme = (root / "README.md").read_text()

    for name in Limits._fields:
        assert name in settings, name
        assert settings[name].get("default", None) == getattr(Limits(), name), name
        assert f"| `{name}` |" in readme, name
