"""gitconf.yaml: what it declares, and the problems it can have, each at its line."""

from __future__ import annotations

import pytest

from gitconf.core.manifest import parse_manifest
from gitconf.core.model import EnvironmentSpec, Limits, Manifest, SubscriptionSpec
from gitconf.errors import Source
from gitconf.testing import MINIMAL_MANIFEST


def valid(text: str) -> Manifest:
    manifest, problems = parse_manifest(text.encode())
    assert problems == [], [p.render() for p in problems]
    assert manifest is not None
    return manifest


def test_environments_in_declaration_order_with_their_parents() -> None:
    manifest = valid(MINIMAL_MANIFEST)
    assert list(manifest.environments.values()) == [
        EnvironmentSpec("staging", None, Source("gitconf.yaml", 3, 12)),
        EnvironmentSpec("production", None, Source("gitconf.yaml", 4, 15)),
        # An environment that extends another is placed at its `extends` value.
        EnvironmentSpec("production-eu", "production", Source("gitconf.yaml", 5, 28)),
    ]
    assert manifest.chain("production-eu") == ("production", "production-eu")


def test_the_defaults() -> None:
    manifest = valid("version: 1\nenvironments:\n  staging: {}\n")
    assert manifest.require_schema is True
    assert manifest.limits == Limits()
    assert manifest.subscriptions == ()


def test_validation_settings() -> None:
    manifest = valid(
        "version: 1\nenvironments:\n  s: {}\nvalidation:\n"
        "  require_schema: false\n  max_file_size: 2048\n  max_schema_size: 4096\n"
    )
    assert manifest.require_schema is False
    assert manifest.limits == Limits(max_file_size=2048, max_schema_size=4096)


def test_a_subscription_with_its_defaults_and_one_with_every_field() -> None:
    manifest = valid(
        "version: 1\nenvironments:\n  s: {}\nsubscriptions:\n"
        "  - {name: everything, url: 'https://all.internal/hook'}\n"
        "  - name: payments-prod\n"
        "    url: https://payments.internal/hooks\n"
        "    environments: ['production*']\n"
        "    services: [payments]\n"
        "    secret_env: PAYMENTS_HOOK_SECRET\n"
        "    events: [io.gitconf.revision.rejected]\n"
        "    include_config: true\n"
    )
    assert manifest.subscriptions == (
        SubscriptionSpec(
            name="everything",
            url="https://all.internal/hook",
            environments=("*",),
            services=("*",),
            secret_env=None,
            events=("io.gitconf.config.changed",),
            include_config=False,
            source=Source("gitconf.yaml", 5, 5),
        ),
        SubscriptionSpec(
            name="payments-prod",
            url="https://payments.internal/hooks",
            environments=("production*",),
            services=("payments",),
            secret_env="PAYMENTS_HOOK_SECRET",
            events=("io.gitconf.revision.rejected",),
            include_config=True,
            source=Source("gitconf.yaml", 6, 5),
        ),
    )


SEE = "(see gitconf's schemas/manifest.schema.json)"


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        (
            "environments:\n  staging: {}\n",
            [f"gitconf.yaml:1:1: 'version' is a required property {SEE}"],
        ),
        (
            "version: 2\nenvironments:\n  staging: {}\n",
            [f"gitconf.yaml:1:10: version: 1 was expected {SEE}"],
        ),
        (
            "version: 1\nenvironments:\n  staging: {}\ncolour: blue\n",
            [
                "gitconf.yaml:4:9: colour: 'colour' is not allowed here "
                f"(additionalProperties is false) {SEE}"
            ],
        ),
        (
            "version: 1\nenvironments:\n  Prod: {}\n",
            [
                "gitconf.yaml:3:9: environments.Prod: key 'Prod' does not match "
                f"'^[a-z0-9][a-z0-9._-]*$' {SEE}"
            ],
        ),
        (
            "version: 1\nenvironments:\n  s: {}\nvalidation:\n  max_file_size: -1\n",
            [
                "gitconf.yaml:5:18: validation.max_file_size: -1 is less than the minimum of 1 "
                f"{SEE}"
            ],
        ),
        (
            "version: 1\nenvironments:\n  s: {}\nsubscriptions:\n  - {name: x}\n",
            [f"gitconf.yaml:5:5: subscriptions[0]: 'url' is a required property {SEE}"],
        ),
        (
            "version: 1\nenvironments:\n  s: {}\nsubscriptions:\n"
            "  - {name: x, url: 'https://a.example/'}\n  - {name: x, url: 'https://b.example/'}\n",
            ["gitconf.yaml:6:5: subscriptions: subscription name 'x' is used twice"],
        ),
        ("- 1\n", ["gitconf.yaml:1:1: the top level must be a mapping of keys, found a list"]),
    ],
    ids=[
        "no-version",
        "unknown-version",
        "unknown-key",
        "bad-environment-name",
        "bad-limit",
        "subscription-without-url",
        "subscription-name-twice",
        "not-a-mapping",
    ],
)
def test_a_manifest_gitconf_cannot_use(text: str, rendered: list[str]) -> None:
    manifest, problems = parse_manifest(text.encode())
    assert manifest is None
    assert [p.render() for p in problems] == rendered


@pytest.mark.parametrize(
    ("environments", "rendered"),
    [
        (
            "  production-eu: {extends: prod}\n",
            [
                "gitconf.yaml:3:28: environments.production-eu.extends: environment "
                "'production-eu' extends 'prod', which is not declared "
                "(declare 'prod' under environments, or fix the name)"
            ],
        ),
        (
            "  a: {extends: a}\n",
            [
                "gitconf.yaml:3:16: environments.a.extends: "
                "environment 'a' extends itself through a cycle: a -> a"
            ],
        ),
        (
            # c leads into the cycle without being part of it: a and b are the ones to fix.
            "  a: {extends: b}\n  b: {extends: a}\n  c: {extends: a}\n",
            [
                "gitconf.yaml:3:16: environments.a.extends: "
                "environment 'a' extends itself through a cycle: a -> b -> a",
                "gitconf.yaml:4:16: environments.b.extends: "
                "environment 'b' extends itself through a cycle: b -> a -> b",
            ],
        ),
    ],
    ids=["unknown-parent", "itself", "cycle"],
)
def test_a_bad_chain_is_a_problem_but_the_rest_is_still_checked(
    environments: str, rendered: list[str]
) -> None:
    manifest, problems = parse_manifest(f"version: 1\nenvironments:\n{environments}".encode())
    assert [p.render() for p in problems] == rendered
    # The manifest is still usable, so the layers are checked too and every problem shown.
    assert manifest is not None
