"""Spring's profile `default` and applications gitconf has no config for, as Spring answers them.

Spring Cloud Config Server answers `/{application}/{profiles}` with 200 even when no file
matches: `EnvironmentController.getEnvironment` (spring-cloud-config-server,
org/springframework/cloud/config/server/environment/EnvironmentController.java) returns the
repository's Environment, and throws EnvironmentNotFoundException ("Profile Not found", a 404)
only when `spring.cloud.config.server.accept-empty` is false, which it is not by default
(docs/modules/ROOT/pages/server/environment-repository.adoc: "You can set
spring.cloud.config.server.accept-empty to false so that Server would return a HTTP 404
status, if the application is not found. By default, this flag is set to true."). For a
profile with no files of its own, its repository still sends `application.yml` and `<app>.yml`:
gitconf's base layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitconf.bootstrap import Server
from gitconf.spring.api import V2_JSON
from gitconf.spring.properties import flatten
from gitconf.testing import git, make_repo
from tests.spring.conftest import FILES, build_server

# base/_all.yaml then base/payments.yaml of FILES, merged: no environment's overlay.
BASE_PAYMENTS = {
    "region": "us",
    "db": {"host": "db.internal", "pool": {"max": 10, "min": 2}},
    "servers": ["a", "b", "c"],
    "providers": {"stripe": {"key": "s"}, "adyen": {"key": "a"}},
    "debug": {"toolbar": True},
    "fallback": None,
    "origins": [],
    "extra": {},
    "labels": {"app.kubernetes.io/name": "payments"},
}
EVERY_ENV = "e" * 32  # read:*/payments
PROD = "p" * 32  # read:production*
TOKENS = [
    {"name": "payments-everywhere", "token": EVERY_ENV, "scopes": ["read:*/payments"]},
    {"name": "prod-reader", "token": PROD, "scopes": ["read:production*"]},
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp("spring-profiles")
    repo = make_repo(root / "config", dict(FILES))
    made = {
        "plain": build_server(repo, root / "plain"),
        "mapped": build_server(repo, root / "mapped", spring={"default_environment": "staging"}),
        "undeclared": build_server(repo, root / "undeclared", spring={"default_environment": "qa"}),
        "secured": build_server(repo, root / "secured", tokens=TOKENS),
    }
    yield made
    for server in made.values():
        server.engine.dispose()


@pytest.fixture(scope="module")
def head(servers: dict[str, Server]) -> str:
    return servers["plain"].publisher.served.revision  # type: ignore[union-attr]


@pytest.fixture
def client(servers: dict[str, Server]) -> Any:
    return servers["plain"].app.test_client()


@pytest.fixture
def mapped(servers: dict[str, Server]) -> Any:
    return servers["mapped"].app.test_client()


def code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


# -- default: the base layers -------------------------------------------------------------


def test_default_is_the_base_layers_alone(client: Any, head: str) -> None:
    response = client.get("/payments/default")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Gitconf-Revision"] == head
    assert "X-Gitconf-Ignored-Profiles" not in response.headers
    assert response.get_json() == {
        "name": "payments",
        "profiles": ["default"],
        "label": None,
        "version": head,
        "state": None,
        "propertySources": [
            {"name": f"gitconf:_base/payments@{head}", "source": flatten(BASE_PAYMENTS)}
        ],
    }


def test_default_differs_from_every_environment(client: Any) -> None:
    """Not one environment's config under another name: each overrides some base value."""
    base = client.get("/payments/default").get_json()["propertySources"][0]["source"]
    for env in ("staging", "production", "production-eu", "eu"):
        config = client.get(f"/payments/{env}").get_json()["propertySources"][0]["source"]
        if env == "eu":  # eu has no overlay of payments: the same values, as it should
            assert config == base
        else:
            assert config != base, env


def test_default_in_v2_carries_the_base_files_origins(client: Any) -> None:
    response = client.get("/payments/default", headers={"Accept": V2_JSON})
    assert response.status_code == 200
    assert response.content_type == V2_JSON
    source = response.get_json()["propertySources"][0]["source"]
    assert source["region"] == {"value": "us", "origin": "base/_all.yaml:1:9"}
    assert source["db.pool.max"]["value"] == 10
    assert source["db.pool.max"]["origin"].startswith("base/payments.yaml:3:")
    assert {k: v["value"] for k, v in source.items()} == flatten(BASE_PAYMENTS)


