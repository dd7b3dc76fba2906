"""`gitconf render | explain | diff` and `--ref` on real repositories (DESIGN §2, §3)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from gitconf.cli import main
from gitconf.core.model import to_plain
from gitconf.core.parse import parse_yaml
from gitconf.testing import (
    MINIMAL_MANIFEST,
    OPEN_SCHEMA,
    commit_all,
    git,
    make_repo,
    write_files,
)
from tests.conftest import expect_one_line_exit_2

ROOT = Path(__file__).resolve().parents[1]

Files = dict[str, str | bytes | None]

# staging and production, and production-eu extends production (MINIMAL_MANIFEST).
LAYERED: Files = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "schemas/search.schema.json": OPEN_SCHEMA,
    "base/_all.yaml": "log_level: info\nregion: us\ntimeout_ms: 1000\n",
    "base/payments.yaml": (
        "db:\n"
        "  host: db.internal\n"
        "  pool:\n"
        "    max: 20\n"
        "    min: 2\n"
        "servers: [a.internal, b.internal]\n"
        "debug: false\n"
        "tls: true\n"
        "fallback: null\n"
        "greeting: hello world\n"
        'answer: "yes"\n'
    ),
    "base/search.yaml": "shards: 2\n",
    "environments/production/_all.yaml": "log_level: warn\n",
    "environments/production/payments.yaml": "db:\n  pool:\n    max: 50\n",
    "environments/production-eu/_all.yaml": "region: eu\n",
    "environments/production-eu/payments.yaml": "db:\n  host: db.eu.internal\n  pool:\n    max: 30\n",
}

PRODUCTION_EU_PAYMENTS = {
    "log_level": "warn",
    "region": "eu",
    "timeout_ms": 1000,
    "db": {"host": "db.eu.internal", "pool": {"max": 30, "min": 2}},
    "servers": ["a.internal", "b.internal"],
    "debug": False,
    "tls": True,
    "fallback": None,
    "greeting": "hello world",
    "answer": "yes",
}

ALL_PAIRS = [
    (env, service)
    for env in ("staging", "production", "production-eu")
    for service in ("payments", "search")
]


def invoke(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(main, list(args))


def ok(result: Result) -> str:
    """Assert exit 0 and return stdout."""
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    """A committed repo with base, environment overlays and the production-eu chain."""
    return make_repo(tmp_path / "r", LAYERED)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of sample-repo/ as a plain folder."""
    return Path(shutil.copytree(ROOT / "sample-repo", tmp_path / "sample"))


def render(repo: Path, env: str, service: str, *args: str) -> Any:
    """`gitconf render` as JSON, parsed."""
    return json.loads(ok(invoke("render", env, service, "--repo", str(repo), *args)))


# -- render --------------------------------------------------------------------------------------
def test_render_json_is_the_default_and_follows_the_extends_chain(layered: Path) -> None:
    out = ok(invoke("render", "production-eu", "payments", "--repo", str(layered)))

    assert json.loads(out) == PRODUCTION_EU_PAYMENTS
    assert list(json.loads(out)) == list(PRODUCTION_EU_PAYMENTS)  # key order as merged
    assert out.endswith("}\n")


def test_render_each_environment_gets_its_own_layers(layered: Path) -> None:
    staging = render(layered, "staging", "payments")
    production = render(layered, "production", "payments")

    assert (staging["log_level"], staging["region"], staging["db"]["pool"]["max"]) == (
        "info",
        "us",
        20,
    )
    assert (production["log_level"], production["region"], production["db"]["pool"]["max"]) == (
        "warn",
        "us",
        50,
    )
    assert production["db"]["host"] == "db.internal"


def test_render_yaml(layered: Path) -> None:
    out = ok(
        invoke("render", "production-eu", "payments", "--repo", str(layered), "--format", "yaml")
    )

    assert yaml.safe_load(out) == PRODUCTION_EU_PAYMENTS
    assert out.startswith("log_level: warn\n")  # block style, merge order, no document marker


def test_render_env(layered: Path) -> None:
    out = ok(
        invoke("render", "production-eu", "payments", "--repo", str(layered), "--format", "env")
    )

    assert out.splitlines() == [
        "LOG_LEVEL=warn",
        "REGION=eu",
        "TIMEOUT_MS=1000",
        "DB_HOST=db.eu.internal",
        "DB_POOL_MAX=30",
        "DB_POOL_MIN=2",
        "SERVERS_0=a.internal",
        "SERVERS_1=b.internal",
        "DEBUG=false",
        "TLS=true",
        "FALLBACK=",
        'GREETING="hello world"',
        "ANSWER=yes",
    ]


