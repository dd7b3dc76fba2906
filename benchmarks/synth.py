"""A deterministic synthetic config repository for gitconf's benchmarks.

    python benchmarks/synth.py --services 1000 --environments 5 --seed 1 --out /tmp/synth

makes a Git repository (gitconf.testing.make_repo) with:
- gitconf.yaml declaring the environments (dev, staging, production, production-eu extends
  production, perf, then env-6, env-7, ... for more than five);
- schemas/_common/defs.json (shared $defs) and schemas/svc-NNNN.schema.json per service, each
  a 2020-12 schema that `$ref`s `_common/defs.json#/$defs/...`;
- base/_all.yaml, base/svc-NNNN.yaml (20-60 lines: nested maps, lists, strings, ints, bools);
- environments/<env>/_all.yaml, and for about half the services an overlay
  environments/<env>/svc-NNNN.yaml in every environment.

1,000 services x 5 environments (seed 1) is 3,467 YAML files (gitconf.yaml, 1,001 base files,
5 environment defaults, 492 services x 5 overlays) plus 1,001 schemas: 4,468 files, 4.3 MB
(2.2 MB of YAML). The same arguments always give the same files. `change_one()` makes the
one-file commits of the incremental and push benchmarks.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from gitconf.testing import commit_all, make_repo

__all__ = [
    "Change",
    "build_files",
    "change_one",
    "clone",
    "generate",
    "overlay_targets",
    "service_names",
]

ENVIRONMENTS = ["dev", "staging", "production", "production-eu", "perf"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]
LOG_LEVELS = ["debug", "info", "warning", "error"]
FEATURES = [
    "new_checkout_flow",
    "fraud_scoring_v2",
    "semantic_search",
    "verbose_request_logging",
    "async_exports",
    "dark_launch_api_v3",
]
WORDS = [
    "ledger", "billing", "orders", "catalog", "search", "inventory", "shipping", "tax",
    "identity", "profile", "reviews", "pricing", "reports", "media", "notify", "audit",
]  # fmt: skip
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "nb-NO", "ja-JP"]
COUNTRIES = ["US", "GB", "DE", "FR", "NO", "JP"]  # NO stays a string in YAML 1.2
EXPORT_FORMATS = ["csv", "json", "parquet"]
# Settings a service's `app:` section may hold: name -> kind.
APP_KEYS: dict[str, str] = {
    "batch_size": "int",
    "worker_count": "int",
    "page_size": "int",
    "retry_limit": "int",
    "cache_ttl_seconds": "int",
    "max_upload_mb": "int",
    "default_locale": "locale",
    "home_country": "country",
    "launch_date": "date",
    "export_format": "export",
    "sender_address": "email",
    "timezone": "tz",
    "enable_audit": "bool",
    "strict_mode": "bool",
    "dry_run": "bool",
    "allowed_regions": "regions",
    "admin_groups": "groups",
    "tags": "tags",
}
_SCHEMA_OF_KIND: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0, "maximum": 100000},
    "locale": {"type": "string", "pattern": "^[a-z]{2}-[A-Z]{2}$"},
    "country": {"type": "string", "minLength": 2, "maxLength": 2},
    "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    "export": {"enum": EXPORT_FORMATS},
    "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
    "tz": {"type": "string", "minLength": 1},
    "bool": {"type": "boolean"},
    "regions": {"$ref": "_common/defs.json#/$defs/regions"},
    "groups": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9-]+$"}},
}
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def environment_names(count: int) -> list[str]:
    """The environments of a repository with count of them."""
    return ENVIRONMENTS[:count] + [f"env-{i}" for i in range(len(ENVIRONMENTS) + 1, count + 1)]


def service_names(count: int) -> list[str]:
    """svc-0001 ... svc-NNNN."""
    width = max(4, len(str(count)))
    return [f"svc-{i:0{width}d}" for i in range(1, count + 1)]


def _defs() -> dict[str, Any]:
    ref = "#/$defs/"
    return {
        "$schema": SCHEMA_URI,
        "title": "Definitions shared by every service schema",
        "$defs": {
            "log_level": {"enum": LOG_LEVELS},
            "region": {"enum": REGIONS},
            "regions": {"type": "array", "items": {"$ref": ref + "region"}, "uniqueItems": True},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "host": {"type": "string", "pattern": "^[a-z0-9.-]+$"},
            "url": {"type": "string", "pattern": "^(https?|grpc|amqp|redis)://"},
            "duration_ms": {"type": "integer", "minimum": 0, "maximum": 3600000},
            "env_var": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
            "features": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
                "additionalProperties": {"type": "boolean"},
            },
            "observability": {
                "type": "object",
                "additionalProperties": False,
                "required": ["tracing", "metrics"],
                "properties": {
                    "service_namespace": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                    "tracing": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["enabled", "sample_ratio"],
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "otlp_endpoint": {"$ref": ref + "url"},
                            "sample_ratio": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                    "metrics": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["enabled", "port"],
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "port": {"$ref": ref + "port"},
                            "path": {"type": "string", "pattern": "^/"},
                        },
                    },
                },
            },
            "http_server": {
                "type": "object",
                "additionalProperties": False,
                "required": ["port"],
                "properties": {
                    "port": {"$ref": ref + "port"},
                    "request_timeout_ms": {"$ref": ref + "duration_ms"},
                    "max_body_bytes": {"type": "integer", "minimum": 1024},
                    "allowed_origins": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": "^https?://[^/\\s]+$"},
                    },
                },
            },
            "http_client": {
                "type": "object",
                "additionalProperties": False,
                "required": ["connect_timeout_ms", "read_timeout_ms"],
                "properties": {
                    "connect_timeout_ms": {"$ref": ref + "duration_ms"},
                    "read_timeout_ms": {"$ref": ref + "duration_ms"},
                    "retries": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                            "backoff_initial_ms": {"$ref": ref + "duration_ms"},
                            "backoff_max_ms": {"$ref": ref + "duration_ms"},
                        },
                    },
                },
            },
            "database": {
                "type": "object",
                "additionalProperties": False,
                "required": ["host", "port", "name", "user", "password_env", "pool"],
                "properties": {
                    "driver": {"enum": ["postgresql", "mysql"]},
                    "host": {"$ref": ref + "host"},
                    "port": {"$ref": ref + "port"},
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "user": {"type": "string", "minLength": 1},
                    "password_env": {"$ref": ref + "env_var"},
                    "ssl_mode": {"enum": ["disable", "require", "verify-full"]},
                    "pool": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["min", "max"],
                        "properties": {
                            "min": {"type": "integer", "minimum": 0, "maximum": 500},
                            "max": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                    },
                },
            },
            "cache": {
                "type": "object",
                "additionalProperties": False,
                "required": ["url"],
                "properties": {
                    "url": {"$ref": ref + "url"},
                    "ttl_seconds": {"type": "integer", "minimum": 0},
                    "max_entries": {"type": "integer", "minimum": 1},
                },
            },
            "queue": {
                "type": "object",
                "additionalProperties": False,
                "required": ["url", "topic"],
                "properties": {
                    "url": {"$ref": ref + "url"},
                    "topic": {"type": "string", "pattern": "^[a-z0-9._-]+$"},
                    "prefetch": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "dead_letter": {"type": "boolean"},
                },
            },
            "upstreams": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
                "additionalProperties": {"$ref": ref + "url"},
            },
        },
    }


class _Service(NamedTuple):
    name: str
    has_db: bool
    has_cache: bool
    has_queue: bool
    has_overlays: bool
    app: dict[str, str]  # app key -> kind
    upstreams: list[str]


def _plan(rng: random.Random, name: str) -> _Service:
    keys = rng.sample(sorted(APP_KEYS), rng.randint(4, 12))
    return _Service(
        name=name,
        has_db=rng.random() < 0.6,
        has_cache=rng.random() < 0.5,
        has_queue=rng.random() < 0.4,
        has_overlays=rng.random() < 0.5,
        app={k: APP_KEYS[k] for k in sorted(keys)},
        upstreams=sorted(rng.sample(WORDS, rng.randint(1, 4))),
    )


def _schema(svc: _Service) -> dict[str, Any]:
    defs = "_common/defs.json#/$defs/"
    props: dict[str, Any] = {
        "log_level": {"$ref": defs + "log_level"},
        "region": {"$ref": defs + "region"},
        "replicas": {"$ref": defs + "replicas"},
        "observability": {"$ref": defs + "observability"},
        "features": {"$ref": defs + "features"},
        "http": {"$ref": defs + "http_server"},
        "http_client": {"$ref": defs + "http_client"},
        "upstreams": {"$ref": defs + "upstreams"},
        "app": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: _SCHEMA_OF_KIND[kind] for k, kind in svc.app.items()},
        },
    }
    required = ["log_level", "region", "replicas", "observability", "http", "upstreams"]
    for part, present in (("db", svc.has_db), ("cache", svc.has_cache), ("queue", svc.has_queue)):
        if present:
            props[part] = {"$ref": defs + {"db": "database"}.get(part, part)}
            required.append(part)
    return {
        "$schema": SCHEMA_URI,
        "title": svc.name,
        "description": f"Merged configuration of {svc.name}.",
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


def _scalar(rng: random.Random, kind: str) -> str:
    """A YAML value of an app setting, as written in the file."""
    if kind == "int":
        return str(rng.choice([1, 5, 10, 25, 50, 100, 250, 500, 1000, 3600]))
    if kind == "locale":
        return rng.choice(LOCALES)
    if kind == "country":
        return rng.choice(COUNTRIES)
    if kind == "date":
        return f"20{rng.randint(20, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "export":
        return rng.choice(EXPORT_FORMATS)
    if kind == "email":
        return f"no-reply+{rng.choice(WORDS)}@example.com"
    if kind == "tz":
        return rng.choice(["UTC", "Europe/Oslo", "America/New_York", "Asia/Tokyo"])
    if kind == "bool":
        return rng.choice(["true", "false"])
    if kind == "regions":
        return "[" + ", ".join(sorted(rng.sample(REGIONS, rng.randint(1, 3)))) + "]"
    if kind == "groups":
        return "[" + ", ".join(f'"{w}-admins"' for w in sorted(rng.sample(WORDS, 2))) + "]"
    if kind == "tags":
        return "[" + ", ".join(sorted(rng.sample(WORDS, rng.randint(1, 3)))) + "]"
    raise ValueError(kind)


def _base_file(rng: random.Random, svc: _Service, index: int) -> str:
    short = svc.name.replace("-", "_")
    word = WORDS[index % len(WORDS)]
    lines = [
        f"# {svc.name}: the {word} service ({len(svc.app)} app settings).",
        "# Defaults for every environment; environments/<env>/ overrides them.",
        f"replicas: {rng.randint(2, 6)}",
        "",
        "http:",
        f"  port: {8000 + index % 1000}",
        f"  request_timeout_ms: {rng.choice([2000, 5000, 10000, 30000])}",
        f"  max_body_bytes: {rng.choice([65536, 1048576, 10485760])}",
        "  allowed_origins:",
    ]
    lines += [
        f"    - https://{w}.example.com" for w in sorted(rng.sample(WORDS, rng.randint(1, 3)))
    ]
    lines += ["", "http_client:", f"  read_timeout_ms: {rng.choice([2000, 5000, 8000])}"]
    if rng.random() < 0.5:
        lines += ["  retries:", f"    max_attempts: {rng.randint(1, 5)}"]
    if svc.has_db:
        lines += [
            "",
            "db:",
            "  driver: postgresql",
            f"  host: {svc.name}-db.internal",
            "  port: 5432",
            f"  name: {short}",
            f"  user: {short}_app",
            f"  password_env: {short.upper()}_DB_PASSWORD",
            "  ssl_mode: require",
            "  pool:",
            f"    min: {rng.randint(1, 4)}",
            f"    max: {rng.choice([10, 20, 30, 50])}",
        ]
    if svc.has_cache:
        lines += [
            "",
            "cache:",
            f"  url: redis://cache-{index % 7}.internal:6379/{index % 16}",
            f"  ttl_seconds: {rng.choice([30, 60, 300, 3600])}",
        ]
    if svc.has_queue:
        lines += [
            "",
            "queue:",
            "  url: amqp://mq.internal:5672",
            f"  topic: {word}.{svc.name}.events",
            f"  prefetch: {rng.choice([10, 50, 100])}",
            f"  dead_letter: {rng.choice(['true', 'false'])}",
        ]
    lines += ["", "upstreams:"]
    lines += [f"  {w}: http://{w}.internal:8080" for w in svc.upstreams]
    lines += ["", "app:"]
    lines += [f"  {k}: {_scalar(rng, kind)}" for k, kind in svc.app.items()]
    if rng.random() < 0.5:
        lines += ["", "features:", f"  {rng.choice(FEATURES)}: true"]
    return "\n".join(lines) + "\n"


def _overlay_file(rng: random.Random, svc: _Service, env: str, level: str) -> str:
    lines = [
        f"# {svc.name} in {env}: only what differs from base/{svc.name}.yaml",
        "# and environments/" + env + "/_all.yaml.",
        f"replicas: {rng.randint(1, 12)}",
    ]
    if rng.random() < 0.3:
        lines.append(f"log_level: {level}")
    lines += [
        "",
        "http_client:",
        f"  connect_timeout_ms: {rng.choice([250, 500, 1000])}",
        f"  read_timeout_ms: {rng.choice([3000, 5000, 10000])}",
    ]
    if svc.has_db:
        lines += [
            "",
            "db:",
            f"  host: {svc.name}-db.{env}.internal",
            "  pool:",
            f"    max: {rng.choice([20, 40, 80, 120])}",
        ]
    if svc.has_cache:
        lines += ["", "cache:", f"  max_entries: {rng.choice([1000, 10000, 100000])}"]
    if rng.random() < 0.15:
        # A whole map swapped rather than merged key by key.
        lines += ["", "upstreams: !replace"]
        lines += [f"  {w}: https://{w}.{env}.example.com" for w in svc.upstreams]
    else:
        lines += ["", "upstreams:"]
        lines += [f"  {svc.upstreams[0]}: http://{svc.upstreams[0]}.{env}.internal:8080"]
    lines += ["", "app:"]
    overridden = rng.sample(sorted(svc.app), min(len(svc.app), rng.randint(2, 5)))
    lines += [f"  {k}: {_scalar(rng, svc.app[k])}" for k in sorted(overridden)]
    lines += ["", "features:"]
    lines += [f"  {f}: {rng.choice(['true', 'false'])}" for f in sorted(rng.sample(FEATURES, 2))]
    return "\n".join(lines) + "\n"


def _manifest(envs: list[str]) -> str:
    lines = [
        "# Synthetic repository for gitconf's benchmarks (benchmarks/synth.py).",
        "version: 1",
        "environments:",
    ]
    for env in envs:
        lines.append(
            f"  {env}: {{extends: production}}" if env == "production-eu" else f"  {env}: {{}}"
        )
    lines += ["validation:", "  require_schema: true"]
    return "\n".join(lines) + "\n"


_BASE_ALL = """\
# Defaults shared by every service in every environment: the lowest layer.
log_level: info
region: us-east-1
replicas: 2

