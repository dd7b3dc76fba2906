"""Secrets served by a real `gitconf serve`: plaintext only to the secrets: scope, nowhere else.

The repository's production overlay of payments is encrypted by the real sops binary; the
server decrypts it in its compile worker with the age key. A test then looks for the secret's
bytes in every place they must not be: the state dir, the store, the log, and the answers of
every route a token without the secrets: scope may call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.secrets.conftest import Sops

PASSWORD = "hunter2-a7f3c9e1d5b8"
NEW_PASSWORD = "correct-horse-4b2e8a"
READER, SECRETS, ADMIN = "r" * 32, "s" * 32, "a" * 32
SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {"db": {"type": "object", "properties": {
    "port": {"type": "integer"},
    "password": {"type": "string", "x-gitconf-secret": true}}}}
}
"""


def overlay(sops: Sops, password: str) -> bytes:
    return sops.encrypt(
        f"db:\n  pool: {{max: 50}}\n  password: {password}  # the production database\n",
        "--encrypted-regex",
        "^password$",
    )


@pytest.fixture
def served(tmp_path: Path, sops: Sops) -> Iterator[tuple[ServeProcess, Path]]:
    files: dict[str, str | bytes | None] = {**BASE_FILES, "schemas/payments.schema.json": SCHEMA}
    files["environments/production/payments.yaml"] = overlay(sops, PASSWORD)
    repo = make_repo(tmp_path / "config", files)
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "secrets": {"age_key_files": [str(sops.key.path)]},
                "tokens": [
                    {"name": "reader", "token": READER, "scopes": ["read:*"]},
                    {"name": "vault", "token": SECRETS, "scopes": ["secrets:production/payments"]},
                    {"name": "admin", "token": ADMIN, "scopes": ["admin"]},
                ],
            }
        )
    )
    with ServeProcess(repo, tmp_path / "state", config=config) as server:
        yield server, repo


def get(server: ServeProcess, path: str, token: str, **kwargs: Any) -> requests.Response:
    return server.get(path, headers={"Authorization": f"Bearer {token}", **kwargs})


def test_only_the_secrets_scope_reads_a_secret_in_plaintext(
    served: tuple[ServeProcess, Path],
) -> None:
    server, _ = served
    path = "/v1/config/production/payments"
    plain = get(server, path, SECRETS)
    assert plain.status_code == 200
    assert plain.json()["db"]["password"] == PASSWORD
    assert plain.headers["X-Gitconf-Secrets"] == "1"
    redacted = get(server, path, READER)
    assert redacted.status_code == 200
    assert "password" not in redacted.json()["db"]
    assert redacted.json()["db"]["pool"] == {"max": 50}
    assert redacted.headers["X-Gitconf-Redacted"] == "1"
    assert redacted.headers["ETag"] != plain.headers["ETag"]
    # The fast path remembers each token's reply: ask again, in every format.
    for _ in range(2):
        assert PASSWORD.encode() not in get(server, path, READER).content
        assert PASSWORD.encode() in get(server, path, SECRETS).content
        assert PASSWORD.encode() not in get(server, path + "?format=yaml", READER).content
        assert PASSWORD.encode() in get(server, path + "?format=env", SECRETS).content
    # secrets:production/payments does not read other services.
    assert get(server, "/v1/config/production/search", SECRETS).status_code == 403


