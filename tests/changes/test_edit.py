"""Edits of realistic layer files, each compared byte for byte with the file expected."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from gitconf.changes.edit import edit_layer


class Case(NamedTuple):
    name: str
    before: str
    sets: dict[str, Any]
    unsets: list[str]
    after: str


PAYMENTS = """\
# payments in production: the US entity.
---
http:
  port: 8080            # behind the mesh
  # Provider calls can take several seconds.
  request_timeout_ms: 15000

db:
  host: payments-db.internal
  pool:
    # A charge holds its connection across the provider call.
    min: 2
    max: 50

currencies: [USD, CAD]

# Providers, most used first.
providers: !replace
  stripe:
    api_base: 'https://api.stripe.com'
    api_version: 2024-06-20
"""

CASES = [
    Case(
        "a scalar keeps its inline comment",
        PAYMENTS,
        {"http.port": 8081},
        [],
        PAYMENTS.replace("  port: 8080            # behind", "  port: 8081            # behind"),
    ),
    Case(
        "a key under comments",
        PAYMENTS,
        {"db.pool.max": 60},
        [],
        PAYMENTS.replace("    max: 50\n", "    max: 60\n"),
    ),
    Case(
        "a new key goes after the last key, before the blank line",
        PAYMENTS,
        {"db.port": 5432},
        [],
        PAYMENTS.replace("    max: 50\n\n", "    max: 50\n  port: 5432\n\n"),
    ),
    Case(
        "missing parents are created at the end of the top level",
        PAYMENTS,
        {"features.gdpr.consent_gate": False},
        [],
        PAYMENTS + "features:\n  gdpr:\n    consent_gate: false\n",
    ),
    Case(
        "a single-quoted string stays single-quoted",
        PAYMENTS,
        {"providers.stripe.api_base": "https://api.stripe.test"},
        [],
        PAYMENTS.replace("'https://api.stripe.com'", "'https://api.stripe.test'"),
    ),
    Case(
        "an unquoted date-like string stays unquoted (YAML 1.2)",
        PAYMENTS,
        {"providers.stripe.api_version": "2025-01-01"},
        [],
        PAYMENTS.replace("api_version: 2024-06-20", "api_version: 2025-01-01"),
    ),
    Case(
        "a string gitconf would read as another type is quoted, in the file's quotes",
        PAYMENTS,
        {"http.port": "8081", "db.host": "true", "db.name": "yes", "db.empty": ""},
        [],
        PAYMENTS.replace("  port: 8080", "  port: '8081'")
        .replace("host: payments-db.internal", "host: 'true'")
        .replace("    max: 50\n\n", "    max: 50\n  name: yes\n  empty: ''\n\n"),
    ),
    Case(
        "a flow list: an item added, the style kept",
        PAYMENTS,
        {"currencies[2]": "EUR"},
        [],
        PAYMENTS.replace("[USD, CAD]", "[USD, CAD, EUR]"),
    ),
    Case(
        "a flow list set whole stays a flow list",
        PAYMENTS,
        {"currencies": ["EUR", "GBP", "null"]},
        [],
        PAYMENTS.replace("[USD, CAD]", "[EUR, GBP, 'null']"),
    ),
    Case(
        "a mapping under !replace is edited, the tag stays",
        PAYMENTS,
        {"providers.stripe.timeout_ms": 8000},
        [],
        PAYMENTS + "    timeout_ms: 8000\n",
    ),
    Case(
        "setting the !replace mapping whole keeps !replace",
        PAYMENTS,
        {"providers": {"adyen": {"api_version": "v71"}}},
        [],
        PAYMENTS.replace(
            "  stripe:\n    api_base: 'https://api.stripe.com'\n    api_version: 2024-06-20\n",
            "  adyen:\n    api_version: v71\n",
        ),
    ),
    Case(
        "unset removes the key's lines only",
        PAYMENTS,
        {},
        ["http.request_timeout_ms"],
        PAYMENTS.replace("  request_timeout_ms: 15000\n", ""),
    ),
    Case(
        "unset of a mapping's last key leaves {}",
        "db:\n  pool:\n    max: 50\n  host: x\n",
        {},
        ["db.pool.max"],
        "db:\n  pool: {}\n  host: x\n",
    ),
    Case(
        "unset of a list's last item leaves []",
        "hosts:\n  - a\nport: 1\n",
        {},
        ["hosts[0]"],
        "hosts: []\nport: 1\n",
    ),
    Case(
        "a scalar becomes a mapping; its comment moves to the key line",
        "db:\n  port: 5432  # the default\n  host: x\n",
        {"db.port": {"primary": 5432, "replica": 5433}},
        [],
        "db:\n  port:  # the default\n    primary: 5432\n    replica: 5433\n  host: x\n",
    ),
    Case(
        "a mapping becomes a scalar; the key line's comment stays",
        "db:  # the database\n  host: x\n  port: 1\nz: 0\n",
        {"db": "sqlite:///tmp/db"},
        [],
        "db: sqlite:///tmp/db  # the database\nz: 0\n",
    ),
]

BLOCK_SCALARS = """\
motd: |
  Welcome to payments.
  Be careful.