def test_render_env_production_pool(layered: Path) -> None:
    out = ok(invoke("render", "production", "payments", "--repo", str(layered), "--format", "env"))

    assert "DB_POOL_MAX=50" in out.splitlines()


TRICKY_STRINGS = {
    "norway": "yes",
    "off": "off",
    "on": "on",
    "no": "NO",
    "tilde": "~",
    "null_word": "null",
    "date": "2024-06-20",
    "time": "22:00",
    "true_word": "true",
    "int_like": "0123",
    "hex_like": "0x1F",
    "exp_like": "1e3",
    "octal_12": "0o17",
    "dot_inf": ".inf",
}


def tricky_repo(tmp_path: Path) -> Path:
    """A repo whose payments config holds strings that look like other YAML types."""
    body = "".join(f"{key}: {json.dumps(value)}\n" for key, value in TRICKY_STRINGS.items())
    return make_repo(
        tmp_path / "tricky",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": body,
        },
    )


def test_render_yaml_keeps_norway_strings_for_a_yaml_1_1_reader(tmp_path: Path) -> None:
    repo = tricky_repo(tmp_path)
    assert render(repo, "staging", "payments") == TRICKY_STRINGS

    out = ok(invoke("render", "staging", "payments", "--repo", str(repo), "--format", "yaml"))

    reread = yaml.safe_load(out)  # PyYAML is a YAML 1.1 loader: unquoted yes would be True
    assert reread == TRICKY_STRINGS
    assert reread["norway"] == "yes"


def test_render_yaml_reads_back_the_same_in_gitconfs_yaml_1_2_dialect(tmp_path: Path) -> None:
    # A consumer with a YAML 1.2 loader (gitconf's own, Go's yaml.v3, ruamel) must get
    # the served strings back too: 1e3 and 0o17 are numbers in 1.2 but not in 1.1.
    repo = tricky_repo(tmp_path)
    out = ok(invoke("render", "staging", "payments", "--repo", str(repo), "--format", "yaml"))

    node, problems = parse_yaml("rendered.yaml", out.encode())

    assert problems == []
    assert node is not None
    assert to_plain(node) == TRICKY_STRINGS


def test_render_env_quotes_values_a_shell_reads_back(tmp_path: Path) -> None:
    values = {
        "spaces": "Example Shop <no-reply@example.com>",
        "dollar": "pa$$word $HOME",
        "quotes": 'say "hi"',
        "backslash": "C:\\temp\\new",
        "backtick": "a `echo injected` b",
        "single": "it's",
        "plain": "postgres://db.internal:5432/x",
    }
    body = "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())
    repo = make_repo(
        tmp_path / "r",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": body,
        },
    )
    out = ok(invoke("render", "staging", "payments", "--repo", str(repo), "--format", "env"))
    assert "PLAIN=postgres://db.internal:5432/x" in out.splitlines()
    assert 'SPACES="Example Shop <no-reply@example.com>"' in out.splitlines()

    script = out + "".join(f'printf "%s\\0" "${key.upper()}"\n' for key in values)
    shell = subprocess.run(["sh", "-c", script], capture_output=True, check=True)

    assert shell.stdout.decode().split("\0")[:-1] == list(values.values())


@pytest.mark.parametrize(
    ("env", "service", "unknown", "known"),
    [
        ("qa", "payments", "'qa'", "staging, production, production-eu"),
        ("staging", "billing", "'billing'", "payments, search"),
    ],
    ids=["environment", "service"],
)
def test_render_unknown_environment_or_service(
    layered: Path, env: str, service: str, unknown: str, known: str
) -> None:
    result = invoke("render", env, service, "--repo", str(layered))

    expect_one_line_exit_2(result, unknown, known)


# -- render on sample-repo/ ----------------------------------------------------------------------
def test_sample_production_eu_payments(sample: Path) -> None:
    config = render(sample, "production-eu", "payments")

    assert config["db"]["pool"] == {"min": 10, "max": 30, "idle_timeout_s": 300}
    assert config["db"]["host"] == "payments-db.prod.eu-west-1.internal"
    assert config["db"]["ssl_mode"] == "verify-full"  # from production, along the chain
    # !replace: stripe (base and production) is gone; adyen is exactly the EU file's map
    assert config["providers"] == {
        "adyen": {
            "api_base": "https://checkout-live.adyen.com",
            "api_version": "v71",
            "api_key_env": "ADYEN_EU_LIVE_API_KEY",
            "timeout_ms": 8000,
        }
    }
    assert config["default_provider"] == "adyen"
    assert config["currencies"] == ["EUR", "GBP", "CHF", "SEK", "DKK", "PLN"]
    assert config["region"] == "eu-west-1"
    assert config["fraud"] == {"score_threshold": 0.8, "shadow_url": None}