def test_default_documents_are_the_base_layers(client: Any) -> None:
    assert client.get("/payments-default.json").get_json() == BASE_PAYMENTS
    assert yaml.safe_load(client.get("/payments-default.yml").get_data()) == BASE_PAYMENTS
    assert yaml.safe_load(client.get("/main/payments-default.yaml").get_data()) == BASE_PAYMENTS
    properties = client.get("/payments-default.properties").get_data(as_text=True)
    assert "db.pool.max: 10\n" in properties
    assert "region: us\n" in properties


def test_default_with_profiles_that_are_not_environments(client: Any, head: str) -> None:
    response = client.get("/payments/default,kubernetes")
    assert response.status_code == 200
    assert response.headers["X-Gitconf-Ignored-Profiles"] == "kubernetes"
    doc = response.get_json()
    assert doc["profiles"] == ["default", "kubernetes"]
    assert [s["name"] for s in doc["propertySources"]] == [f"gitconf:_base/payments@{head}"]


def test_default_beside_an_environment_counts_for_nothing(client: Any, head: str) -> None:
    """Each environment already holds the base layers, as Spring's profile sources sit above
    application.yml: `default` adds nothing to them."""
    response = client.get("/payments/production,default")
    assert response.status_code == 200
    assert response.headers["X-Gitconf-Ignored-Profiles"] == "default"
    names = [s["name"] for s in response.get_json()["propertySources"]]
    assert names == [f"gitconf:production/payments@{head}"]


def test_other_profiles_that_are_not_environments_stay_404(client: Any) -> None:
    response = client.get("/payments/kubernetes,cloud")
    assert response.status_code == 404
    assert code(response) == "unknown_environment"
    assert client.get("/payments-kubernetes.json").status_code == 404


def test_a_service_without_base_layers_has_no_property_source(tmp_path: Path) -> None:
    files: dict[str, str | bytes | None] = {
        "gitconf.yaml": "version: 1\nenvironments: {staging: {}}\n"
        "validation: {require_schema: false}\n",
        "environments/staging/solo.yaml": "a: 1\n",
    }
    server = build_server(make_repo(tmp_path / "config", files), tmp_path / "state")
    try:
        client = server.app.test_client()
        doc = client.get("/solo/default").get_json()
        assert doc["profiles"] == ["default"]
        assert doc["propertySources"] == []  # Spring: no application.yml, no solo.yml
        assert client.get("/solo-default.json").get_json() == {}
        assert client.get("/solo/staging").get_json()["propertySources"][0]["source"] == {"a": 1}
    finally:
        server.engine.dispose()


def test_the_base_layers_follow_new_commits(tmp_path: Path) -> None:
    from gitconf.testing import commit_all

    repo = make_repo(tmp_path / "config", dict(FILES))
    server = build_server(repo, tmp_path / "state")
    try:
        client = server.app.test_client()
        first = client.get("/payments/default")
        commit_all(repo, "a new default", {"base/_all.yaml": "region: eu\n"})
        assert server.poller.run_once() == "published"
        second = client.get("/payments/default")
        assert second.headers["ETag"] != first.headers["ETag"]
        source = second.get_json()["propertySources"][0]
        assert source["source"]["region"] == "eu"
        assert source["name"] == f"gitconf:_base/payments@{git(repo, 'rev-parse', 'HEAD')}"
    finally:
        server.engine.dispose()


def test_the_base_layers_need_read_in_every_environment(servers: dict[str, Server]) -> None:
    client = servers["secured"].app.test_client()
    every = {"Authorization": f"Bearer {EVERY_ENV}"}
    prod = {"Authorization": f"Bearer {PROD}"}
    assert client.get("/payments/default").status_code == 401
    assert client.get("/payments/default", headers=every).status_code == 200
    assert client.get("/payments-default.yml", headers=every).status_code == 200
    # Production's values are readable, but the base layers also hold what staging and eu
    # override: a token for production only may not read them.
    for path in ("/payments/default", "/payments-default.json"):
        response = client.get(path, headers=prod)
        assert response.status_code == 403
        assert code(response) == "forbidden"
        message = response.get_json()["error"]["message"]
        assert "base layers of 'payments'" in message
        assert "read:*/payments" in message
        assert "spring.default_environment" in message
    assert client.get("/payments/production", headers=prod).status_code == 200


# -- spring.default_environment -----------------------------------------------------------


def test_default_environment_serves_default_as_that_environment(mapped: Any, head: str) -> None:
    response = mapped.get("/payments/default")
    assert response.status_code == 200
    assert "X-Gitconf-Ignored-Profiles" not in response.headers
    doc = response.get_json()
    assert doc["profiles"] == ["default"]  # the profiles asked for, as Spring echoes them
    staging = mapped.get("/payments/staging").get_json()["propertySources"]
    assert doc["propertySources"] == staging
    assert doc["propertySources"][0]["name"] == f"gitconf:staging/payments@{head}"
    assert mapped.get("/payments-default.json").get_json() == (
        mapped.get("/v1/config/staging/payments").get_json()
    )


