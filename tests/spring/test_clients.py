"""Real Spring Cloud Config clients from PyPI, used unchanged against a real `gitconf serve`.

- config-client (`from config import ConfigClient`) calls /{app}/{profile}/{label} and
  rebuilds nested config from the flat propertySources;
- spring-config-client 0.2 calls /{label}/{app}-{profile}.json and always sends Basic auth.

What each gives must equal gitconf's own render (/v1/config/<env>/<service>), for an
environment with a hyphen in its name (production-eu) and for a config with a !delete'd key
(checkout: production deletes debug_toolbar, production-eu inherits the deletion).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from config import ConfigClient
from spring_config import ClientConfigurationBuilder
from spring_config.client import SpringConfigClient

from gitconf.testing import commit_all, git
from gitconf.testing.server import ServeProcess
from tests.spring.conftest import TOKENS, copy_sample

PROD = "p" * 32  # read:production*
STAGING = "s" * 32  # read:staging


class Served:
    """The running server, its repository and the commits tagged before the last change."""

    def __init__(self, proc: ServeProcess, repo: Path, tagged: str, head: str) -> None:
        self.proc = proc
        self.repo = repo
        self.tagged = tagged
        self.head = head

    def render(self, env: str, service: str, ref: str | None = None) -> Any:
        """gitconf's own render of a config."""
        response = self.proc.get(
            f"/v1/config/{env}/{service}",
            params={"ref": ref} if ref else None,
            headers={"Authorization": f"Bearer {PROD}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("spring-clients")
    repo = copy_sample(root / "config-repo")
    tagged = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "release/2024.1")
    head = commit_all(
        repo,
        "shorter EU sessions",
        {
            "environments/production-eu/checkout.yaml": (
                repo / "environments/production-eu/checkout.yaml"
            )
            .read_text()
            .replace("ttl_minutes: 30", "ttl_minutes: 20")
        },
    )
    settings = root / "server.yaml"
    settings.write_text(yaml.safe_dump({"tokens": TOKENS}))
    with ServeProcess(repo, root / "state", config=settings) as proc:
        yield Served(proc, repo, tagged, head)


def config_client(
    served: Served, app: str, profile: str, label: str = "master", token: str = PROD
) -> dict[str, Any]:
    """What config-client gives an application (it defaults to the label master)."""
    client = ConfigClient(
        address=served.proc.url, app_name=app, profile=profile, label=label, fail_fast=False
    )
    client.get_config(headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return dict(client.config)


def spring_config_client(
    served: Served, app: str, profile: str, branch: str = "master", token: str = PROD
) -> dict[str, Any]:
    """What spring-config-client gives an application (Basic auth: the token as password)."""
    builder = ClientConfigurationBuilder().address(served.proc.url).app_name(app)
    configuration = builder.profile(profile).branch(branch).authentication(("app", token)).build()
    SpringConfigClient.discard_singleton()  # the client is a process-wide singleton
    try:
        config: dict[str, Any] = SpringConfigClient(configuration).get_config()
    finally:
        SpringConfigClient.discard_singleton()
    return config


@pytest.mark.parametrize("env", ["production-eu", "production"])
def test_config_client_equals_gitconfs_render(served: Served, env: str) -> None:
    render = served.render(env, "checkout")
    assert "debug_toolbar" not in render  # production's !delete
    assert config_client(served, "checkout", env) == render


@pytest.mark.parametrize("env", ["production-eu", "production"])
def test_spring_config_client_equals_gitconfs_render(served: Served, env: str) -> None:
    render = served.render(env, "checkout")
    assert spring_config_client(served, "checkout", env) == render


def test_the_deleted_key_exists_below_production(served: Served) -> None:
    """The equality above is not vacuous: base sets debug_toolbar and staging keeps it."""
    staging = config_client(served, "checkout", "staging", token=STAGING)
    assert staging["debug_toolbar"]["panels"] == ["sql", "cache", "timings"]


def test_replace_holds_for_both_clients(served: Served) -> None:
    providers = {"adyen"}  # production-eu's !replace drops stripe
    assert set(spring_config_client(served, "payments", "production-eu")["providers"]) == providers
    assert set(config_client(served, "payments", "production-eu")["providers"]) == providers


def test_null_is_kept_in_json_and_empty_through_property_sources(served: Served) -> None:
    render = served.render("production-eu", "payments")
    assert render["fraud"]["shadow_url"] is None
    assert spring_config_client(served, "payments", "production-eu") == render
    # Property sources are flat strings and numbers: Spring writes null as "".
    expected = {**render, "fraud": {**render["fraud"], "shadow_url": ""}}
    assert config_client(served, "payments", "production-eu") == expected


def test_labels_reach_tags_and_commits(served: Served) -> None:
    old = served.render("production-eu", "checkout", ref="release/2024.1")
    assert old["session"]["ttl_minutes"] == 30
    assert served.render("production-eu", "checkout")["session"]["ttl_minutes"] == 20
    assert config_client(served, "checkout", "production-eu", label="release(_)2024.1") == old
    assert spring_config_client(served, "checkout", "production-eu", "release(_)2024.1") == old
    assert config_client(served, "checkout", "production-eu", label=served.tagged) == old
    main = config_client(served, "checkout", "production-eu", label="main")
    assert (
        main
        == config_client(served, "checkout", "production-eu")
        == served.render("production-eu", "checkout")
    )


def test_scopes_and_credentials_apply(served: Served) -> None:
    with pytest.raises(Exception, match="403"):
        spring_config_client(served, "checkout", "production", token=STAGING)
    assert spring_config_client(served, "checkout", "staging", token=STAGING) == (
        served.proc.get(
            "/v1/config/staging/checkout", headers={"Authorization": f"Bearer {STAGING}"}
        ).json()
    )
    # Its default credentials are empty (Basic Og==): no token, so refused when tokens are on.
    builder = ClientConfigurationBuilder().address(served.proc.url).app_name("checkout")
    SpringConfigClient.discard_singleton()
    try:
        with pytest.raises(Exception, match="401"):
            SpringConfigClient(builder.profile("production").build())
    finally:
        SpringConfigClient.discard_singleton()