def test_sample_production_payments_merges_providers(sample: Path) -> None:
    providers = render(sample, "production", "payments")["providers"]

    assert providers["stripe"] == {
        "api_base": "https://api.stripe.com",
        "api_version": "2024-06-20",  # unquoted in YAML, a string in YAML 1.2
        "api_key_env": "STRIPE_LIVE_SECRET_KEY",
        "timeout_ms": 8000,
    }
    assert providers["adyen"]["api_key_env"] == "ADYEN_LIVE_API_KEY"


@pytest.mark.parametrize("env", ["production", "production-eu"])
def test_sample_debug_toolbar_deleted_in_production(sample: Path, env: str) -> None:
    assert "debug_toolbar" not in render(sample, env, "checkout")


def test_sample_debug_toolbar_elsewhere(sample: Path) -> None:
    assert render(sample, "dev", "checkout")["debug_toolbar"] == {
        "enabled": True,
        "panels": ["sql", "cache", "timings"],
    }
    assert render(sample, "staging", "checkout")["debug_toolbar"]["enabled"] is False


@pytest.mark.parametrize("env", ["production", "production-eu"])
def test_sample_search_shard_appended_in_production(sample: Path, env: str) -> None:
    assert render(sample, env, "search")["cluster"]["shards"] == [
        "search-1.internal:9200",
        "search-2.internal:9200",
        "search-3.internal:9200",
    ]


def test_sample_search_shards_elsewhere(sample: Path) -> None:
    assert render(sample, "staging", "search")["cluster"]["shards"] == [
        "search-1.internal:9200",
        "search-2.internal:9200",
    ]
    assert render(sample, "dev", "search")["cluster"]["shards"] == ["localhost:9200"]


def test_sample_production_eu_checkout_origins_appended(sample: Path) -> None:
    assert render(sample, "production-eu", "checkout")["http"]["allowed_origins"] == [
        "https://shop.example.com",
        "https://www.example.com",
        "https://shop.example.eu",
    ]


def test_sample_notifications_folder_and_quiet_hours(sample: Path) -> None:
    config = render(sample, "production", "notifications")

    assert config["enabled_channels"] == ["email", "sms", "push"]
    assert config["quiet_hours"]["start"] == "22:00"
    assert config["channels"]["email"]["from_address"] == "Example Shop <orders@mail.example.com>"
    assert config["db"]["pool"] == {"min": 1, "max": 20}


# -- explain -------------------------------------------------------------------------------------
def explain(repo: Path, *args: str) -> Result:
    """`gitconf explain` against repo."""
    return invoke("explain", *args, "--repo", str(repo))


def test_explain_text_names_winner_then_overridden_nearest_first(layered: Path) -> None:
    out = ok(explain(layered, "production-eu", "payments", "db.pool.max"))

    lines = out.splitlines()
    assert lines[0].startswith("# production-eu/payments: layers base/_all.yaml -> ")
    assert lines[1:] == [
        "db.pool.max = 30",
        "    set at    environments/production-eu/payments.yaml:4:10",
        "    overrides environments/production/payments.yaml:3:10",
        "    overrides base/payments.yaml:4:10",
    ]


def test_explain_text_layers_in_precedence_order(layered: Path) -> None:
    first = ok(explain(layered, "production-eu", "payments", "region")).splitlines()[0]

    assert first == (
        "# production-eu/payments: layers base/_all.yaml -> base/payments.yaml"
        " -> environments/production/_all.yaml -> environments/production/payments.yaml"
        " -> environments/production-eu/_all.yaml -> environments/production-eu/payments.yaml"
    )


def test_explain_json_fields(layered: Path) -> None:
    out = ok(explain(layered, "production-eu", "payments", "db.pool.max", "--format", "json"))

    assert json.loads(out) == [
        {
            "key": "db.pool.max",
            "value": 30,
            "source": "environments/production-eu/payments.yaml:4:10",
            # lowest layer first, as in the merge
            "overrides": [
                "base/payments.yaml:4:10",
                "environments/production/payments.yaml:3:10",
            ],
        }
    ]