def test_a_secret_appears_nowhere_a_reader_or_the_disk_could_see_it(
    served: tuple[ServeProcess, Path], sops: Sops, tmp_path: Path
) -> None:
    server, repo = served
    before = get(server, "/readyz", ADMIN).json()["revision"]
    sha = commit_all(
        repo,
        "rotate the password",
        {"environments/production/payments.yaml": overlay(sops, NEW_PASSWORD)},
    )
    wait_until(lambda: get(server, "/readyz", ADMIN).json()["revision"] == sha, what="published")
    plain = get(server, "/v1/config/production/payments", SECRETS).json()
    assert plain["db"]["password"] == NEW_PASSWORD
    seen = [
        get(server, "/v1/config/production/payments", READER),
        get(server, "/v1/config/production", READER),
        get(server, "/v1/config/production/payments/explain", ADMIN),
        get(server, "/v1/config/production/payments/explain", READER),
        get(server, f"/v1/diff?from={before}&to={sha}", ADMIN),
        get(server, "/v1/status", ADMIN),
        get(server, "/v1/revisions", ADMIN),
        get(server, "/payments/production", READER),
        get(server, "/payments-production.yml", READER),
        get(server, f"/v1/config/production/payments?ref={before}", READER),
    ]
    for reply in seen:
        assert reply.status_code == 200, (reply.url, reply.text)
        for secret in (PASSWORD, NEW_PASSWORD):
            assert secret.encode() not in reply.content, reply.url
    explained = {leaf["key"]: leaf for leaf in seen[2].json()["leaves"]}
    assert explained["db.password"]["value"] is None
    assert explained["db.password"]["secret"] is True
    assert explained["db.password"]["source"].startswith("environments/production/payments.yaml:")
    [change] = [c for c in seen[4].json()["changes"] if c["environment"] == "production"]
    assert change["changes"] == [
        {
            "key": "db.password",
            "status": "changed",
            "old": "<secret changed>",
            "new": "<secret changed>",
        }
    ]
    # Nothing on disk: the state dir (snapshot, store, clone objects are encrypted) and log.
    server.stop()
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file() and "repo.git" not in path.parts:
            data = path.read_bytes()
            for secret in (PASSWORD, NEW_PASSWORD):
                assert secret.encode() not in data, path
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in server.log()


def test_a_change_to_a_secret_alone_is_announced_on_the_watch(
    served: tuple[ServeProcess, Path], sops: Sops
) -> None:
    server, repo = served
    stream = requests.get(
        f"{server.url}/v1/watch?services=payments",
        headers={"Authorization": f"Bearer {READER}"},
        stream=True,
        timeout=30,
    )
    lines = stream.iter_lines(decode_unicode=True)
    assert next(lines).startswith("retry:")
    sha = commit_all(
        repo, "rotate", {"environments/production/payments.yaml": overlay(sops, NEW_PASSWORD)}
    )
    data = None
    for line in lines:
        if line.startswith("data: "):
            data = json.loads(line[6:])
            break
    stream.close()
    assert data is not None
    assert (data["environment"], data["revision"], data["changed"]) == (
        "production",
        sha,
        ["db.password"],
    )
    assert NEW_PASSWORD not in json.dumps(data)


def test_after_a_restart_secrets_come_back_without_being_persisted(
    served: tuple[ServeProcess, Path],
) -> None:
    server, _ = served
    server.stop()
    server.start()
    # Right after the restart the secret may still be loading (503 secrets_loading); then it
    # is served again, from the compile worker.
    reply = wait_until(
        lambda: (
            (r := get(server, "/v1/config/production/payments", SECRETS)).status_code == 200 and r
        ),
        timeout=30,
        what="the secrets loaded again",
    )
    assert reply.json()["db"]["password"] == PASSWORD
    assert "password" not in get(server, "/v1/config/production/payments", READER).json()["db"]


def test_a_secret_committed_in_plaintext_is_rejected_where_it_is(
    served: tuple[ServeProcess, Path],
) -> None:
    server, repo = served
    bad = commit_all(
        repo, "oops", {"base/payments.yaml": "db:\n  host: db.internal\n  password: plain-text-1\n"}
    )
    wait_until(
        lambda: any(
            r["revision"] == bad for r in get(server, "/v1/status", ADMIN).json()["rejected"]
        ),
        what="the rejection",
    )
    [rejected] = [
        r for r in get(server, "/v1/status", ADMIN).json()["rejected"] if r["revision"] == bad
    ]
    [problem] = [p for p in rejected["problems"] if "x-gitconf-secret" in p["message"]]
    assert (problem["path"], problem["line"], problem["key"]) == (
        "base/payments.yaml",
        3,
        "db.password",
    )


