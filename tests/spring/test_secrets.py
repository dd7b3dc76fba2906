"""Secrets on the Spring routes: plaintext only to the secrets: scope, whoever asked first.

The layers are encrypted by the real sops binary; the server decrypts them with the age key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gitconf.bootstrap import Server
from gitconf.testing import make_repo
from tests.secrets.conftest import AgeKey, Sops
from tests.spring.conftest import FILES, build_server

PROD_PASSWORD = "prod-pw-3c1e9a7b"
BASE_PASSWORD = "base-pw-8d2f4e6a"
READER, VAULT, PROD_VAULT = "r" * 32, "v" * 32, "q" * 32
TOKENS = [
    {"name": "reader", "token": READER, "scopes": ["read:*"]},
    {"name": "vault", "token": VAULT, "scopes": ["secrets:*/payments"]},
    {"name": "prod-vault", "token": PROD_VAULT, "scopes": ["read:*", "secrets:production"]},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("spring-secrets")
    (root / "sops").mkdir()
    key = AgeKey(root / "key.txt")
    sops = Sops(root / "sops", key)
    files = dict(FILES)
    files["environments/production/payments.yaml"] = sops.encrypt(
        f"db:\n  password: {PROD_PASSWORD}\n", "--encrypted-regex", "^password$"
    )
    files["base/payments.yaml"] = sops.encrypt(
        f"db:\n  host: db.internal\n  password: {BASE_PASSWORD}\n",
        "--encrypted-regex",
        "^password$",
    )
    repo = make_repo(root / "config", files)
    made = build_server(
        repo, root / "state", tokens=TOKENS, secrets={"age_key_files": [str(key.path)]}
    )
    yield made
    made.engine.dispose()


def get(server: Server, path: str, token: str) -> Any:
    response = server.app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/payments/production", "/payments-production.json", "/payments-production.yml"]
)
def test_a_body_built_for_the_secrets_scope_is_never_served_to_another_token(
    server: Server, path: str
) -> None:
    assert PROD_PASSWORD in get(server, path, VAULT)  # built (and kept) first, in plaintext
    assert PROD_PASSWORD not in get(server, path, READER)
    assert PROD_PASSWORD in get(server, path, VAULT)


@pytest.mark.parametrize("path", ["/payments/default", "/payments-default.properties"])
def test_the_base_layers_secrets_need_the_secrets_scope_in_every_environment(
    server: Server, path: str
) -> None:
    assert BASE_PASSWORD in get(server, path, VAULT)
    assert BASE_PASSWORD not in get(server, path, READER)
    # secrets:production covers production's config, not the base layers of every one.
    body = get(server, path, PROD_VAULT)
    assert BASE_PASSWORD not in body
    assert "db.internal" in body  # the rest of the base layers is served