def test_explain_value_never_overridden(layered: Path) -> None:
    entries = json.loads(
        ok(explain(layered, "production-eu", "payments", "greeting", "--format", "json"))
    )

    assert entries == [
        {
            "key": "greeting",
            "value": "hello world",
            "source": "base/payments.yaml:10:11",
            "overrides": [],
        }
    ]


def test_explain_subtree_lists_its_leaves(layered: Path) -> None:
    entries = json.loads(
        ok(explain(layered, "production-eu", "payments", "db", "--format", "json"))
    )

    assert [(e["key"], e["value"], e["source"]) for e in entries] == [
        ("db.host", "db.eu.internal", "environments/production-eu/payments.yaml:2:9"),
        ("db.pool.max", 30, "environments/production-eu/payments.yaml:4:10"),
        ("db.pool.min", 2, "base/payments.yaml:5:10"),
    ]


def test_explain_list_leaves_and_index(layered: Path) -> None:
    entries = json.loads(ok(explain(layered, "staging", "payments", "servers", "--format", "json")))
    assert [(e["key"], e["value"]) for e in entries] == [
        ("servers[0]", "a.internal"),
        ("servers[1]", "b.internal"),
    ]

    one = json.loads(ok(explain(layered, "staging", "payments", "servers[1]", "--format", "json")))
    assert [(e["key"], e["source"]) for e in one] == [("servers[1]", "base/payments.yaml:6:23")]


def test_explain_without_key_lists_every_leaf(layered: Path) -> None:
    entries = json.loads(ok(explain(layered, "staging", "search", "--format", "json")))

    assert [e["key"] for e in entries] == ["log_level", "region", "timeout_ms", "shards"]


def test_explain_null_leaf(layered: Path) -> None:
    out = ok(explain(layered, "staging", "payments", "fallback"))

    assert "fallback = null" in out.splitlines()


@pytest.mark.parametrize("key", ["nope", "db.pool.nope", "db.host.deeper", "servers[5]"])
def test_explain_unknown_key(layered: Path, key: str) -> None:
    result = explain(layered, "production-eu", "payments", key)

    expect_one_line_exit_2(result, repr(key))


def test_explain_unknown_environment(layered: Path) -> None:
    expect_one_line_exit_2(explain(layered, "qa", "payments", "db"), "'qa'", "staging")


def test_explain_sample_repo_as_its_comment_promises(sample: Path) -> None:
    out = ok(explain(sample, "production-eu", "payments", "db.pool.max"))

    assert out.splitlines()[1:] == [
        "db.pool.max = 30",
        "    set at    environments/production-eu/payments.yaml:22:10",
        "    overrides environments/production/payments.yaml:11:10",
        "    overrides base/payments.yaml:24:10",
    ]


# -- diff ----------------------------------------------------------------------------------------
def diff(repo: Path, *args: str) -> Result:
    """`gitconf diff` against repo."""
    return invoke("diff", *args, "--repo", str(repo))


def two_commits(repo: Path, files: Files) -> tuple[str, str]:
    """The sha of HEAD, and of a new commit applying files to it."""
    before = git(repo, "rev-parse", "HEAD")
    return before, commit_all(repo, "change", files)


def test_diff_lists_only_the_changed_config(layered: Path) -> None:
    base, head = two_commits(
        layered, {"base/search.yaml": "shards: 3\n", "environments/staging/payments.yaml": "x: 1\n"}
    )

    out = ok(diff(layered, base, head))

    assert out == (
        "staging/payments (changed)\n"
        "  + x: 1\n"
        "staging/search (changed)\n"
        "  ~ shards: 2 -> 3\n"
        "production/search (changed)\n"
        "  ~ shards: 2 -> 3\n"
        "production-eu/search (changed)\n"
        "  ~ shards: 2 -> 3\n"
    )


def test_diff_follows_the_extends_chain(layered: Path) -> None:
    base, head = two_commits(
        layered, {"environments/production/payments.yaml": "db:\n  pool:\n    max: 60\n"}
    )

    out = ok(diff(layered, base, head))

    # production-eu sets its own db.pool.max, so only production's changes
    assert out == "production/payments (changed)\n  ~ db.pool.max: 50 -> 60\n"