banner: >-
  one folded
  line
after: 1
"""

CASES += [
    Case(
        "a literal block scalar is rewritten as one",
        BLOCK_SCALARS,
        {"motd": "Welcome.\nBe very careful.\n"},
        [],
        BLOCK_SCALARS.replace(
            "  Welcome to payments.\n  Be careful.\n", "  Welcome.\n  Be very careful.\n"
        ),
    ),
    Case(
        "a folded block scalar with one line stays folded",
        BLOCK_SCALARS,
        {"banner": "a single line"},
        [],
        BLOCK_SCALARS.replace("  one folded\n  line\n", "  a single line\n"),
    ),
    Case(
        "a key next to block scalars",
        BLOCK_SCALARS,
        {"after": 2},
        [],
        BLOCK_SCALARS.replace("after: 1", "after: 2"),
    ),
    Case(
        "a multi-line string replacing a plain one is a literal block",
        "a: x  # why\nb: 1\n",
        {"a": "line 1\nline 2\n"},
        [],
        "a: |  # why\n  line 1\n  line 2\nb: 1\n",
    ),
]

ANCHORS = """\
defaults: &defaults
  timeout_ms: 1000
  retries: 3
checkout:
  <<: *defaults
  timeout_ms: 2000
search:
  http: *defaults
"""

CASES += [
    Case(
        "editing a key of the anchor: every alias shows it",
        ANCHORS,
        {"defaults.retries": 5},
        [],
        ANCHORS.replace("retries: 3", "retries: 5"),
    ),
    Case(
        "a key a mapping has from << is written into that mapping",
        ANCHORS,
        {"checkout.retries": 1},
        [],
        ANCHORS.replace("  timeout_ms: 2000\n", "  timeout_ms: 2000\n  retries: 1\n"),
    ),
    Case(
        "a key set over an alias replaces the alias",
        ANCHORS,
        {"search.http": {"timeout_ms": 10}},
        [],
        ANCHORS.replace("  http: *defaults\n", "  http:\n    timeout_ms: 10\n"),
    ),
]

FLOW = 'limits: {cpu: "500m", memory: 1Gi}\nempty: {}\nnone: []\n'

CASES += [
    Case(
        "a flow mapping: a value set, a key added",
        FLOW,
        {"limits.cpu": "1", "limits.pods": 10},
        [],
        FLOW.replace('{cpu: "500m", memory: 1Gi}', '{cpu: "1", memory: 1Gi, pods: 10}'),
    ),
    Case(
        "a flow mapping: a key removed",
        FLOW,
        {},
        ["limits.cpu"],
        FLOW.replace('{cpu: "500m", memory: 1Gi}', "{memory: 1Gi}"),
    ),
    Case(
        "an empty {} that gets a key becomes a block mapping",
        FLOW,
        {"empty.a": 1},
        [],
        FLOW.replace("empty: {}\n", "empty:\n  a: 1\n"),
    ),
    Case(
        "an empty [] that gets an item becomes a block list",
        FLOW,
        {"none[0]": "x"},
        [],
        FLOW.replace("none: []\n", "none:\n  - x\n"),
    ),
]

LISTS = """\
servers:
- host: a.internal
  port: 8080
- host: b.internal  # the backup
  port: 8080
# Observability, owned by the platform team.
metrics:
  exporters:
    - prometheus
    # - otlp (when the collector is up)
"""

CASES += [
    Case(
        "an item of a list of mappings",
        LISTS,
        {"servers[1].port": 9090},
        [],
        LISTS.replace("  port: 8080\n# Obs", "  port: 9090\n# Obs"),
    ),
    Case(
        "an item appended to a non-indented list goes before the next section's comment",
        LISTS,
        {"servers[2]": {"host": "c.internal", "port": 8080}},
        [],
        LISTS.replace(
            "  port: 8080\n# Obs", "  port: 8080\n- host: c.internal\n  port: 8080\n# Obs"
        ),
    ),
    Case(
        "an item appended to an indented list goes after its own trailing comment",
        LISTS,
        {"metrics.exporters[1]": "statsd"},
        [],
        LISTS + "    - statsd\n",
    ),
    Case(
        "a whole item replaced",
        LISTS,
        {"servers[0]": {"host": "z.internal"}},
        [],
        LISTS.replace("- host: a.internal\n  port: 8080\n", "- host: z.internal\n"),
    ),
    Case(
        "an item removed",
        LISTS,
        {},
        ["servers[0]"],
        LISTS.replace("- host: a.internal\n  port: 8080\n", ""),
    ),
    Case(
        "the first key of a list item removed",
        LISTS,
        {},
        ["servers[1].host"],
        LISTS.replace("- host: b.internal  # the backup\n  port: 8080", "- port: 8080"),
    ),
    Case(
        "a whole list in block style follows the file's list indentation",
        LISTS,
        {"servers": ["x", "y"]},
        [],
        "servers:\n- x\n- y\n" + LISTS.split("port: 8080\n", 2)[2],
    ),
]

FOUR = """\
service:
    name: search
    replicas:
        - zone: a
          size: 3