observability:
  service_namespace: shop
  tracing:
    enabled: true
    otlp_endpoint: http://otel-collector.observability.internal:4317
    sample_ratio: 0.1
  metrics:
    enabled: true
    port: 9464
    path: /metrics

http:
  port: 8080

http_client:
  connect_timeout_ms: 1000
  read_timeout_ms: 5000
  retries:
    max_attempts: 3
    backoff_initial_ms: 100
    backoff_max_ms: 2000

features:
  new_checkout_flow: false
  fraud_scoring_v2: false
  semantic_search: false
  verbose_request_logging: false
"""


def _env_all(env: str, index: int) -> str:
    level = "debug" if env == "dev" else "info" if env.startswith("production") else "warning"
    region = "eu-west-1" if env.endswith("-eu") else REGIONS[index % len(REGIONS)]
    ratio = {"dev": 1.0, "staging": 0.5}.get(env, 0.05)
    return (
        f"# Every service in {env}.\n"
        f"log_level: {level}\n"
        f"region: {region}\n"
        "observability:\n"
        "  tracing:\n"
        f"    sample_ratio: {ratio}\n"
        "features:\n"
        f"  verbose_request_logging: {'true' if env == 'dev' else 'false'}\n"
    )


def build_files(services: int, environments: int, seed: int) -> dict[str, str]:
    """Every file of the synthetic repository, by path."""
    rng = random.Random(seed)
    envs = environment_names(environments)
    files: dict[str, str] = {
        "gitconf.yaml": _manifest(envs),
        "schemas/_common/defs.json": json.dumps(_defs(), indent=2) + "\n",
        "base/_all.yaml": _BASE_ALL,
    }
    for index, env in enumerate(envs):
        files[f"environments/{env}/_all.yaml"] = _env_all(env, index)
    for index, name in enumerate(service_names(services)):
        svc = _plan(rng, name)
        files[f"schemas/{name}.schema.json"] = json.dumps(_schema(svc), indent=2) + "\n"
        files[f"base/{name}.yaml"] = _base_file(rng, svc, index)
        if svc.has_overlays:
            for env in envs:
                level = rng.choice(LOG_LEVELS)
                files[f"environments/{env}/{name}.yaml"] = _overlay_file(rng, svc, env, level)
    return files


def generate(out: Path, services: int, environments: int, seed: int = 1) -> Path:
    """Write the synthetic repository to out (which must not exist) and commit it."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; choose another --out")
    files: dict[str, str | bytes | None] = dict(build_files(services, environments, seed))
    make_repo(out, files)
    return out