def test_diff_key_by_key_with_old_and_new_values(layered: Path) -> None:
    base, head = two_commits(
        layered,
        {
            "environments/staging/payments.yaml": (
                "db:\n  host: db.staging\n  pool: !delete\n"
                "servers: [c.internal]\nfallback: http://fb\ndebug: !delete\n"
            )
        },
    )

    out = ok(diff(layered, base, head))

    assert out.splitlines() == [
        "staging/payments (changed)",
        '  ~ db.host: "db.internal" -> "db.staging"',
        "  - db.pool.max: 20",
        "  - db.pool.min: 2",
        "  - debug: false",
        '  ~ fallback: null -> "http://fb"',
        '  ~ servers: ["a.internal", "b.internal"] -> ["c.internal"]',
    ]


def test_diff_change_to_base_all_shows_in_every_config(layered: Path) -> None:
    base, head = two_commits(
        layered, {"base/_all.yaml": "log_level: info\nregion: us\ntimeout_ms: 2000\n"}
    )

    out = ok(diff(layered, base, head))

    expected = "".join(
        f"{env}/{service} (changed)\n  ~ timeout_ms: 1000 -> 2000\n" for env, service in ALL_PAIRS
    )
    assert out == expected


def test_diff_without_effective_change(layered: Path) -> None:
    # A comment, key order, flow vs block style, quoting and an explicit override that
    # equals the inherited value: the files differ, no served config does.
    base, head = two_commits(
        layered,
        {
            "base/payments.yaml": (
                "# payments defaults, reformatted\n"
                "answer: 'yes'\n"
                "greeting: 'hello world'\n"
                "fallback: ~\n"
                "tls: true\n"
                "debug: false\n"
                "servers:\n  - a.internal\n  - b.internal\n"
                "db: {pool: {min: 2, max: 20}, host: db.internal}\n"
            ),
            "environments/staging/search.yaml": "shards: 2  # same as base\n",
        },
    )
    assert git(layered, "diff", "--stat", base, head)  # the commits really differ

    assert ok(diff(layered, base, head)) == "no effective changes\n"
    assert json.loads(ok(diff(layered, base, head, "--format", "json"))) == []
    markdown = ok(diff(layered, base, head, "--format", "markdown"))
    assert "No effective configuration changes." in markdown
    assert "| key |" not in markdown


def test_diff_int_to_float_is_a_change(layered: Path) -> None:
    base, head = two_commits(layered, {"base/search.yaml": "shards: 2.0\n"})

    changes = json.loads(ok(diff(layered, base, head, "--format", "json")))

    assert {(c["environment"], c["service"]) for c in changes} == {
        (env, "search") for env in ("staging", "production", "production-eu")
    }
    assert changes[0]["changes"] == [{"key": "shards", "status": "changed", "old": 2, "new": 2.0}]


def test_diff_new_service_is_added(layered: Path) -> None:
    base, head = two_commits(
        layered, {"schemas/orders.schema.json": OPEN_SCHEMA, "base/orders.yaml": "queue: q1\n"}
    )

    changes = json.loads(ok(diff(layered, base, head, "--format", "json")))

    assert [(c["environment"], c["service"], c["status"]) for c in changes] == [
        (env, "orders", "added") for env in ("staging", "production", "production-eu")
    ]
    staging = changes[0]["changes"]
    assert {k["key"]: (k["status"], k["old"], k["new"]) for k in staging} == {
        "log_level": ("added", None, "info"),
        "region": ("added", None, "us"),
        "timeout_ms": ("added", None, 1000),
        "queue": ("added", None, "q1"),
    }
    text = ok(diff(layered, base, head))
    assert "staging/orders (added)\n" in text
    assert '  + queue: "q1"\n' in text


def test_diff_removed_service_is_removed(layered: Path) -> None:
    base, head = two_commits(
        layered,
        {
            "schemas/search.schema.json": None,
            "base/search.yaml": None,
        },
    )

    changes = json.loads(ok(diff(layered, base, head, "--format", "json")))

    assert [(c["environment"], c["service"], c["status"]) for c in changes] == [
        (env, "search", "removed") for env in ("staging", "production", "production-eu")
    ]
    assert {"key": "shards", "status": "removed", "old": 2, "new": None} in changes[0]["changes"]
    assert "production/search (removed)\n" in ok(diff(layered, base, head))


