"""Which layer a key lands in (DESIGN 8), and a whole change compiled with its effective diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitconf.changes.apply import Edit, apply_change, default_message
from gitconf.changes.errors import BaseInvalid, EncryptedLayer, NotALayer, UnknownConfig
from gitconf.changes.layers import choose_layer
from gitconf.core.compile import compile_fileset
from gitconf.core.diff import to_doc
from gitconf.core.layers import discover
from gitconf.core.model import FileSet
from gitconf.git.folder import fileset_from_dir
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"

FILES = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "schemas/search.schema.json": (
        '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",'
        ' "properties": {"shards": {"type": "integer"}}}'
    ),
    "base/_all.yaml": "region: us\nlog_level: info\n",
    "base/payments.yaml": "db:\n  host: db.internal\n  pool:\n    max: 20\n",
    "base/search/10-core.yaml": "shards: 2\n",
    "base/search/20-extra.yaml": "replicas: 1\n",
    "environments/production/payments.yaml": "db:\n  pool:\n    max: 50\n",
    "environments/production-eu/_all.yaml": "region: eu\n",
    "environments/production-eu/search/10-core.yaml": "shards: 4\n",
    "environments/production-eu/search/20-more.yaml": "replicas: 2\n",
}


def fileset(files: dict[str, str]) -> FileSet:
    return FileSet({p: c.encode() for p, c in files.items()})


def where(env: str, service: str, key: str, layer: str | None = None) -> str:
    files = fileset(FILES)
    revision = compile_fileset(files).revision
    assert revision is not None
    layout, _ = discover(list(files.files))
    from gitconf.changes.edit import parse_key

    return choose_layer(revision, layout, env, service, parse_key(key), layer)


@pytest.mark.parametrize(
    ("env", "service", "key", "expected"),
    [
        # Set in the environment's own _all.yaml: it stays there.
        ("production-eu", "payments", "region", "environments/production-eu/_all.yaml"),
        # Set in the parent environment's file: the environment's own file (created).
        ("production-eu", "payments", "db.pool.max", "environments/production-eu/payments.yaml"),
        # Set in the environment's own file.
        ("production", "payments", "db.pool.max", "environments/production/payments.yaml"),
        # Set only in base: the environment's own file.
        ("production", "payments", "db.host", "environments/production/payments.yaml"),
        # A new key.
        ("staging", "payments", "features.x", "environments/staging/payments.yaml"),
        # A folder-form service: the file that sets it, or the folder's last file.
        ("production-eu", "search", "shards", "environments/production-eu/search/10-core.yaml"),
        ("production-eu", "search", "new_key", "environments/production-eu/search/20-more.yaml"),
        # A folder in base only: the environment gets its own single file.
        ("production", "search", "shards", "environments/production/search.yaml"),
    ],
)
def test_the_layer_an_edit_lands_in(env: str, service: str, key: str, expected: str) -> None:
    assert where(env, service, key) == expected


def test_a_layer_given_must_be_one_of_the_config() -> None:
    assert where("production-eu", "payments", "db.x", "base/payments.yaml") == "base/payments.yaml"
    assert (
        where("production-eu", "payments", "x", "environments/production-eu/payments.yaml")
        == "environments/production-eu/payments.yaml"
    )
    with pytest.raises(NotALayer) as info:
        where("staging", "payments", "x", "environments/production/payments.yaml")
    assert info.value.hint == (
        "its layers, lowest precedence first: base/_all.yaml, base/payments.yaml, "
        "environments/staging/payments.yaml"
    )


def test_a_change_is_compiled_and_diffed() -> None:
    files = fileset(FILES)
    result = apply_change(
        files,
        [
            Edit("production-eu", "payments", {"db.pool.max": 60, "region": "eu-west"}),
            Edit("production-eu", "search", {"shards": 8}),
        ],
    )
    assert result.problems == []
    assert [e.path for e in result.edited] == [
        "environments/production-eu/_all.yaml",
        "environments/production-eu/payments.yaml",
        "environments/production-eu/search/10-core.yaml",
    ]
    assert result.edited[1].before is None
    assert result.files.files["environments/production-eu/payments.yaml"] == (
        b"db:\n  pool:\n    max: 60\n"
    )
    doc = to_doc(result.diff)
    assert {(c["environment"], c["service"]) for c in doc} == {
        ("production-eu", "payments"),
        ("production-eu", "search"),
    }
    payments = next(c for c in doc if c["service"] == "payments")
    assert payments["changes"] == [
        {"key": "db.pool.max", "status": "changed", "old": 50, "new": 60},
        {"key": "region", "status": "changed", "old": "eu", "new": "eu-west"},
    ]
    assert default_message(
        [Edit("production-eu", "payments", {"db.pool.max": 60}, ["fraud.url"])]
    ) == ("set production-eu/payments db.pool.max=60; unset fraud.url")


def test_a_value_the_schema_refuses_is_a_problem_at_the_would_be_commit() -> None:
    result = apply_change(fileset(FILES), [Edit("production-eu", "search", {"shards": "many"})])
    assert result.revision is None
    assert [p.render() for p in result.problems] == [
        "environments/production-eu/search/10-core.yaml:1:9: shards: 'many' is not of type "
        "'integer' (schema schemas/search.schema.json, in production-eu/search)"
    ]


def test_unknown_environment_or_service_lists_the_known_ones() -> None:
    with pytest.raises(UnknownConfig) as info:
        apply_change(fileset(FILES), [Edit("prod", "payments", {"a": 1})])
    assert info.value.hint == "known: staging, production, production-eu"
    with pytest.raises(UnknownConfig) as info:
        apply_change(fileset(FILES), [Edit("production", "pay", {"a": 1})])
    assert info.value.hint == "known: payments, search"


def test_an_encrypted_layer_is_refused() -> None:
    files = dict(FILES)
    files["environments/production/payments.yaml"] = (
        "db:\n  password: ENC[AES256_GCM,data:x,type:str]\nsops:\n  version: 3.9.0\n"
    )
    # The repository compiles only where SOPS is read; this check comes before that.
    with pytest.raises(EncryptedLayer):
        apply_change(fileset(files), [Edit("production", "payments", {"db.password": "x"})])


def test_a_repository_invalid_before_the_change() -> None:
    files = dict(FILES)
    files["base/payments.yaml"] = "db: [\n"
    with pytest.raises(BaseInvalid) as info:
        apply_change(fileset(files), [Edit("production", "payments", {"a": 1})])
    assert info.value.problems


def test_the_sample_repository_one_line_change() -> None:
    files = fileset_from_dir(SAMPLE)
    result = apply_change(files, [Edit("production-eu", "payments", {"db.pool.max": 60})])
    assert result.problems == []
    (edited,) = result.edited
    assert edited.path == "environments/production-eu/payments.yaml"
    assert edited.before is not None
    before, after = edited.before.decode().splitlines(), edited.after.decode().splitlines()
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("    max: 30", "    max: 60")
    ]