def overlay_targets(repo: Path) -> list[str]:
    """The service overlay files of a repository (environments/<env>/svc-*.yaml), sorted."""
    return sorted(p.relative_to(repo).as_posix() for p in repo.glob("environments/*/svc-*.yaml"))


class Change(NamedTuple):
    """A one-file commit: which config it changes and what it sets."""

    sha: str
    path: str
    environment: str
    service: str
    replicas: int


_REPLICAS = re.compile(r"^replicas: (\d+)$", re.MULTILINE)


def change_one(repo: Path, round_: int, targets: list[str] | None = None) -> Change:
    """Commit a change of `replicas:` in one service overlay (chosen by round_) and return it."""
    targets = targets if targets is not None else overlay_targets(repo)
    if not targets:
        raise SystemExit(f"{repo} has no service overlays to change")
    # Stride through the overlays so consecutive rounds touch different files and environments.
    path = targets[(round_ * 7919) % len(targets)]
    text = (repo / path).read_text()
    match = _REPLICAS.search(text)
    assert match is not None, path
    replicas = int(match.group(1)) % 100 + 1  # always a new value, always valid (1..100)
    new_text = _REPLICAS.sub(f"replicas: {replicas}", text, count=1)
    sha = commit_all(repo, f"bench: {path} replicas {replicas}", {path: new_text})
    _, env, name = path.split("/")
    return Change(sha, path, env, name.removesuffix(".yaml"), replicas)


def clone(source: Path, target: Path) -> Path:
    """A non-bare clone of source at target (removed first if it exists)."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        ["git", "clone", "-q", str(source), str(target)], check=True, capture_output=True
    )
    return target


def _count_lines(out: Path) -> tuple[int, int, int]:
    counts = [
        len(p.read_text().splitlines())
        for top in ("base", "environments")
        for p in (out / top).rglob("*.yaml")
    ]
    return len(counts), min(counts), max(counts)


def main(argv: list[str] | None = None) -> None:
    """Generate a synthetic repository and, with --validate, check it with gitconf."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--validate", action="store_true", help="run `gitconf validate` after")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generate(args.out, args.services, args.environments, args.seed)
    files, shortest, longest = _count_lines(args.out)
    print(
        f"{args.out}: {args.services} services x {args.environments} environments, "
        f"{files} YAML files of {shortest}-{longest} lines, "
        f"{len(list((args.out / 'schemas').rglob('*.json')))} schemas "
        f"({time.perf_counter() - started:.1f}s)"
    )
    if args.validate:
        command = [sys.executable, "-m", "gitconf", "validate", "--repo", str(args.out)]
        sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    main()
