"""/v1/subscriptions over the Flask test client of a real Server on a real repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from gitconf.bootstrap import Server
from gitconf.signing import parse_secret
from tests.notify.conftest import subscribe

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_create_list_show_delete(client: Any) -> None:
    created = subscribe(
        client,
        "http://127.0.0.1:9/hooks",
        environments=["production*"],
        services=["payments"],
        name="payments",
    )
    assert created["id"].startswith("sub_")
    assert len(parse_secret(created["secret"])) == 32
    assert created["events"] == ["io.gitconf.config.changed"]
    assert created["include_config"] is False
    assert created["origin"] == "api"

    listed = client.get("/v1/subscriptions").get_json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0], "the secret is shown once, at creation"
    shown = client.get(f"/v1/subscriptions/{created['id']}")
    assert shown.status_code == 200
    assert shown.get_json()["environments"] == ["production*"]
    assert shown.get_json()["deliveries"]["pending"] == 0

    assert client.delete(f"/v1/subscriptions/{created['id']}").status_code == 204
    for method in (client.get, client.delete):
        gone = method(f"/v1/subscriptions/{created['id']}")
        assert gone.status_code == 404
        assert gone.get_json()["error"]["code"] == "unknown_subscription"
    assert client.get(f"/v1/subscriptions/{created['id']}/deliveries").status_code == 404
    assert client.get("/v1/subscriptions").get_json()["subscriptions"] == []


def test_a_given_secret_and_options_are_kept(client: Any) -> None:
    created = subscribe(
        client,
        "http://127.0.0.1:9/",
        secret=SECRET,
        events=["io.gitconf.config.changed", "io.gitconf.revision.rejected"],
        include_config=True,
    )
    assert created["secret"] == SECRET
    assert created["include_config"] is True
    assert created["events"][1] == "io.gitconf.revision.rejected"
    assert created["environments"] == ["*"] and created["services"] == ["*"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "url", "'url' is a required property"),
        ({"url": 5}, "url", "5 is not of type 'string'"),
        ({"url": "ftp://x/"}, "url", "does not match"),
        (
            {"url": "http://127.0.0.1/", "environments": "prod"},
            "environments",
            "is not of type 'array'",
        ),
        (
            {"url": "http://127.0.0.1/", "services": ["ok", ""]},
            "services[1]",
            "should be non-empty",
        ),
        ({"url": "http://127.0.0.1/", "secret": "hunter2"}, "secret", "does not match"),
        ({"url": "http://127.0.0.1/", "secret": "whsec_c2hvcnQ="}, "secret", "24 to 64 bytes"),
        ({"url": "http://127.0.0.1/", "events": ["io.gitconf.nope"]}, "events[0]", "is not one of"),
        (
            {"url": "http://127.0.0.1/", "include_config": "yes"},
            "include_config",
            "not of type 'boolean'",
        ),
        ({"url": "http://127.0.0.1/", "colour": "red"}, "colour", "'colour' was unexpected"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    client: Any, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post("/v1/subscriptions", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_subscription"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert message in error["message"]


def test_malformed_json_and_non_objects_are_400(client: Any) -> None:
    response = client.post("/v1/subscriptions", data=b"{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"
    response = client.post("/v1/subscriptions", json=["http://127.0.0.1/"])
    assert response.status_code == 400
    assert "must be a JSON object" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]:8080/", "link-local"),
        ("http://metadata.google.internal/", "cloud metadata"),
        ("http://nowhere.invalid/", "does not resolve"),
    ],
)
def test_unsafe_targets_are_refused_at_registration(client: Any, url: str, message: str) -> None:
    response = client.post("/v1/subscriptions", json={"url": url})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("target_refused", "url")
    assert message in error["message"]


def test_the_deny_list_applies_at_registration(notify_server: Callable[..., Server]) -> None:
    server = notify_server(subscribers={"deny": ["127.0.0.0/8"]})
    response = server.app.test_client().post("/v1/subscriptions", json={"url": "http://127.0.0.1/"})
    assert response.status_code == 400
    assert "denied by subscribers.deny" in response.get_json()["error"]["message"]


def test_unknown_ids_are_404_and_bad_queries_400(client: Any) -> None:
    assert client.get("/v1/subscriptions/sub_nope").status_code == 404
    assert client.get("/v1/subscriptions/sub_nope/deliveries").status_code == 404
    sub = subscribe(client, "http://127.0.0.1:9/")
    assert client.get(f"/v1/subscriptions/{sub['id']}/deliveries?limit=0").status_code == 400
    assert client.get(f"/v1/subscriptions/{sub['id']}/deliveries?state=lost").status_code == 400


def test_the_admin_scope_is_required_when_tokens_are_configured(
    notify_server: Callable[..., Server],
) -> None:
    tokens = [
        {"name": "ops", "token": "a" * 32, "scopes": ["admin"]},
        {"name": "reader", "token": "r" * 32, "scopes": ["read:*"]},
    ]
    client = notify_server(tokens=tokens).app.test_client()
    body = {"url": "http://127.0.0.1:9/"}
    assert client.post("/v1/subscriptions", json=body).status_code == 401
    reader = {"Authorization": "Bearer " + "r" * 32}
    denied = client.post("/v1/subscriptions", json=body, headers=reader)
    assert denied.status_code == 403
    assert "admin scope" in denied.get_json()["error"]["message"]
    assert client.get("/v1/subscriptions", headers=reader).status_code == 403
    admin = {"Authorization": "Bearer " + "a" * 32}
    created = client.post("/v1/subscriptions", json=body, headers=admin)
    assert created.status_code == 201
    assert client.get("/v1/subscriptions", headers=admin).status_code == 200


def test_the_openapi_document_has_the_subscription_routes(client: Any) -> None:
    doc = client.get("/openapi.json").get_json()
    assert {"post", "get"} <= set(doc["paths"]["/v1/subscriptions"])
    assert {"get", "delete"} <= set(doc["paths"]["/v1/subscriptions/{sub_id}"])
    assert "get" in doc["paths"]["/v1/subscriptions/{sub_id}/deliveries"]
    routes = {r.rule for r in client.application.url_map.iter_rules()}
    assert {"/v1/subscriptions", "/v1/subscriptions/<sub_id>/deliveries"} <= routes


@pytest.mark.parametrize("depth", [33, 1_000, 30_000])
def test_deeply_nested_json_is_400_before_it_is_parsed(client: Any, depth: int) -> None:
    body = '{"url": "http://127.0.0.1:9/", "name": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/v1/subscriptions", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "too_deep"
    assert error["message"] == (
        "the body nests arrays and objects more than 32 levels deep; a subscription is an "
        "object of strings and lists of strings (see gitconf's schemas/subscription.schema.json)"
    )
    assert client.get("/v1/subscriptions").get_json()["subscriptions"] == []


def test_brackets_in_strings_are_not_nesting(client: Any) -> None:
    name = '[{\\"[' * 50  # 150 openings, escaped quotes: all in one string
    body = '{"url": "http://127.0.0.1:9/", "name": "' + name + '"}'
    response = client.post("/v1/subscriptions", data=body, content_type="application/json")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == name.replace('\\"', '"')
    at_limit = '{"url": "http://127.0.0.1:9/", "name": ' + "[" * 31 + "]" * 31 + "}"
    response = client.post("/v1/subscriptions", data=at_limit, content_type="application/json")
    assert response.get_json()["error"]["code"] == "invalid_subscription", "parsed, then checked"


@pytest.mark.parametrize("limit", ["9" * 5000, "-1", "1e3", "0x10", "nan"])
def test_query_numbers_that_are_not_small_integers_are_400(client: Any, limit: str) -> None:
    sub = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"}).get_json()
    for path in (f"/v1/subscriptions/{sub['id']}/deliveries", "/v1/revisions"):
        response = client.get(path, query_string={"limit": limit})
        assert response.status_code == 400, (path, response.get_json())
        assert response.get_json()["error"]["code"] == "bad_limit"


def test_times_are_utc_on_a_postgresql_in_another_time_zone(
    pg_url: str, notify_server: Callable[..., Server]
) -> None:
    # PostgreSQL hands timestamptz back in the session's TimeZone; gitconf shows UTC, with a Z.
    url = sa.make_url(pg_url).update_query_dict({"options": "-c TimeZone=Europe/Berlin"})
    client = notify_server(database_url=url.render_as_string(hide_password=False)).app.test_client()
    created = subscribe(client, "http://127.0.0.1:9/hooks")
    [listed] = client.get("/v1/subscriptions").get_json()["subscriptions"]
    assert listed["created_at"].endswith("Z"), listed["created_at"]
    assert listed["created_at"] == created["created_at"]
