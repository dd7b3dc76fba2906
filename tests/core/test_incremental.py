"""An incremental compile (with a CompileCache) gives exactly what a cold compile gives."""

from __future__ import annotations

from typing import Any

import pytest

from gitconf.core import compile as compile_module
from gitconf.core.compile import CompileCache, CompileResult, compile_fileset
from gitconf.core.explain import explain_config
from gitconf.core.model import FileSet

MANIFEST = (
    "version: 1\nenvironments:\n  staging: {}\n  production: {}\n  eu: {extends: production}\n"
)
COMMON = '{"$defs": {"port": {"type": "integer", "maximum": 65535}}}'
SCHEMA = (
    '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",'
    ' "properties": {"port": {"$ref": "_common/defs.json#/$defs/port"}}}'
)
STRICT = SCHEMA.replace('"type": "object",', '"type": "object", "required": ["region", "x"],')
START = {
    "gitconf.yaml": MANIFEST,
    "schemas/_common/defs.json": COMMON,
    "schemas/api.schema.json": SCHEMA,
    "schemas/web.schema.json": SCHEMA,
    "base/_all.yaml": "region: us\n",
    "base/api.yaml": "port: 80\nnested: {a: 1, b: [1, 2]}\n",
    "base/web.yaml": "port: 8080\n",
    "environments/production/api.yaml": "port: 443\n",
    "environments/eu/_all.yaml": "region: eu\n",
}

# Each step: files to write (None deletes).
STEPS: list[tuple[str, dict[str, str | None]]] = [
    ("change one value", {"environments/production/api.yaml": "port: 8443\n"}),
    ("add a service", {"base/jobs.yaml": "port: 9000\n", "schemas/jobs.schema.json": SCHEMA}),
    ("add an overlay", {"environments/staging/jobs.yaml": "port: 9001\nextra: !delete\n"}),
    ("delete a file", {"environments/production/api.yaml": None}),
    (
        "rename into folder form",
        {"base/api.yaml": None, "base/api/10-main.yaml": "port: 80\nnested: {a: 1}\n"},
    ),
    (
        "schema change breaks a config",
        {"schemas/_common/defs.json": '{"$defs": {"port": {"type": "integer", "maximum": 100}}}'},
    ),
    ("schema fixed", {"schemas/_common/defs.json": COMMON}),
    ("one service's schema changes", {"schemas/web.schema.json": STRICT}),
    ("a schema the meta-schema rejects", {"schemas/api.schema.json": '{"type": 12}'}),
    ("a $ref that does not resolve", {"schemas/api.schema.json": SCHEMA.replace("defs", "nope")}),
    ("schemas fixed", {"schemas/api.schema.json": SCHEMA, "schemas/web.schema.json": SCHEMA}),
    ("manifest adds an environment", {"gitconf.yaml": MANIFEST + "  dev: {}\n"}),
    (
        "extends changes",
        {"gitconf.yaml": MANIFEST.replace("extends: production", "extends: staging")},
    ),
    ("invalid YAML", {"base/web.yaml": "port: [\n"}),
    ("fixed again", {"base/web.yaml": "port: 8081\n"}),
    ("same content moved", {"base/web.yaml": None, "base/web.yml": "port: 8081\n"}),
    ("a conflict", {"environments/eu/_all.yaml": "region: {name: eu}\n"}),
    ("service removed", {"base/jobs.yaml": None, "environments/staging/jobs.yaml": None}),
    # Values alone, where only the pairs of the changed blobs are merged again.
    ("one value, layout kept", {"environments/eu/_all.yaml": "region: eu-west\n"}),
    ("the value back", {"environments/eu/_all.yaml": "region: eu\n"}),
    ("a value and a broken manifest", {"gitconf.yaml": "version: [\n", "base/web.yml": "x: 1\n"}),
    ("manifest back, another value", {"gitconf.yaml": MANIFEST, "base/web.yml": "port: 8083\n"}),
    (
        "a setting, not the chains",
        {"gitconf.yaml": MANIFEST + "validation: {require_schema: false}\n"},
    ),
    ("then a value", {"base/_all.yaml": "region: us-east\n"}),
]


