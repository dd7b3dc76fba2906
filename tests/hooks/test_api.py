"""POST /v1/hooks/<provider> through the Flask test client, on a real Server and repository."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

import gitconf.jobs.poll
from gitconf.bootstrap import Server
from gitconf.hooks.openapi import PATHS
from gitconf.testing import git
from gitconf.testing.server import wait_until
from tests.hooks.payloads import (
    SECRETS,
    VARIANTS,
    hex_hmac,
    hooks_settings,
    provider_of,
    push_event,
    signature_headers,
    signed_push,
    standard_headers,
)

ZERO = "0" * 40
BEFORE = "1" * 40
MAIN = "refs/heads/main"


@pytest.fixture
def server(repo: Path, make_server: Callable[..., Server]) -> Server:
    return make_server(repo, hooks=hooks_settings())


@pytest.fixture
def polls(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every poll the hooks asked for."""
    asked: list[str] = []
    monkeypatch.setattr(server.poller, "request", lambda: asked.append("poll"))
    return asked


@pytest.fixture
def client(server: Server) -> Any:
    return server.app.test_client()


def post(client: Any, variant: str, headers: dict[str, str], body: bytes, **kw: Any) -> Any:
    return client.post(f"/v1/hooks/{provider_of(variant)}", data=body, headers=headers, **kw)