def test_diff_markdown_table(layered: Path) -> None:
    base, head = two_commits(
        layered,
        {"environments/production/payments.yaml": "db:\n  pool:\n    max: 60\n  host: a|b\n"},
    )

    out = ok(diff(layered, base, head, "--format", "markdown"))

    lines = out.splitlines()
    assert lines[0].startswith("### ")
    assert base in lines[0]
    assert head in lines[0]
    assert "`production/payments` (changed)" in out
    assert "`production-eu/payments`" not in out  # its own db.host and pool.max win there
    header = lines.index("| key | before | after |")
    assert lines[header + 1] == "|---|---|---|"
    rows = lines[header + 2 : header + 4]
    assert rows == [
        '| `db.host` | `"db.internal"` | `"a\\|b"` |',  # a pipe must not split the cell
        "| `db.pool.max` | `50` | `60` |",
    ]


def test_diff_markdown_added_key_has_empty_before(layered: Path) -> None:
    base, head = two_commits(layered, {"environments/staging/search.yaml": "replicas: 1\n"})

    out = ok(diff(layered, base, head, "--format", "markdown"))

    assert "| `replicas` |  | `1` |" in out.splitlines()


def test_diff_json_report(layered: Path) -> None:
    base, head = two_commits(
        layered,
        {"environments/staging/payments.yaml": "db:\n  pool:\n    max: 25\ngreeting: !delete\n"},
    )

    report = json.loads(ok(diff(layered, base, head, "--format", "json")))

    assert report == [
        {
            "environment": "staging",
            "service": "payments",
            "status": "changed",
            "changes": [
                {"key": "db.pool.max", "status": "changed", "old": 20, "new": 25},
                {"key": "greeting", "status": "removed", "old": "hello world", "new": None},
            ],
        }
    ]


def test_diff_head_omitted_compares_with_the_files_on_disk(layered: Path) -> None:
    write_files(layered, {"base/search.yaml": "shards: 4\n"})  # not committed

    out = ok(diff(layered, "HEAD"))

    assert "staging/search (changed)\n  ~ shards: 2 -> 4\n" in out
    assert "payments" not in out
    markdown = ok(diff(layered, "HEAD", "--format", "markdown"))
    assert "working tree" in markdown.splitlines()[0]


def test_diff_head_omitted_clean_tree_has_no_changes(layered: Path) -> None:
    assert ok(diff(layered, "HEAD")) == "no effective changes\n"


def test_diff_invalid_head_exits_1_with_its_problems(layered: Path) -> None:
    base, head = two_commits(
        layered,
        {"base/search.yaml": "shards: 2\nx: y: z\n", "base/payments.yaml": "a: 1\na: 2\n"},
    )

    result = diff(layered, base, head)

    assert result.exit_code == 1, (result.output, result.exception)
    assert "base/payments.yaml:2:1: " in result.output
    assert "base/search.yaml:2:5: " in result.output
    assert "(changed)" not in result.output


def test_diff_invalid_base_exits_1(layered: Path) -> None:
    bad = commit_all(layered, "bad", {"base/search.yaml": "x: y: z\n"})
    good = commit_all(layered, "fixed", {"base/search.yaml": "shards: 2\n"})

    result = diff(layered, bad, good)

    assert result.exit_code == 1, result.output
    assert "base/search.yaml:1:5: " in result.output


def test_diff_unknown_ref(layered: Path) -> None:
    expect_one_line_exit_2(diff(layered, "HEAD", "nosuch"), "nosuch")


# -- --ref ---------------------------------------------------------------------------------------
@pytest.fixture
def history(tmp_path: Path) -> dict[str, str]:
    """A repo with search shards 1, 2 on main (tags v1, v2), 3 on a branch, 4 uncommitted."""
    repo = make_repo(tmp_path / "r", {**LAYERED, "base/search.yaml": "shards: 1\n"})
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    second = commit_all(repo, "two", {"base/search.yaml": "shards: 2\n"})
    git(repo, "tag", "-a", "v2", "-m", "annotated")
    git(repo, "checkout", "-q", "-b", "release/next")
    commit_all(repo, "three", {"base/search.yaml": "shards: 3\n"})
    git(repo, "checkout", "-q", "main")
    write_files(repo, {"base/search.yaml": "shards: 4\n"})
    return {"repo": str(repo), "first": first, "second": second}


