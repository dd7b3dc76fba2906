"""The Spring Cloud Config routes through Flask's test client over a real Server and repository."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.exceptions import HTTPException

from gitconf.bootstrap import Server
from gitconf.core.layers import RESERVED_SERVICES
from gitconf.spring.api import V2_JSON
from gitconf.spring.names import MAX_NAME_LENGTH, MAX_PROFILES
from gitconf.testing import commit_all, git, make_repo
from tests.spring.conftest import FILES, TOKENS, build_server

EU_PAYMENTS_FLAT = {
    "region": "us",
    "db.host": "db.internal",
    "db.pool.max": 50,
    "db.pool.min": 2,
    "servers[0]": "p1",
    "servers[1]": "p2",
    "providers.adyen.key": "eu",  # !replace: stripe is gone, not merged back in
    "fallback": "",
    "origins": "",
    "labels[app.kubernetes.io/name]": "payments",
}  # no debug.toolbar: production's !delete holds in production-eu too


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "config", dict(FILES))


@pytest.fixture
def server(repo: Path, make_server: Callable[..., Server]) -> Server:
    """A server of its own, for tests that commit."""
    return make_server(repo)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server, Server]]:
    """One repository, served without and with tokens, for the tests that only read."""
    root = tmp_path_factory.mktemp("spring-api")
    repo = make_repo(root / "config", dict(FILES))
    open_server = build_server(repo, root / "open")
    secured_server = build_server(repo, root / "secured", tokens=TOKENS)
    yield repo, open_server, secured_server
    open_server.engine.dispose()
    secured_server.engine.dispose()


@pytest.fixture
def client(shared: tuple[Path, Server, Server]) -> Any:
    return shared[1].app.test_client()


@pytest.fixture
def secured(shared: tuple[Path, Server, Server]) -> Any:
    return shared[2].app.test_client()


@pytest.fixture
def head(shared: tuple[Path, Server, Server]) -> str:
    return git(shared[0], "rev-parse", "HEAD")


def code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- the Environment document -------------------------------------------------------------
def test_environment_document(client: Any, head: str) -> None:
    sha = head
    response = client.get("/payments/production-eu")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.headers["X-Gitconf-Revision"] == sha
    assert response.get_json() == {
        "name": "payments",
        "profiles": ["production-eu"],
        "label": None,
        "version": sha,
        "state": None,
        "propertySources": [
            {"name": f"gitconf:production-eu/payments@{sha}", "source": EU_PAYMENTS_FLAT}
        ],
    }


def test_the_property_source_is_gitconfs_render_flattened(client: Any) -> None:
    """The one property source is exactly /v1/config flattened: nothing of Spring's layering."""
    from gitconf.spring.properties import flatten

    for env in ("staging", "production", "production-eu", "eu"):
        render = client.get(f"/v1/config/{env}/payments").get_json()
        doc = client.get(f"/payments/{env}").get_json()
        assert doc["propertySources"][0]["source"] == flatten(render), env


def test_v2_media_type_carries_origins(client: Any) -> None:
    response = client.get("/payments/production-eu", headers={"Accept": V2_JSON})
    assert response.status_code == 200
    assert response.content_type == V2_JSON
    source = response.get_json()["propertySources"][0]["source"]
    assert source["db.pool.max"] == {
        "value": 50,
        "origin": "environments/production/payments.yaml:5:10",
    }
    assert source["providers.adyen.key"]["origin"].startswith(
        "environments/production-eu/payments.yaml:2:"
    )
    assert {k: v["value"] for k, v in source.items()} == EU_PAYMENTS_FLAT


def test_comma_profiles_give_one_source_each_the_last_first(client: Any, head: str) -> None:
    sha = head
    doc = client.get("/payments/staging,production").get_json()
    assert doc["profiles"] == ["staging", "production"]
    assert [s["name"] for s in doc["propertySources"]] == [
        f"gitconf:production/payments@{sha}",
        f"gitconf:staging/payments@{sha}",
    ]


def test_comma_profiles_merge_in_order_in_documents(client: Any) -> None:
    merged = client.get("/payments-staging,production.json").get_json()
    # Each environment is a whole config: production's db.host (from base) wins too.
    assert merged["db"] == {"host": "db.internal", "pool": {"max": 50, "min": 2}}
    assert merged["servers"] == ["p1", "p2"]  # a later list replaces
    # Profiles add up, as in Spring: staging still has the toolbar production deleted.
    assert merged["debug"] == {"toolbar": True}
    reverse = client.get("/payments-production,staging.json").get_json()
    assert reverse["servers"] == ["a", "b", "c"]
    assert reverse["db"]["pool"]["max"] == 10