def counted(server: Server, provider: str, outcome: str) -> float:
    value = server.metrics.registry.get_sample_value(
        "gitconf_hooks_received_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


def error_code(response: Any) -> str:
    code: str = response.get_json()["error"]["code"]
    return code


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_signed_push_to_the_branch_asks_for_a_poll(
    variant: str, repo: Path, server: Server, client: Any, polls: list[str]
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    headers, body = signed_push(variant, MAIN, BEFORE, head)
    response = post(client, variant, headers, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"accepted": True, "ref": MAIN, "after": head}
    assert polls == ["poll"]
    assert counted(server, provider_of(variant), "accepted") == 1


def _bad_signatures(variant: str, body: bytes) -> dict[str, dict[str, str]]:
    good = signature_headers(variant, body)
    if variant == "generic":
        other = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
        signature = good["webhook-signature"]
        return {
            "missing": {},
            "empty": {name: "" for name in good},
            "wrong": standard_headers(other, body),
            "truncated": {**good, "webhook-signature": signature[:-4]},
            "unsigned-id": {**good, "webhook-id": good["webhook-id"] + "x"},
        }
    return {
        "missing": {},
        "empty": {name: "" for name in good},
        "wrong": signature_headers(variant, body, secret=SECRETS[provider_of(variant)] + "x"),
        "truncated": {name: value[:-1] for name, value in good.items()},
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "wrong", "truncated"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_bad_signature_is_401_and_no_poll(
    variant: str, kind: str, server: Server, client: Any, polls: list[str]
) -> None:
    event, body = push_event(variant, MAIN, BEFORE, "2" * 40)
    headers = {"Content-Type": "application/json", **event, **_bad_signatures(variant, body)[kind]}
    response = post(client, variant, headers, body)
    assert response.status_code == 401
    assert error_code(response) == "bad_signature"
    assert polls == []
    assert counted(server, provider_of(variant), "unauthorized") == 1


def test_the_signature_covers_the_id_and_the_body(client: Any, polls: list[str]) -> None:
    _, body = push_event("generic", MAIN, BEFORE, "2" * 40)
    headers = _bad_signatures("generic", body)["unsigned-id"]
    assert post(client, "generic", headers, body).status_code == 401
    headers = signature_headers("github", body)
    response = post(client, "github", {"X-GitHub-Event": "push", **headers}, body + b" ")
    assert response.status_code == 401
    assert "X-Hub-Signature-256 does not match the body" in response.get_json()["error"]["message"]
    assert polls == []


@pytest.mark.parametrize(
    "ref, deleted, reason",
    [
        ("refs/heads/dev", False, "refs/heads/dev is not the tracked branch"),
        ("refs/tags/v1.0.0", False, "refs/tags/v1.0.0 is a tag"),
        (MAIN, True, "refs/heads/main was deleted"),
    ],
    ids=["other-branch", "tag", "deleted"],
)
@pytest.mark.parametrize("variant", VARIANTS)
def test_another_ref_is_acknowledged_and_ignored(
    variant: str, ref: str, deleted: bool, reason: str, client: Any, polls: list[str]
) -> None:
    headers, body = signed_push(
        variant, ref, BEFORE, ZERO if deleted else "2" * 40, deleted=deleted
    )
    response = post(client, variant, headers, body)
    assert response.status_code == 200
    assert reason in response.get_json()["ignored"]
    assert polls == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_oversize_body_is_413(
    variant: str, repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo, hooks={**hooks_settings(), "max_body": 1024})
    asked: list[str] = []
    monkeypatch.setattr(server.poller, "request", lambda: asked.append("poll"))
    event, body = push_event(variant, MAIN, BEFORE, "2" * 40)
    doc = json.loads(body)
    doc["padding"] = "x" * 1024
    body = json.dumps(doc).encode()
    headers = {"Content-Type": "application/json", **event, **signature_headers(variant, body)}
    response = post(server.app.test_client(), variant, headers, body)
    assert response.status_code == 413
    assert error_code(response) == "body_too_large"
    assert "hooks.max_body" in response.get_json()["error"]["message"]
    assert asked == []
    assert counted(server, provider_of(variant), "too_large") == 1


class Endless(io.RawIOBase):
    """A request body that never ends, counting what was read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"x" * size
        self.read_bytes += size
        return size


def test_a_body_without_length_is_read_no_further_than_the_limit(
    server: Server, polls: list[str]
) -> None:
    environ = EnvironBuilder(
        path="/v1/hooks/github",
        method="POST",
        headers=[("X-GitHub-Event", "push"), ("Transfer-Encoding", "chunked")],
    ).get_environ()
    stream = Endless()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True  # as granian marks a de-chunked stream
    body, status, _ = run_wsgi_app(server.app.wsgi_app, environ, buffered=True)
    assert status.startswith("413")
    assert json.loads(b"".join(body))["error"]["code"] == "body_too_large"
    assert 5 * 1024 * 1024 < stream.read_bytes <= 5 * 1024 * 1024 + 65536
    assert polls == []


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "body, code",
    [
        (b"not json {", "malformed_body"),
        (b"\xff\xfe", "malformed_body"),
        (b"[1, 2]", "malformed_body"),
        (b"", "malformed_body"),
    ],
    ids=["text", "binary", "list", "empty"],
)
def test_a_malformed_body_is_400(
    variant: str, body: bytes, code: str, server: Server, client: Any, polls: list[str]
) -> None:
    event, _ = push_event(variant, MAIN, BEFORE, "2" * 40)
    headers = {"Content-Type": "application/json", **event, **signature_headers(variant, body)}
    response = post(client, variant, headers, body)
    assert response.status_code == 400
    assert error_code(response) == code
    assert polls == []
    assert counted(server, provider_of(variant), "malformed") == 1


@pytest.mark.parametrize("depth", [65, 5_000])
def test_a_deeply_nested_body_is_400_saying_so(
    depth: int, server: Server, client: Any, polls: list[str]
) -> None:
    body = b'{"ref": "refs/heads/main", "x": ' + b"[" * depth + b"]" * depth + b"}"
    headers = {
        "Content-Type": "application/json",
        **signed_push("github", MAIN, BEFORE, "2" * 40)[0],
    }
    headers.update(signature_headers("github", body))
    response = post(client, "github", headers, body)
    assert response.status_code == 400
    assert error_code(response) == "malformed_body"
    assert response.get_json()["error"]["message"] == (
        "the body nests arrays and objects more than 64 levels deep; a push event from a Git "
        "host nests about 10"
    )
    assert polls == []


@pytest.mark.parametrize(
    "variant, event, doc",
    [
        ("github", {"X-GitHub-Event": "push"}, {"after": "2" * 40}),
        ("bitbucket-cloud", {"X-Event-Key": "repo:push"}, {"push": {"changes": [{}]}}),
        ("generic", {}, {"ref": 42}),
    ],
)
def test_a_push_without_its_ref_is_400(
    variant: str, event: dict[str, str], doc: dict[str, Any], client: Any, polls: list[str]
) -> None:
    body = json.dumps(doc).encode()
    response = post(client, variant, {**event, **signature_headers(variant, body)}, body)
    assert response.status_code == 400
    assert error_code(response) == "malformed_payload"
    assert polls == []


def test_unsigned_garbage_is_401_not_400(client: Any, polls: list[str]) -> None:
    response = post(client, "github", {"X-GitHub-Event": "push"}, b"not json")
    assert response.status_code == 401


def test_a_provider_without_a_secret_is_off(repo: Path, make_server: Callable[..., Server]) -> None:
    server = make_server(repo, hooks={"github": {"secret": "s3cret"}})
    client = server.app.test_client()
    response = client.post("/v1/hooks/gitlab", data=b"{}", headers={"X-Gitlab-Token": "s3cret"})
    assert response.status_code == 404
    assert error_code(response) == "hook_disabled"
    assert "hooks: {gitlab: {secret_env: NAME}}" in response.get_json()["error"]["message"]
    assert counted(server, "gitlab", "disabled") == 1
    assert client.post("/v1/hooks/subversion", data=b"{}").status_code == 404
    no_hooks = make_server(repo).app.test_client()
    assert no_hooks.post("/v1/hooks/github", data=b"{}").status_code == 404


def test_only_post(client: Any) -> None:
    for method in ("get", "put", "delete"):
        response = getattr(client, method)("/v1/hooks/github")
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
        assert error_code(response) == "method_not_allowed"


def test_secret_from_the_environment(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = {"github": {"secret_env": "GH_HOOK_SECRET"}}
    server = make_server(repo, environ={"GH_HOOK_SECRET": "from-env"}, hooks=hooks)
    monkeypatch.setattr(server.poller, "request", lambda: None)
    _, body = push_event("github", MAIN, BEFORE, "2" * 40)
    headers = {"X-GitHub-Event": "push", **signature_headers("github", body, secret="from-env")}
    assert (
        server.app.test_client().post("/v1/hooks/github", data=body, headers=headers).status_code
        == 202
    )


def test_a_missing_secret_variable_is_503_with_what_to_do(
    repo: Path, make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(repo, hooks={"github": {"secret_env": "GH_HOOK_SECRET"}})
    assert "'GH_HOOK_SECRET', which is not set" in caplog.text
    response = server.app.test_client().post("/v1/hooks/github", data=b"{}")
    assert response.status_code == 503
    assert response.get_json()["error"] == {
        "code": "hook_secret_missing",
        "message": "hooks.github.secret_env names 'GH_HOOK_SECRET', which is not set in the "
        "server's environment: set it and restart gitconf",
    }
    assert counted(server, "github", "misconfigured") == 1


def test_a_generic_secret_that_is_not_base64_is_503(
    repo: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(repo, hooks={"generic": {"secret": "whsec_a"}})
    response = server.app.test_client().post("/v1/hooks/generic", data=b"{}")
    assert response.status_code == 503
    assert error_code(response) == "hook_secret_invalid"
    assert "whsec_" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "variant, event",
    [("github", {"X-GitHub-Event": "ping"}), ("bitbucket-dc", {"X-Event-Key": "diagnostics:ping"})],
)
def test_ping(
    variant: str, event: dict[str, str], server: Server, client: Any, polls: list[str]
) -> None:
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    response = post(client, variant, {**event, **signature_headers(variant, body)}, body)
    assert response.status_code == 200
    assert response.get_json()["ping"] == "ok"
    assert polls == []
    assert counted(server, provider_of(variant), "ping") == 1


@pytest.mark.parametrize(
    "variant, event",
    [
        ("github", {"X-GitHub-Event": "issues"}),
        ("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}),
        ("gitea", {"X-Gitea-Event": "pull_request"}),
        ("bitbucket-cloud", {"X-Event-Key": "pullrequest:created"}),
    ],
)
def test_unknown_events_are_acknowledged_and_ignored(
    variant: str, event: dict[str, str], client: Any, polls: list[str]
) -> None:
    body = b'{"action": "opened"}'
    response = post(client, variant, {**event, **signature_headers(variant, body)}, body)
    assert response.status_code == 200
    assert "events are not pushes" in response.get_json()["ignored"]
    assert polls == []


def test_a_replayed_webhook_id_is_refused(server: Server, client: Any, polls: list[str]) -> None:
    headers, body = signed_push("generic", MAIN, BEFORE, "2" * 40)
    assert post(client, "generic", headers, body).status_code == 202
    response = post(client, "generic", headers, body)
    assert response.status_code == 409
    assert error_code(response) == "replayed"
    assert polls == ["poll"]
    assert counted(server, "generic", "replayed") == 1


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_stale_or_future_timestamp_is_401(offset: int, client: Any, polls: list[str]) -> None:
    _, body = push_event("generic", MAIN, BEFORE, "2" * 40)
    headers = standard_headers(SECRETS["generic"], body, at=time.time() + offset)
    response = post(client, "generic", headers, body)
    assert response.status_code == 401
    assert "beyond 300s" in response.get_json()["error"]["message"]
    assert polls == []


def test_generic_without_a_ref_just_polls(client: Any, polls: list[str]) -> None:
    body = b"{}"
    response = post(client, "generic", standard_headers(SECRETS["generic"], body), body)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": True, "ref": None, "after": None}
    assert polls == ["poll"]


def test_gitlab_signing_token(
    repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    signing = SECRETS["generic"]
    server = make_server(repo, hooks={"gitlab": {"secret": signing}})
    asked: list[str] = []
    monkeypatch.setattr(server.poller, "request", lambda: asked.append("poll"))
    client = server.app.test_client()
    event, body = push_event("gitlab", MAIN, BEFORE, "2" * 40)
    headers = {**event, **standard_headers(signing, body)}
    assert post(client, "gitlab", headers, body).status_code == 202
    assert post(client, "gitlab", headers, body).status_code == 409
    forged = {**event, **standard_headers(signing, b"{}"), "X-Gitlab-Token": signing}
    assert post(client, "gitlab", forged, body).status_code == 401
    # Without the Standard Webhooks headers, the secret is compared as a secret token.
    assert post(client, "gitlab", {**event, "X-Gitlab-Token": signing}, body).status_code == 202
    assert post(client, "gitlab", {**event, "X-Gitlab-Token": "nope"}, body).status_code == 401
    assert asked == ["poll", "poll"]


@pytest.mark.parametrize(
    "signatures, status",
    [
        ({"X-Gitea-Signature": "", "X-Forgejo-Signature": "good"}, 202),
        ({"X-Gogs-Signature": "good"}, 202),
        ({"X-Gitea-Signature": "", "X-Gogs-Signature": ""}, 401),
        ({"X-Forgejo-Signature": "", "X-Hub-Signature-256": "sha256=good"}, 401),
    ],
)
def test_gitea_forgejo_and_gogs_headers(
    signatures: dict[str, str], status: int, client: Any, polls: list[str]
) -> None:
    headers, body = push_event("gitea", MAIN, BEFORE, "2" * 40)
    good = hex_hmac(SECRETS["gitea"], body)
    headers.update({name: value.replace("good", good) for name, value in signatures.items()})
    assert post(client, "gitea", headers, body).status_code == status


def test_form_encoded_payload(client: Any, polls: list[str]) -> None:
    _, payload = push_event("github", MAIN, BEFORE, "2" * 40)
    body = urllib.parse.urlencode({"payload": payload.decode()}).encode()
    headers = {
        "X-GitHub-Event": "push",
        "Content-Type": "application/x-www-form-urlencoded",
        **signature_headers("github", body),
    }
    assert post(client, "github", headers, body).status_code == 202
    assert polls == ["poll"]


def test_metrics_and_status(server: Server, client: Any, polls: list[str]) -> None:
    headers, body = signed_push("github", MAIN, BEFORE, "2" * 40)
    post(client, "github", headers, body)
    post(client, "github", {"X-GitHub-Event": "push"}, body)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gitconf_hooks_received_total{outcome="accepted",provider="github"} 1.0' in metrics
    assert 'gitconf_hooks_received_total{outcome="unauthorized",provider="github"} 1.0' in metrics
    hooks = client.get("/v1/status").get_json()["hooks"]
    assert hooks["github"]["state"] == "on"
    assert hooks["github"]["last"]["outcome"] == "unauthorized"
    assert hooks["github"]["last"]["status"] == 401
    assert hooks["gitlab"] == {"state": "on", "last": None}


def test_a_burst_makes_one_poll_and_a_hook_during_a_poll_exactly_one_more(
    server: Server, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    gate.set()
    started: list[float] = []
    finished: list[float] = []

    def slow_tick(ctx: Any) -> str:
        started.append(time.monotonic())
        gate.wait(20)
        finished.append(time.monotonic())
        return "unchanged"

    monkeypatch.setattr(gitconf.jobs.poll, "tick", slow_tick)
    server.start()
    wait_until(lambda: len(finished) == 1, what="the first, scheduled poll")
    gate.clear()
    headers, body = signed_push("github", MAIN, BEFORE, "2" * 40)
    assert post(client, "github", headers, body).status_code == 202
    wait_until(lambda: len(started) == 2, what="the poll the hook asked for")
    for _ in range(20):  # a burst while that poll runs
        headers, body = signed_push("github", MAIN, BEFORE, "2" * 40)
        assert post(client, "github", headers, body).status_code == 202
    gate.set()
    wait_until(lambda: len(finished) == 3, what="exactly one more poll after the burst")
    # Nothing more is pending: the burst was one request, the last hook was not lost.
    assert not server.poller._wanted.is_set()
    assert len(started) == 3


def test_openapi_fragment_documents_every_status() -> None:
    operation = PATHS["/v1/hooks/{provider}"]["post"]
    assert set(operation["responses"]) == {
        "200", "202", "400", "401", "404", "405", "409", "413", "503"
    }  # fmt: skip
    assert operation["parameters"][0]["schema"]["enum"] == [
        "github", "gitlab", "gitea", "bitbucket", "generic"
    ]  # fmt: skip
    assert operation["security"] == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_push_to_a_label_branch_polls_at_once(
    variant: str, repo: Path, make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(repo, hooks=hooks_settings(), spring={"labels": ["release/*"]})
    asked: list[str] = []
    monkeypatch.setattr(server.poller, "request", lambda: asked.append("poll"))
    client = server.app.test_client()
    headers, body = signed_push(variant, "refs/heads/release/1", BEFORE, "2" * 40)
    response = post(client, variant, headers, body)
    assert response.status_code == 202
    assert response.get_json()["ref"] == "refs/heads/release/1"
    assert asked == ["poll"]
    headers, body = signed_push(variant, "refs/heads/dev", BEFORE, "2" * 40)
    assert post(client, variant, headers, body).status_code == 200  # outside the globs
    assert asked == ["poll"]