@pytest.mark.parametrize(
    ("ref", "shards"),
    [
        ("main", 2),
        ("release/next", 3),
        ("v1", 1),
        ("v2", 2),  # annotated: peeled to its commit
        ("HEAD", 2),
        ("HEAD~1", 1),
        ("main^", 1),
        ("first-short", 1),
        ("first-full", 1),
        (None, 4),  # no --ref: the files on disk
    ],
)
def test_ref_names(history: dict[str, str], ref: str | None, shards: int) -> None:
    if ref == "first-short":
        ref = history["first"][:8]
    elif ref == "first-full":
        ref = history["first"]
    args = ["--ref", ref] if ref else []

    config = json.loads(ok(invoke("render", "staging", "search", "--repo", history["repo"], *args)))

    assert config["shards"] == shards


def test_ref_for_explain_and_diff(history: dict[str, str]) -> None:
    repo = history["repo"]

    explained = json.loads(
        ok(
            invoke(
                "explain",
                "staging",
                "search",
                "shards",
                "--repo",
                repo,
                "--ref",
                "v1",
                "--format",
                "json",
            )
        )
    )
    assert explained[0]["value"] == 1

    out = ok(invoke("diff", "v1", "release/next", "--repo", repo))
    assert "staging/search (changed)\n  ~ shards: 1 -> 3\n" in out


@pytest.mark.parametrize("ref", ["nosuch", "v9", "deadbeef", "HEAD~10", "main..v1"])
def test_unknown_ref_exit_2(history: dict[str, str], ref: str) -> None:
    result = invoke("render", "staging", "search", "--repo", history["repo"], "--ref", ref)

    expect_one_line_exit_2(result, repr(ref))


def test_ref_in_a_subfolder_of_the_work_tree(history: dict[str, str]) -> None:
    # --ref reads Git, which is found from any folder inside the work tree
    config = json.loads(
        ok(
            invoke(
                "render", "staging", "search", "--repo", f"{history['repo']}/base", "--ref", "v1"
            )
        )
    )

    assert config["shards"] == 1


def test_ref_outside_a_git_repository(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    write_files(folder, LAYERED)

    assert render(folder, "staging", "search") == {
        "log_level": "info",
        "region": "us",
        "timeout_ms": 1000,
        "shards": 2,
    }
    result = invoke("render", "staging", "search", "--repo", str(folder), "--ref", "HEAD")
    expect_one_line_exit_2(result)


def test_a_number_json_cannot_carry_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA

    repo = make_repo(
        tmp_path / "r",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": "big: " + "9" * 5000 + "\nratio: .nan\n",
        },
    )
    result = CliRunner().invoke(main, ["validate", "--repo", str(repo)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("base/payments.yaml:1:6: big: '9999")
    assert lines[1].startswith(
        "base/payments.yaml:2:8: ratio: '.nan' is a number JSON cannot carry"
    )


def test_the_console_script_keeps_exit_codes_and_output_when_it_exits_hard(tmp_path: Path) -> None:
    import sys

    from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA

    repo = make_repo(
        tmp_path / "r",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": "db: {port: 1}\nlist: ["
            + ", ".join(map(str, range(5000)))
            + "]\n",
        },
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gitconf", *args], capture_output=True, text=True, timeout=60
        )

    rendered = run("render", "staging", "payments", "--repo", str(repo))
    assert rendered.returncode == 0
    assert json.loads(rendered.stdout)["list"][-1] == 4999  # every byte reached the pipe
    (repo / "base" / "payments.yaml").write_text("db: {port: 1}\ndb: {port: 2}\n")
    invalid = run("validate", "--repo", str(repo))
    assert invalid.returncode == 1
    assert invalid.stdout.startswith("base/payments.yaml:2:1: db: duplicate key 'db'")
    assert run("validate", "--repo", str(tmp_path / "missing")).returncode == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("db:\n  pool: 1\ndb_pool: 2\n", ["keys db.pool and db_pool", "DB_POOL"]),
        ("a-b: 1\na.b: 2\n", ['keys a-b and ["a.b"]', "A_B"]),
        ('"--": 1\n', ["key -- has no letter or digit"]),
    ],
)
def test_render_env_refuses_keys_that_would_lose_a_value(
    tmp_path: Path, body: str, words: list[str]
) -> None:
    repo = make_repo(
        tmp_path / "clash",
        {
            "gitconf.yaml": MINIMAL_MANIFEST,
            "schemas/payments.schema.json": OPEN_SCHEMA,
            "base/payments.yaml": body,
        },
    )
    result = invoke("render", "staging", "payments", "--repo", str(repo), "--format", "env")
    expect_one_line_exit_2(result, "staging/payments cannot be rendered as env", *words)
    assert json.loads(ok(invoke("render", "staging", "payments", "--repo", str(repo))))