def test_profiles_that_are_not_environments_are_ignored_and_named(client: Any) -> None:
    response = client.get("/payments/production,kubernetes")
    assert response.status_code == 200
    assert response.headers["X-Gitconf-Ignored-Profiles"] == "kubernetes"
    doc = response.get_json()
    assert doc["profiles"] == ["production", "kubernetes"]
    assert len(doc["propertySources"]) == 1


@pytest.mark.parametrize(
    ("path", "status", "error", "words"),
    [
        ("/payments/kubernetes,cloud", 404, "unknown_environment", "known: staging"),
        ("/payments/,", 400, "bad_profiles", "names no environment"),
        ("/payments/production/no-such-tag", 404, "unknown_label", "tracks branch 'main'"),
        ("/payments-kubernetes.json", 404, "unknown_document", "services: api"),
        ("/payments.json", 404, "unknown_document", "as <service>-<environment>"),
    ],
)
def test_errors(client: Any, path: str, status: int, error: str, words: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.content_type == "application/json"
    assert code(response) == error
    assert words in response.get_json()["error"]["message"]


def test_etag_and_304(client: Any) -> None:
    first = client.get("/payments/production")
    again = client.get("/payments/production", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["X-Gitconf-Revision"] == first.headers["X-Gitconf-Revision"]
    doc = client.get("/payments-production.json")
    assert doc.headers["ETag"] != first.headers["ETag"]
    cached = client.get("/payments-production.json", headers={"If-None-Match": doc.headers["ETag"]})
    assert cached.status_code == 304


# -- documents ----------------------------------------------------------------------------
def test_json_and_yaml_documents_are_gitconfs_render(client: Any) -> None:
    render = client.get("/v1/config/production-eu/payments").get_json()
    assert "debug" not in render and "stripe" not in render["providers"]
    json_doc = client.get("/payments-production-eu.json")
    assert json_doc.content_type == "application/json"
    assert json_doc.get_json() == render
    for ext in ("yml", "yaml"):
        response = client.get(f"/payments-production-eu.{ext}")
        assert response.content_type == "text/plain; charset=utf-8"
        assert yaml.safe_load(response.data) == render


def test_properties_document(client: Any) -> None:
    response = client.get("/payments-production-eu.properties")
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.get_data(as_text=True) == "".join(
        f"{key}: {str(value).lower() if isinstance(value, bool) else value}\n"
        for key, value in EU_PAYMENTS_FLAT.items()
    )


def test_an_ambiguous_document_name_is_400_naming_both_readings(client: Any) -> None:
    response = client.get("/api-production-eu.json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "ambiguous_name"
    assert error["message"] == (
        "'api-production-eu' reads as service 'api' in environment 'production-eu' or "
        "service 'api-production' in environment 'eu'; ask for /<service>/<environment> "
        "instead, which names each part"
    )
    assert error["readings"] == [
        {"service": "api", "profiles": ["production-eu"]},
        {"service": "api-production", "profiles": ["eu"]},
    ]
    # Each reading stays reachable by the Environment route.
    assert client.get("/api/production-eu").status_code == 200
    assert client.get("/api-production/eu").status_code == 200
    assert client.get("/api-production-staging.json").get_json() == {"region": "us", "b": 2}


# -- labels -------------------------------------------------------------------------------
def test_labels_reach_branches_tags_and_commits(server: Server, repo: Path) -> None:
    client = server.app.test_client()
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "release/1")
    git(repo, "tag", "v1")
    second = commit_all(
        repo, "bigger pool", {"environments/production/payments.yaml": "db:\n  pool: {max: 99}\n"}
    )
    assert server.poller.run_once() == "published"

    def pool(path: str) -> Any:
        response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        if path.endswith(".json"):
            return response.get_json()["db"]["pool"]["max"]
        doc = response.get_json()
        return doc["version"], doc["label"], doc["propertySources"][0]["source"]["db.pool.max"]

    assert pool("/payments/production") == (second, None, 99)
    assert pool("/payments/production/main") == (second, "main", 99)
    assert pool("/payments/production/master") == (second, "master", 99)
    assert pool("/payments/production/release(_)1") == (first, "release/1", 50)
    assert pool(f"/payments/production/{first}") == (first, first, 50)
    assert pool(f"/payments/production/{first[:10]}") == (first, first[:10], 50)
    assert pool("/payments-production.json") == 99
    assert pool("/master/payments-production.json") == 99
    assert pool("/release(_)1/payments-production.json") == 50
    # A tag named like gitconf's /v1 prefix is still a label in the document route.
    assert pool("/v1/payments-production.json") == 50


def test_main_reaches_a_tracked_master_branch(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    repo = make_repo(tmp_path / "old", dict(FILES), branch="master")
    client = make_server(repo, branch="master").app.test_client()
    assert client.get("/payments/production/main").status_code == 200
    assert client.get("/payments/production/master").status_code == 200
    assert client.get("/main/payments-production.json").status_code == 200


def test_main_and_master_are_not_aliases_of_other_branches(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    repo = make_repo(tmp_path / "rel", dict(FILES), branch="release")
    client = make_server(repo, branch="release").app.test_client()
    assert client.get("/payments/production/release").status_code == 200
    response = client.get("/payments/production/master")
    assert response.status_code == 404
    assert code(response) == "unknown_label"


def test_an_invalid_revision_at_a_label_is_422(server: Server, repo: Path) -> None:
    client = server.app.test_client()
    commit_all(repo, "broken", {"base/payments.yaml": "a: [unclosed\n"})
    git(repo, "tag", "broken")
    # The mirror learns of the tag on the next poll, which rejects the head commit.
    assert server.poller.run_once() == "rejected"
    response = client.get("/payments/production/broken")
    assert response.status_code == 422
    assert code(response) == "invalid_revision"
    assert client.get("/payments/production/main").status_code == 200  # the last good


# -- names a request may not send ---------------------------------------------------------
LONG = "x" * (MAX_NAME_LENGTH + 1)


@pytest.mark.parametrize(
    ("path", "what"),
    [
        (f"/{LONG}/production", "application"),
        (f"/payments/production,{LONG}", "profiles"),
        (f"/payments/production/{LONG}", "label"),
        (f"/payments-{LONG}.json", "document"),
        (f"/{LONG}/payments-production.json", "label"),
    ],
)
def test_names_past_the_length_limit_are_400_naming_it(client: Any, path: str, what: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "name_too_long"
    assert error["limit"] == MAX_NAME_LENGTH
    assert error["message"].startswith(f"the {what} ")
    assert f"at most {MAX_NAME_LENGTH} characters" in error["message"]


def test_a_document_name_of_many_hyphens_is_answered_at_once(client: Any) -> None:
    # 16,000 hyphens took 10 s of the server's CPU to answer 404.
    started = time.process_time()
    response = client.get("/a" + "-," * 16000 + ".json")
    assert time.process_time() - started < 2.0
    assert response.status_code == 400
    assert code(response) == "name_too_long"
    # Below the limit, as many hyphens as fit are read and answered as before.
    started = time.process_time()
    response = client.get("/a" + "-," * (MAX_NAME_LENGTH // 2 - 3) + ".json")
    assert time.process_time() - started < 2.0
    # No service is `a`: an unknown application, whose profiles (after the last hyphen, as
    # Spring splits) name none.
    assert code(response) == "bad_profiles"


def test_repeated_profiles_are_read_once(client: Any, head: str) -> None:
    # 8,000 repeats of staging made a 19.5 MB answer of 8,000 property sources.
    many = ",".join(["staging", "production", "kubernetes"] * 30)
    response = client.get(f"/payments/{many}")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["profiles"] == ["staging", "production", "kubernetes"]
    assert [s["name"] for s in doc["propertySources"]] == [
        f"gitconf:production/payments@{head}",
        f"gitconf:staging/payments@{head}",
    ]
    assert response.headers["X-Gitconf-Ignored-Profiles"] == "kubernetes"
    assert client.get(f"/payments-{many}.json").get_json() == (
        client.get("/payments-staging,production.json").get_json()
    )


@pytest.mark.parametrize(
    "path", ["/payments/{}", "/payments/{}/main", "/payments-{}.json", "/main/payments-{}.yml"]
)
def test_more_profiles_than_the_limit_are_400_naming_it(client: Any, path: str) -> None:
    profiles = ",".join(["staging", *(f"p{i}" for i in range(MAX_PROFILES))])
    response = client.get(path.format(profiles))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "too_many_profiles"
    assert error["limit"] == MAX_PROFILES
    assert f"at most {MAX_PROFILES} distinct profiles" in error["message"]


@pytest.mark.parametrize(
    ("path", "what"),
    [
        # An ignored profile is named in a header, which cannot carry a CR or LF: it was 500.
        ("/payments/staging,x%0Ay", "profiles"),
        ("/payments/staging,x%0D%0AX-Injected:%20yes", "profiles"),
        ("/payments/sta%0Dging", "profiles"),
        ("/payments/staging,%7F", "profiles"),
        ("/payments/staging,x%C2%85", "profiles"),
        ("/pay%0Aments/staging", "application"),
        ("/payments/staging/ma%01in", "label"),
        ("/payments/staging/%09main", "label"),
        ("/payments-sta%0Aging.json", "document"),
        ("/ma%0Din/payments-staging.json", "label"),
    ],
)
def test_control_characters_in_names_are_400(client: Any, path: str, what: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_name"
    assert error["message"].startswith(f"the {what} ")
    assert "names are printable text" in error["message"]
    assert "limit" not in error


def test_a_name_past_the_limit_still_needs_a_token_first(secured: Any) -> None:
    assert secured.get(f"/payments/{LONG}").status_code == 401


# -- auth ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic Og=="}, 401),  # ":" from clients that always send Basic
        ({"Authorization": "Basic not base64!"}, 401),
        (basic("any", "wrong" * 8), 401),
        ({"Authorization": f"Bearer {'p' * 32}"}, 200),
        (basic("spring", "p" * 32), 200),  # the token as the Basic password
        (basic("", "p" * 32), 200),
        (basic("p" * 32, ""), 200),  # or as the user name, with no password
        ({"Authorization": f"Bearer {'s' * 32}"}, 403),
        (basic("spring", "s" * 32), 403),
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/payments/production-eu", "/payments-production-eu.json", "/main/payments-production.yml"],
)
def test_auth(secured: Any, path: str, headers: dict[str, str], status: int) -> None:
    response = secured.get(path, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 401:
        assert code(response) == "unauthorized"
    if status == 403:
        assert code(response) == "forbidden"


def test_scopes_apply_to_each_profile(secured: Any) -> None:
    staging = {"Authorization": f"Bearer {'s' * 32}"}
    assert secured.get("/payments/staging", headers=staging).status_code == 200
    response = secured.get("/payments/staging,production", headers=staging)
    assert response.status_code == 403
    assert "production/payments" in response.get_json()["error"]["message"]
    assert secured.get("/payments-staging,production.json", headers=staging).status_code == 403


def test_basic_empty_credentials_are_tolerated_without_tokens(client: Any) -> None:
    response = client.get("/payments/production", headers={"Authorization": "Basic Og=="})
    assert response.status_code == 200


# -- gitconf's own routes are never shadowed -----------------------------------------------
def test_gitconfs_routes_still_answer(client: Any) -> None:
    assert "environments" in client.get("/v1/environments").get_json()
    assert "poll" in client.get("/v1/status").get_json()
    assert "revisions" in client.get("/v1/revisions").get_json()
    assert client.get("/v1/config/production").get_json()["environment"] == "production"
    assert client.get("/v1/config/production/payments").get_json()["db"]["pool"]["max"] == 50
    assert client.get("/v1/config/production/payments/explain").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["status"] == "ready"
    assert client.get("/metrics").content_type.startswith("text/plain")
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nothing",
        "/v1/config",
        "/healthz/production",
        "/readyz/production",
        "/metrics/production",
        "/metrics/production/main",
        "/openapi.json/production",
        "/static/production/main",
    ],
)
def test_reserved_first_segments_never_reach_the_spring_routes(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert code(response) == "not_found"  # Flask's own 404, not a Spring route's answer


def _example(rule: str) -> str:
    """A path the rule matches: the first choice of an any() converter, else "x"."""
    path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", rule)
    return re.sub(r"<[^>]+>", "x", path)


def test_no_path_of_gitconfs_own_routes_reaches_a_spring_route(client: Any) -> None:
    # e.g. GET on the POST-only /v1/hooks/<provider> stays a 405 and does not fall through
    # to /<service>/<env>/<label>.
    adapter = client.application.url_map.bind("localhost")
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint.startswith("spring."):
            continue
        for method in ("GET", "POST", "PUT", "DELETE"):
            try:
                endpoint, _ = adapter.match(_example(rule.rule), method=method)
            except HTTPException:
                continue
            assert not endpoint.startswith("spring."), (rule.rule, method)


def test_every_first_segment_of_gitconfs_routes_is_reserved(client: Any) -> None:
    """A new gitconf route must add its first segment to RESERVED_SERVICES."""
    for rule in client.application.url_map.iter_rules():
        first = rule.rule.split("/")[1]
        if not rule.endpoint.startswith("spring.") and "<" not in first:
            assert first in RESERVED_SERVICES, rule.rule
    assert client.get("/static/production").status_code == 404


def test_the_routes_are_in_the_openapi_fragment() -> None:
    from gitconf.spring.openapi import PATHS

    assert "/{service}/{profiles}" in PATHS
    assert "/{label}/{service}-{profiles}.properties" in PATHS
    ids = [op["operationId"] for path in PATHS.values() for op in path.values()]
    assert len(ids) == len(set(ids)) == 10
    for template, item in PATHS.items():
        declared = {p["name"] for p in item["get"]["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", template)), template
