"""The scope matrix: every route of a real `gitconf serve`, with a token of each scope kind,
allowed or refused. A route added without a row here fails test_the_matrix_covers_every_route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gitconf.bootstrap import build
from gitconf.server.openapi import HOST_ROUTES, flask_routes
from gitconf.settings import load_settings
from gitconf.testing import git, make_repo
from gitconf.testing.server import ServeProcess
from tests.conftest import BASE_FILES

SCOPES = {
    "read": "read:production/payments",
    "other": "read:staging",
    "write": "write:production*/payments",
    "secrets": "secrets:production/payments",
    "release": "release:production",
    "admin": "admin",
}
KINDS = ["none", *SCOPES]


def token(kind: str) -> str:
    return f"{kind}-token-for-the-matrix"


CHANGE = {"edits": [{"environment": "production", "service": "payments", "set": {"db.pool.max": 3}}], "dry_run": True}  # fmt: skip
READS = {"none": 401, "read": 200, "other": 403, "write": 200, "secrets": 200, "release": 403, "admin": 200}  # fmt: skip
LISTS = {"none": 401, **{kind: 200 for kind in SCOPES}}  # filtered by the scopes, never refused
OPEN = {kind: 200 for kind in KINDS}
ADMIN_ONLY = {"none": 401, **{kind: 403 for kind in SCOPES}}
RELEASE = ADMIN_ONLY  # release:production or admin, each answered past the scopes below
PIN = {"revision": "{head}", "reason": "the matrix"}
PAGES = {"none": 303, **{kind: 200 for kind in SCOPES}}  # each page shows what the scopes allow
FORM = "form"  # an HTML form body (without the CSRF token)

# (method, route template, concrete path, body, expected status per token kind)
MATRIX: list[tuple[str, str, str, Any, dict[str, int]]] = [
    ("GET", "/v1/config/{env}/{service}", "/v1/config/production/payments", None, READS),
    ("GET", "/v1/config/{env}", "/v1/config/production", None, READS),
    ("GET", "/v1/config/{env}/{service}/explain", "/v1/config/production/payments/explain", None, READS),
    ("GET", "/healthz", "/healthz", None, OPEN),
    ("GET", "/readyz", "/readyz", None, OPEN),
    ("GET", "/metrics", "/metrics", None, OPEN),
    ("GET", "/openapi.json", "/openapi.json", None, OPEN),
    ("GET", "/v1/environments", "/v1/environments", None, LISTS),
    ("GET", "/v1/status", "/v1/status", None, LISTS),
    ("GET", "/v1/revisions", "/v1/revisions", None, LISTS),
    ("GET", "/v1/diff", "/v1/diff?from={head}&to={head}", None, LISTS),
    ("GET", "/v1/watch", "/v1/watch?environments=production&services=payments", None, READS),
    # Hooks are authenticated by the Git host's signature, not by a token: unconfigured, 404.
    ("POST", "/v1/hooks/{provider}", "/v1/hooks/github", None, {kind: 404 for kind in KINDS}),
    ("GET", "/{service}/{profiles}", "/payments/production", None, READS),
    ("GET", "/{service}/{profiles}/{label}", "/payments/production/main", None, READS),
    ("GET", "/{document}", "/payments-production.yml", None, READS),
    ("GET", "/{label}/{document}", "/main/payments-production.yml", None, READS),
    ("GET", "/v1/subscriptions", "/v1/subscriptions", None, {**ADMIN_ONLY, "admin": 200}),
    ("POST", "/v1/subscriptions", "/v1/subscriptions", {"url": "http://127.0.0.1:9/hook"}, {**ADMIN_ONLY, "admin": 201}),
    ("GET", "/v1/subscriptions/{sub_id}", "/v1/subscriptions/sub_unknown", None, {**ADMIN_ONLY, "admin": 404}),
    ("DELETE", "/v1/subscriptions/{sub_id}", "/v1/subscriptions/sub_unknown", None, {**ADMIN_ONLY, "admin": 404}),
    ("GET", "/v1/subscriptions/{sub_id}/deliveries", "/v1/subscriptions/sub_unknown/deliveries", None, {**ADMIN_ONLY, "admin": 404}),
    ("POST", "/v1/changes", "/v1/changes", CHANGE, {**READS, "read": 403, "secrets": 403, "write": 200}),
    ("GET", "/v1/audit", "/v1/audit", None, {**ADMIN_ONLY, "admin": 200}),
    # Past the scopes, pinning the head itself is a 409, unpinning what is not pinned a 404.
    ("PUT", "/v1/environments/{env}/pin", "/v1/environments/production/pin", PIN, RELEASE | {"release": 409, "admin": 409}),
    ("DELETE", "/v1/environments/{env}/pin", "/v1/environments/production/pin", None, RELEASE | {"release": 404, "admin": 404}),
    ("GET", "/v1/environments/{env}/pin", "/v1/environments/production/pin", None, {**READS, "release": 200}),
    # No rollout was ever made here: 404 past the scopes.
    ("GET", "/v1/rollouts/{env}", "/v1/rollouts/production", None, {**READS, "read": 404, "write": 404, "secrets": 404, "release": 404, "admin": 404}),
    ("POST", "/v1/rollouts/{env}/{action}", "/v1/rollouts/production/promote", None, RELEASE | {"release": 404, "admin": 404}),
    # The dashboard: without a token, its pages send to the login form (303); its forms take
    # a CSRF token before anything else (400 without one: tests/ui covers them signed in, and
    # the change form's scopes are the change API's, above).
    ("GET", "/ui/", "/ui/", None, PAGES),
    ("GET", "/ui/login", "/ui/login", None, OPEN),
    ("POST", "/ui/login", "/ui/login", FORM, {kind: 400 for kind in KINDS}),
    ("POST", "/ui/logout", "/ui/logout", FORM, {kind: 400 for kind in KINDS}),
    ("GET", "/ui/config/{env}/{service}", "/ui/config/production/payments", None, {**READS, "none": 303}),
    ("GET", "/ui/revisions", "/ui/revisions", None, PAGES),
    ("GET", "/ui/diff", "/ui/diff?from={head}&to={head}", None, PAGES),
    ("GET", "/ui/subscriptions", "/ui/subscriptions", None, {**ADMIN_ONLY, "none": 303, "admin": 200}),
    ("GET", "/ui/releases", "/ui/releases", None, PAGES),
    ("GET", "/ui/audit", "/ui/audit", None, {**ADMIN_ONLY, "none": 303, "admin": 200}),
    ("GET", "/ui/change", "/ui/change", None, PAGES),
    ("POST", "/ui/change", "/ui/change", FORM, {**{kind: 400 for kind in KINDS}, "none": 303}),
    ("GET", "/ui/static/{filename}", "/ui/static/gitconf.css", None, OPEN),
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str, Path]]:
    tmp = tmp_path_factory.mktemp("matrix")
    work = make_repo(tmp / "work", dict(BASE_FILES))
    bare = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(work), str(bare))
    tokens = [{"name": kind, "token": token(kind), "scopes": [s]} for kind, s in SCOPES.items()]
    config = tmp / "server.yaml"
    config.write_text(yaml.safe_dump({"tokens": tokens}))
    with ServeProcess(bare, tmp / "state", config=config, poll_interval=600) as server:
        yield server, git(bare, "rev-parse", "main"), config


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [pytest.param(m, p, b, e, id=f"{m} {r}") for m, r, p, b, e in MATRIX],
)
def test_scope_matrix(
    served: tuple[ServeProcess, str, Path],
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
    kind: str,
) -> None:
    server, head, _ = served
    headers = {} if kind == "none" else {"Authorization": f"Bearer {token(kind)}"}
    if isinstance(body, dict) and "edits" in body:
        body = {**body, "base": head}
    if isinstance(body, dict) and body.get("revision") == "{head}":
        body = {**body, "revision": head}
    form = {"token": token("admin")} if body == FORM else None
    with requests.request(
        method, server.url + path.format(head=head), json=None if form else body, data=form,
        headers=headers, timeout=10, allow_redirects=False,
        stream=True,  # /v1/watch streams: the status line is enough
    ) as reply:  # fmt: skip
        assert reply.status_code == expected[kind], (kind, method, path, reply.text[:300])


def test_the_matrix_covers_every_route(
    served: tuple[ServeProcess, str, Path], tmp_path: Path
) -> None:
    server, _, config = served
    settings = load_settings({"repo": server.repo, "state_dir": str(tmp_path / "s")}, environ={}, config_file=str(config))  # fmt: skip
    built = build(settings, environ={})
    try:
        served_routes = {
            (method, rule)
            for rule, methods in [*flask_routes(built.app), *HOST_ROUTES]
            for method in methods
            if method not in ("HEAD", "OPTIONS")
        }
    finally:
        built.stop()
    assert served_routes == {(m, r) for m, r, *_ in MATRIX}
