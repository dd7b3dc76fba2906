"""The dashboard never shows a secret's value: not to a reader, not to a token that may read
it in plaintext from the API. Where it was set is shown, as explain shows it."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from gitconf.bootstrap import Server
from gitconf.testing import make_repo
from tests.conftest import BASE_FILES
from tests.secrets.conftest import AgeKey, Sops
from tests.ui.conftest import login

PASSWORD = "hunter2-ui-5c1e9a7b"
TOKENS = [
    {"name": "reader", "token": "r" * 32, "scopes": ["read:*"]},
    {"name": "vault", "token": "s" * 32, "scopes": ["secrets:production/payments"]},
]


def test_a_secret_shows_where_it_was_set_never_its_value(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    (tmp_path / "sops").mkdir()
    sops = Sops(tmp_path / "sops", AgeKey(tmp_path / "key.txt"))
    encrypted = sops.encrypt(
        f"db:\n  pool: {{max: 50}}\n  password: {PASSWORD}\n", "--encrypted-regex", "^password$"
    )
    files: dict[str, str | bytes | None] = {
        **BASE_FILES,
        "environments/production/payments.yaml": encrypted,
    }
    repo = make_repo(tmp_path / "config", files)
    server = make_server(repo, tokens=TOKENS, secrets={"age_key_files": [str(sops.key.path)]})
    assert server.poller.run_once() == "published"
    for token in ("r" * 32, "s" * 32):
        client = server.app.test_client()
        assert login(client, token).status_code == 303
        for path in ("/ui/", "/ui/config/production/payments", "/ui/revisions"):
            page = client.get(path)
            assert page.status_code == 200, (path, page.get_data(as_text=True))
            assert PASSWORD not in page.get_data(as_text=True), path
        shown = html.unescape(client.get("/ui/config/production/payments").get_data(as_text=True))
        assert (
            '<code>db.password</code></th>\n        <td><span class="badge">secret</span>' in shown
        )
        assert "value came from encrypted (SOPS) files" in shown
    api = server.app.test_client().get(
        "/v1/config/production/payments", headers={"Authorization": "Bearer " + "s" * 32}
    )
    assert api.get_json()["db"]["password"] == PASSWORD  # the API does serve it to vault