"""

CASES += [
    Case(
        "four-space indentation is followed by new nested keys",
        FOUR,
        {"service.limits.cpu": 2, "service.replicas[1]": {"zone": "b", "size": 1}},
        [],
        FOUR + "        - zone: b\n          size: 1\n    limits:\n        cpu: 2\n",
    ),
]

ESCAPES = 'city: "Z\\u00fcrich"\ncafe: "caf\\u00e9"\nname: Zoë\nlong: ' + "x" * 300 + "\n"

CASES += [
    Case(
        "escapes and long strings elsewhere stay exactly as written",
        ESCAPES,
        {"name": "Zoé", "cafe2": "naïve"},
        [],
        ESCAPES.replace("name: Zoë", "name: Zoé") + "cafe2: naïve\n",
    ),
]

TAGS = "old_url: !delete\nregions: !append [eu-central-1]\nkeep: !delete\n"

CASES += [
    Case(
        "a value replaces !delete; !append stays on a list; other tags untouched",
        TAGS,
        {"old_url": "https://x.internal", "regions": ["eu-west-1", "eu-north-1"]},
        [],
        "old_url: https://x.internal\nregions: !append [eu-west-1, eu-north-1]\nkeep: !delete\n",
    ),
]

CASES += [
    Case("a file created", "", {"db.pool.max": 60}, [], "db:\n  pool:\n    max: 60\n"),
    Case(
        "a file of comments only gets its first key at the end",
        "# EU overrides\n",
        {"region": "eu"},
        [],
        "# EU overrides\nregion: eu\n",
    ),
    Case(
        "a file without a final newline keeps none",
        "a:\n  b: 1",
        {"a.c": 2},
        [],
        "a:\n  b: 1\n  c: 2",
    ),
    Case(
        "the last key of a file without a final newline removed",
        "x: 1\na: 2",
        {},
        ["a"],
        "x: 1",
    ),
    Case(
        "a document end marker stays last",
        "a: 1\n...\n",
        {"b": 2},
        [],
        "a: 1\nb: 2\n...\n",
    ),
    Case(
        "double quotes where the file has no quotes yet",
        "a: 1\n",
        {"b": "1.5", "c": "it's"},
        [],
        'a: 1\nb: "1.5"\nc: it\'s\n',
    ),
    Case(
        "keys that need quotes",
        'labels:\n  "app.kubernetes.io/name": web\n',
        {'labels["app.kubernetes.io/name"]': "api", 'labels["true"]': "x", 'labels["<<"]': "y"},
        [],
        'labels:\n  "app.kubernetes.io/name": api\n  "true": x\n  "<<": y\n',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edit_is_byte_exact(case: Case) -> None:
    data = case.before.encode() if case.before else None
    assert edit_layer("environments/production/payments.yaml", data, case.sets, case.unsets) == (
        case.after.encode()
    )


def test_crlf_file_keeps_crlf_everywhere() -> None:
    before = b'db:\r\n  host: x\r\n  name: "caf\\u00e9"\r\nlist:\r\n  - a\r\n'
    after = edit_layer("f.yaml", before, {"db.port": 1, "db.host": "y", "list[1]": "b"})
    assert (
        after
        == b'db:\r\n  host: y\r\n  name: "caf\\u00e9"\r\n  port: 1\r\nlist:\r\n  - a\r\n  - b\r\n'
    )


def test_byte_order_mark_stays() -> None:
    assert edit_layer("f.yaml", b"\xef\xbb\xbfa: 1\n", {"a": 2}) == b"\xef\xbb\xbfa: 2\n"


def test_several_edits_in_one_file() -> None:
    before = PAYMENTS.encode()
    after = edit_layer(
        "f.yaml", before, {"db.pool.max": 60, "db.pool.min": 5, "http.port": 1}, ["db.host"]
    )
    assert after.decode() == (
        PAYMENTS.replace("max: 50", "max: 60")
        .replace("min: 2", "min: 5")
        .replace("port: 8080", "port: 1")
        .replace("  host: payments-db.internal\n", "")
    )