def test_default_environment_in_a_list_of_profiles(mapped: Any, head: str) -> None:
    names = [
        s["name"] for s in mapped.get("/payments/default,production").get_json()["propertySources"]
    ]
    assert names == [f"gitconf:production/payments@{head}", f"gitconf:staging/payments@{head}"]
    # default named after its environment counts once, at its first place.
    doc = mapped.get("/payments/staging,default").get_json()
    assert [s["name"] for s in doc["propertySources"]] == [f"gitconf:staging/payments@{head}"]


def test_default_environment_that_the_revision_lacks_is_404_naming_it(
    servers: dict[str, Server],
) -> None:
    response = servers["undeclared"].app.test_client().get("/payments/default")
    assert response.status_code == 404
    assert code(response) == "unknown_environment"
    message = response.get_json()["error"]["message"]
    assert "spring.default_environment 'qa'" in message
    assert "known: staging, production, production-eu, eu" in message


def test_a_default_environment_that_is_not_a_name_is_refused_at_start(tmp_path: Path) -> None:
    from gitconf.settings import SettingsError, load_settings

    config = tmp_path / "server.yaml"
    config.write_text("spring:\n  default_environment: Production\n")
    with pytest.raises(SettingsError, match=r"spring\.default_environment"):
        load_settings({"repo": str(tmp_path)}, environ={}, config_file=str(config))


# -- applications gitconf has no config for -----------------------------------------------


@pytest.mark.parametrize("profiles", ["production", "production,eu", "kubernetes", "default"])
def test_an_unknown_application_is_200_with_no_property_sources(
    client: Any, head: str, profiles: str
) -> None:
    response = client.get(f"/nope/{profiles}")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.headers["X-Gitconf-Revision"] == head
    assert response.get_json() == {
        "name": "nope",
        "profiles": profiles.split(","),
        "label": None,
        "version": head,
        "state": None,
        "propertySources": [],
    }
    again = client.get(f"/nope/{profiles}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_an_unknown_application_at_a_label(client: Any, head: str) -> None:
    doc = client.get(f"/nope/production/{head[:12]}").get_json()
    assert doc["label"] == head[:12]
    assert doc["propertySources"] == []
    assert client.get("/nope/production/no-such-tag").status_code == 404  # the label still counts


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/nope-production.json", "application/json", b"{}\n"),
        ("/nope-production.yml", "text/plain; charset=utf-8", b"{}\n"),
        ("/nope-kubernetes.yaml", "text/plain; charset=utf-8", b"{}\n"),
        ("/main/nope-production.properties", "text/plain; charset=utf-8", b""),
        ("/my-app-production.json", "application/json", b"{}\n"),
    ],
)
def test_an_unknown_applications_documents_are_empty(
    client: Any, path: str, content_type: str, body: bytes
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content_type == content_type
    assert response.get_data() == body


def test_a_document_of_a_known_service_with_no_environment_is_still_404(client: Any) -> None:
    """`payments-kubernetes` names payments: its profile is unknown, not the application."""
    for path in ("/payments-kubernetes.json", "/payments-staging-x.yml", "/payments.json"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert code(response) == "unknown_document"


def test_an_unknown_application_still_needs_a_token(servers: dict[str, Server]) -> None:
    client = servers["secured"].app.test_client()
    assert client.get("/nope/production").status_code == 401
    assert client.get("/nope-production.json").status_code == 401
    ok = client.get("/nope/production", headers={"Authorization": f"Bearer {PROD}"})
    assert ok.status_code == 200
    assert ok.get_json()["propertySources"] == []


def test_an_environment_named_default_is_served_as_itself(tmp_path: Path) -> None:
    files: dict[str, str | bytes | None] = {
        "gitconf.yaml": "version: 1\nenvironments: {default: {}, prod: {}}\n"
        "validation: {require_schema: false}\n",
        "base/svc.yaml": "a: 1\n",
        "environments/default/svc.yaml": "a: 2\n",
    }
    repo = make_repo(tmp_path / "config", files)
    server = build_server(repo, tmp_path / "state", spring={"default_environment": "prod"})
    try:
        doc = server.app.test_client().get("/svc/default").get_json()
        assert doc["propertySources"][0]["name"].startswith("gitconf:default/svc@")
        assert doc["propertySources"][0]["source"] == {"a": 2}
    finally:
        server.engine.dispose()