def test_a_tampered_or_undecryptable_file_rejects_the_commit_naming_it(
    served: tuple[ServeProcess, Path], sops: Sops
) -> None:
    server, repo = served
    encrypted = overlay(sops, NEW_PASSWORD).decode()
    # Flip one character of the ciphertext of the password.
    start = encrypted.index("ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
    flipped = encrypted[:start] + ("A" if encrypted[start] != "A" else "B") + encrypted[start + 1 :]
    bad = commit_all(repo, "tampered", {"environments/production/payments.yaml": flipped})
    wait_until(
        lambda: any(
            r["revision"] == bad for r in get(server, "/v1/status", ADMIN).json()["rejected"]
        ),
        what="the rejection",
    )
    [rejected] = [
        r for r in get(server, "/v1/status", ADMIN).json()["rejected"] if r["revision"] == bad
    ]
    assert rejected["problems"][0]["path"] == "environments/production/payments.yaml"
    assert (
        get(server, "/v1/config/production/payments", SECRETS).json()["db"]["password"] == PASSWORD
    )


def test_a_pinned_secret_is_served_in_plaintext_again_after_a_restart(
    served: tuple[ServeProcess, Path], sops: Sops
) -> None:
    server, repo = served
    first = get(server, "/readyz", ADMIN).json()["revision"]
    sha = commit_all(
        repo,
        "rotate the password",
        {"environments/production/payments.yaml": overlay(sops, NEW_PASSWORD)},
    )
    wait_until(lambda: get(server, "/readyz", ADMIN).json()["revision"] == sha, what="published")
    pin = requests.put(
        f"{server.url}/v1/environments/production/pin",
        json={"revision": first, "reason": "the new password is not rolled out"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=20,
    )
    assert pin.status_code == 200, pin.text
    path = "/v1/config/production/payments"
    assert get(server, path, SECRETS).json()["db"]["password"] == PASSWORD
    server.stop()
    server.start()

    def plaintext() -> Any:
        reply = get(server, path, SECRETS)
        return reply.status_code == 200 and reply.json()["db"].get("password")

    assert wait_until(plaintext, 20, what="the pinned secret after the restart") == PASSWORD
    assert get(server, path, SECRETS).headers["X-Gitconf-Revision"] == first
    reader = get(server, path, READER)
    assert reader.headers["X-Gitconf-Revision"] == first
    assert PASSWORD.encode() not in reader.content
    for place in server.state_dir.rglob("*"):
        if place.is_file():
            assert PASSWORD.encode() not in place.read_bytes(), place


def test_the_change_api_never_edits_an_encrypted_file_nor_writes_a_secret_in_plaintext(
    served: tuple[ServeProcess, Path],
) -> None:
    server, _ = served
    base = get(server, "/v1/config/production/payments", ADMIN).headers["X-Gitconf-Revision"]

    def change(**edit: Any) -> requests.Response:
        target = {"environment": "production", "service": "payments", **edit}
        return server.post(
            "/v1/changes",
            json={"base": base, "edits": [target], "dry_run": True},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )

    # The production overlay is the SOPS file: gitconf will not edit it.
    refused = change(set={"db.pool.max": 60})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "encrypted_layer"
    # A secret typed into another layer in plaintext is a problem at its line, not a commit.
    plaintext = change(set={"db.password": "typed-in-clear"}, layer="base/payments.yaml")
    assert plaintext.status_code == 422, plaintext.text
    assert "typed-in-clear" not in plaintext.text
    assert "base/payments.yaml" in plaintext.text
    # A change that makes the compile complain about the secret never quotes it: a mapping
    # under the encrypted password (a merge conflict), a schema error on an object holding it.
    for edit in (
        {"set": {"db": {"password": {"x": 1}}}, "layer": "base/payments.yaml"},
        {"set": {"db.port": "not a port"}, "layer": "environments/production/_all.yaml"},
    ):
        refused = change(**edit)
        assert refused.status_code == 422, refused.text
        assert PASSWORD not in refused.text
    # A change elsewhere in that config: the diff never shows the secret.
    ok = change(set={"db.port": 6432}, layer="base/payments.yaml")
    assert ok.status_code == 200, ok.text
    assert PASSWORD not in ok.text