def snapshot(result: CompileResult) -> dict[str, Any]:
    if result.revision is None:
        return {"problems": [p.render() for p in result.problems]}
    revision = result.revision
    return {
        "environments": revision.environments,
        "services": revision.services,
        "configs": {
            key: (config.value, explain_config(config), config.layers)
            for key, config in revision.configs.items()
        },
    }


@pytest.mark.parametrize("with_oids", [False, True], ids=["content-hash", "blob-ids"])
def test_incremental_equals_cold_at_every_step(with_oids: bool) -> None:
    files: dict[str, str] = dict(START)
    cache = CompileCache()

    def fileset() -> FileSet:
        data = {p: c.encode() for p, c in files.items()}
        oids = {p: f"oid-{hash(c)}" for p, c in files.items()} if with_oids else {}
        return FileSet(data, oids)

    assert snapshot(compile_fileset(fileset(), cache)) == snapshot(compile_fileset(fileset()))
    for name, change in STEPS:
        for path, content in change.items():
            if content is None:
                files.pop(path, None)
            else:
                files[path] = content
        incremental = snapshot(compile_fileset(fileset(), cache))
        cold = snapshot(compile_fileset(fileset()))
        assert incremental == cold, name


class Merges:
    """The (environment, service) pairs compiles merged; the merge numbered fail_at raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_at: int | None = None


@pytest.fixture
def merges(monkeypatch: pytest.MonkeyPatch) -> Merges:
    spy = Merges()
    real = compile_module._merge_one

    def merge_one(env: str, service: str, *args: Any, **kwargs: Any) -> Any:
        spy.calls.append((env, service))
        if len(spy.calls) == spy.fail_at:
            raise RuntimeError("a bug")
        return real(env, service, *args, **kwargs)

    monkeypatch.setattr(compile_module, "_merge_one", merge_one)
    return spy


def test_one_changed_file_remerges_only_its_configs(
    monkeypatch: pytest.MonkeyPatch, merges: Merges
) -> None:
    files = {p: c.encode() for p, c in START.items()}
    cache = CompileCache()
    compile_fileset(FileSet(files), cache)
    merges.calls.clear()
    parsed: list[str] = []
    real_read = compile_module._read

    def read_spy(path: str, data: bytes, reading: Any) -> Any:
        parsed.append(path)
        return real_read(path, data, reading)

    monkeypatch.setattr(compile_module, "_read", read_spy)
    files["environments/production/api.yaml"] = b"port: 444\n"
    result = compile_fileset(FileSet(files), cache)
    assert result.revision is not None
    assert sorted(merges.calls) == [("eu", "api"), ("production", "api")]
    assert parsed == ["environments/production/api.yaml"]


def test_one_changed_schema_revalidates_only_its_service(merges: Merges) -> None:
    files = {p: c.encode() for p, c in START.items()}
    cache = CompileCache()
    compile_fileset(FileSet(files), cache)
    merges.calls.clear()
    files["schemas/web.schema.json"] = STRICT.encode()
    result = compile_fileset(FileSet(files), cache)
    assert {p.message for p in result.problems} == {"'x' is a required property"}
    assert sorted(merges.calls) == [("eu", "web"), ("production", "web"), ("staging", "web")]
    merges.calls.clear()
    files["schemas/_common/defs.json"] = COMMON.replace("65535", "1000").encode()
    compile_fileset(FileSet(files), cache)
    assert {service for _, service in merges.calls} == {"api", "web"}


def test_a_compile_that_raises_midway_leaves_the_cache_sound(merges: Merges) -> None:
    # gitconf's poller drops the cache after an exception; a cache kept anyway must still
    # give what a cold compile gives, never a pair merged from the failed commit's files.
    def files(region: str) -> FileSet:
        data = {**START, "base/_all.yaml": f"region: {region}\n"}
        return FileSet({p: c.encode() for p, c in data.items()})

    cache = CompileCache()
    compile_fileset(files("us"), cache)
    merges.calls.clear()
    merges.fail_at = 3
    with pytest.raises(RuntimeError):
        compile_fileset(files("ap"), cache)
    merges.fail_at = None
    assert len(merges.calls) == 3  # two pairs were merged from region ap before it failed
    assert snapshot(compile_fileset(files("us"), cache)) == snapshot(compile_fileset(files("us")))