# -- validate: ignored files, and --staged for pre-commit ------------------------------------
BROKEN = "db: [unclosed\n"


def test_validate_skips_git_ignored_files_but_reads_untracked_ones(layered: Path) -> None:
    commit_all(layered, "ignore scratch files", {".gitignore": "scratch/\n*.local.yaml\n"})
    write_files(
        layered,
        {"base/payments.local.yaml": BROKEN, "environments/staging/scratch/payments.yaml": BROKEN},
    )
    # A stray ignored file blocked a valid commit: git add -A would never commit it.
    assert ok(invoke("validate", "--repo", str(layered))).startswith("ok: ")
    # An untracked file that is not ignored is on disk and would be committed: it counts.
    write_files(layered, {"environments/staging/search.yaml": BROKEN})
    result = invoke("validate", "--repo", str(layered))
    assert result.exit_code == 1
    assert result.stdout.startswith("environments/staging/search.yaml:2:1: YAML syntax error")


def test_validate_staged_reads_the_index_not_the_work_tree(layered: Path) -> None:
    write_files(layered, {"base/search.yaml": "shards: 3\n"})
    git(layered, "add", "base/search.yaml")
    write_files(layered, {"base/search.yaml": BROKEN, "base/untracked.yaml": BROKEN})
    staged = ok(invoke("validate", "--repo", str(layered), "--staged"))
    assert staged.startswith("ok: ") and f"(staged files of {layered})" in staged
    assert invoke("validate", "--repo", str(layered)).exit_code == 1  # the disk is broken
    git(layered, "add", "base/search.yaml")  # now the broken content is staged
    write_files(layered, {"base/search.yaml": "shards: 4\n", "base/untracked.yaml": None})
    result = invoke("validate", "--repo", str(layered), "--staged")
    assert result.exit_code == 1
    assert result.stdout.startswith("base/search.yaml:2:1: YAML syntax error")
    assert ok(invoke("validate", "--repo", str(layered))).startswith("ok: ")


def test_validate_staged_refuses_a_ref_and_a_url(layered: Path) -> None:
    result = invoke("validate", "--repo", str(layered), "--staged", "--ref", "HEAD")
    expect_one_line_exit_2(result, "--staged reads the index and --ref a commit")
    result = invoke("validate", "--repo", "https://example.com/config.git", "--staged")
    expect_one_line_exit_2(result, "--staged reads a local work tree's index")


@pytest.mark.parametrize("how", [["-a"], ["--", "base/search.yaml"]])
def test_a_pre_commit_hook_validates_what_git_commit_a_commits(
    layered: Path, how: list[str]
) -> None:
    # git commit -a and git commit <paths> hand the hook a temporary index (GIT_INDEX_FILE);
    # .git/index still holds the old content while the hook runs.
    hook = layered / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m gitconf validate --staged\n"
    )
    hook.chmod(0o755)
    write_files(layered, {"base/search.yaml": BROKEN})
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@gitconf.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@gitconf.invalid",
        "HOME": str(layered),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    refused = subprocess.run(
        ["git", "commit", "-q", "-m", "break search", *how],
        cwd=layered, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "base/search.yaml:2:1: YAML syntax error" in refused.stderr
    write_files(layered, {"base/search.yaml": "shards: 5\n"})
    accepted = subprocess.run(
        ["git", "commit", "-q", "-m", "more shards", *how],
        cwd=layered, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert git(layered, "show", "HEAD:base/search.yaml") == "shards: 5"


def test_the_pre_commit_hook_reads_the_staged_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["entry"] for h in hooks if h["id"] == "gitconf-validate"] == [
        "gitconf validate --staged"
    ]


# -- set -----------------------------------------------------------------------------------------
def test_set_on_the_sample_repository_leaves_a_one_line_diff(tmp_path: Path) -> None:
    repo = Path(shutil.copytree(ROOT / "sample-repo", tmp_path / "config"))
    make_repo(repo, {})
    done = subprocess.run(
        [sys.executable, "-m", "gitconf", "set", "production-eu", "payments", "db.pool.max=60"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "wrote environments/production-eu/payments.yaml"
    diff = git(repo, "diff", "-U0", "--no-color")
    assert [line for line in diff.splitlines() if line.startswith(("-", "+"))] == [
        "--- a/environments/production-eu/payments.yaml",
        "+++ b/environments/production-eu/payments.yaml",
        "-    max: 30",
        "+    max: 60",
    ]
    assert "@@ -22 +22 @@" in diff
