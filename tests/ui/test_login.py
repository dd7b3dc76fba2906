"""Logging in with a token, the session cookie, CSRF, and pages filtered by the token's scopes."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from gitconf.bootstrap import Server
from gitconf.ui.session import COOKIE
from tests.ui.conftest import ADMIN, PROD, History, csrf_of, login


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def cookie_header(response: Any) -> str:
    found = [v for v in response.headers.getlist("Set-Cookie") if v.startswith(COOKIE + "=")]
    assert len(found) == 1, response.headers
    return found[0]


def test_a_page_without_a_session_sends_to_the_login_form(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    for path in ("/ui/", "/ui/config/production/payments", "/ui/revisions", "/ui/diff?from=x"):
        page = client.get(path)
        assert page.status_code == 303, path
        assert page.headers["Location"] == "/ui/login"
    form = client.get("/ui/login")
    assert form.status_code == 200
    shown = text(form)
    assert '<label for="token">Token</label>' in shown
    assert 'name="token" type="password"' in shown
    assert csrf_of(shown)


def test_login_sets_a_signed_httponly_strict_expiring_cookie_without_the_token(
    secured: tuple[Server, History],
) -> None:
    client = secured[0].app.test_client()
    done = login(client, ADMIN)
    assert done.status_code == 303 and done.headers["Location"] == "/ui/"
    cookie = cookie_header(done)
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/ui" in flags
    assert "max-age=43200" in flags  # 12 hours
    assert "secure" not in flags  # served over plain HTTP on loopback
    assert ADMIN not in cookie and ADMIN[:8] not in cookie
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "Signed in as <strong>ops</strong>" in text(page)
    again = client.get("/ui/login")  # already signed in: no second login
    assert again.status_code == 303 and again.headers["Location"] == "/ui/"


def test_over_https_the_cookie_is_secure(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    form = client.get("/ui/login", base_url="https://localhost").get_data(as_text=True)
    done = client.post(
        "/ui/login",
        data={"token": ADMIN, "csrf": csrf_of(form)},
        base_url="https://localhost",
    )
    assert done.status_code == 303
    assert "secure" in [f.strip().lower() for f in cookie_header(done).split(";")]


def test_a_wrong_or_missing_token_is_refused_with_what_to_do(
    secured: tuple[Server, History],
) -> None:
    client = secured[0].app.test_client()
    wrong = login(client, "x" * 32)
    assert wrong.status_code == 401
    assert "not one of this server's tokens" in text(wrong)
    assert not [v for v in wrong.headers.getlist("Set-Cookie") if "x" * 32 in v]
    assert client.get("/ui/").status_code == 303
    empty = login(client, "")
    assert empty.status_code == 401 and "Enter a token" in text(empty)
    # Each refusal is in the audit log, without the token that was tried.
    audit = (
        secured[0]
        .app.test_client()
        .get("/v1/audit?action=token", headers={"Authorization": f"Bearer {ADMIN}"})
    )
    refused = [e for e in audit.get_json()["entries"] if e["target"] == "POST /ui/login"]
    assert [(e["actor"], e["result"]) for e in refused] == [("-", "401 unauthorized")] * 2
    assert "x" * 32 not in audit.get_data(as_text=True)


def test_an_expired_token_cannot_log_in(repo: Path, make_server: Any) -> None:
    tokens = [
        {
            "name": "old",
            "token": "o" * 32,
            "scopes": ["admin"],
            "expires_at": "2020-01-01T00:00:00Z",
        }
    ]
    server = make_server(repo, tokens=tokens)
    server.poller.run_once()
    refused = login(server.app.test_client(), "o" * 32)
    assert refused.status_code == 401
    assert "Token 'old' has expired" in text(refused)


def test_a_forged_or_foreign_cookie_is_no_session(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    client.set_cookie(COOKIE, "eyJub3QiOiJzaWduZWQifQ.forged.sig", path="/ui")
    page = client.get("/ui/")
    assert page.status_code == 303 and page.headers["Location"] == "/ui/login?ended=1"
    assert "Your session ended" in text(client.get("/ui/login?ended=1"))


def test_rotating_the_token_file_ends_the_session(
    repo: Path, make_server: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("f" * 32 + "\n")
    server = make_server(
        repo, tokens=[{"name": "filed", "token_file": str(token_file), "scopes": ["admin"]}]
    )
    server.poller.run_once()
    client = server.app.test_client()
    assert login(client, "f" * 32).status_code == 303
    assert client.get("/ui/").status_code == 200
    token_file.write_text("g" * 32 + "\n")
    server.auth.reload()
    page = client.get("/ui/")
    assert page.status_code == 303 and page.headers["Location"] == "/ui/login?ended=1"
    assert login(client, "g" * 32).status_code == 303
    assert client.get("/ui/").status_code == 200


def test_logout_needs_the_sessions_csrf_token_and_ends_the_session(
    secured: tuple[Server, History],
) -> None:
    client = secured[0].app.test_client()
    login(client, ADMIN)
    page = client.get("/ui/").get_data(as_text=True)
    csrf = csrf_of(page)
    missing = client.post("/ui/logout", data={"other": "field"})
    assert missing.status_code == 400 and "csrf_missing" in text(missing)
    wrong = client.post("/ui/logout", data={"csrf": "not-" + csrf})
    assert wrong.status_code == 403 and "csrf_mismatch" in text(wrong)
    assert client.get("/ui/").status_code == 200  # still logged in
    json_body = client.post("/ui/logout", json={"csrf": csrf})
    assert json_body.status_code == 415
    done = client.post("/ui/logout", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["Location"] == "/ui/login"
    assert "max-age=0" in cookie_header(done).lower()
    assert client.get("/ui/").status_code == 303


def test_the_login_form_has_csrf_too(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    client.get("/ui/login")
    assert client.post("/ui/login", data={"token": ADMIN}).status_code == 400
    assert client.post("/ui/login", data={"token": ADMIN, "csrf": "guess"}).status_code == 403
    fresh = secured[0].app.test_client()  # no cookie at all
    assert fresh.post("/ui/login", data={"token": ADMIN, "csrf": "guess"}).status_code == 400


def test_a_login_gets_a_new_csrf_token(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    before = csrf_of(client.get("/ui/login").get_data(as_text=True))
    client.post("/ui/login", data={"token": ADMIN, "csrf": before})
    after = csrf_of(client.get("/ui/").get_data(as_text=True))
    assert after != before


def test_pages_show_only_what_the_tokens_scopes_allow(secured: tuple[Server, History]) -> None:
    server, _ = secured
    client = server.app.test_client()
    login(client, PROD)
    overview = text(client.get("/ui/"))
    assert 'href="/ui/config/production/payments"' in overview
    assert 'href="/ui/config/production-eu/search"' in overview
    assert "/ui/config/staging/" not in overview
    # The rejected commit's problem is in staging's file: hidden, and said to be.
    assert "environments/staging/payments.yaml" not in overview
    assert "1 more in configs your token may not read" in overview
    assert "Replicas" not in overview  # the features' sections are for admins, as in /v1/status
    refused = client.get("/ui/config/staging/payments")
    assert refused.status_code == 403
    assert "needs the scope 'read:staging/payments'" in text(refused)
    subs = client.get("/ui/subscriptions")
    assert subs.status_code == 403 and "lacks the admin scope" in text(subs)
    admin = server.app.test_client()
    login(admin, ADMIN)
    shown = text(admin.get("/ui/"))
    assert "environments/staging/payments.yaml:2:9" in shown
    assert 'href="/ui/config/staging/payments"' in shown
    assert admin.get("/ui/subscriptions").status_code == 200


def test_a_bearer_header_works_as_a_session(secured: tuple[Server, History]) -> None:
    client = secured[0].app.test_client()
    page = client.get("/ui/revisions", headers={"Authorization": "Bearer " + PROD})
    assert page.status_code == 200
    assert client.get("/ui/", headers={"Authorization": "Bearer wrong"}).status_code == 303


def test_past_ten_refused_logins_a_minute_the_address_waits(
    secured: tuple[Server, History],
) -> None:
    client = secured[0].app.test_client()
    for _ in range(10):
        assert login(client, "not-a-token-of-this-server").status_code == 401
    held = login(client, ADMIN)  # even the right token waits: the address is throttled
    assert held.status_code == 429
    assert 0 < int(held.headers["Retry-After"]) <= 60
    assert "Too many refused logins" in text(held)


def test_the_throttle_forgets_refusals_after_its_window() -> None:
    from gitconf.ui.throttle import LoginThrottle

    throttle = LoginThrottle(limit=3, window=60.0, clients=2)
    for at in (0.0, 1.0, 2.0):
        assert throttle.wait("10.0.0.1", at) == 0.0
        throttle.refused("10.0.0.1", at)
    assert throttle.wait("10.0.0.1", 3.0) == 57.0  # until the first refusal is a minute old
    assert throttle.wait("10.0.0.2", 3.0) == 0.0  # another address is not held
    assert throttle.wait("10.0.0.1", 60.5) == 0.0  # the first one has aged out
    throttle.refused("10.0.0.2", 61.0)
    throttle.refused("10.0.0.3", 61.0)  # a third address: the oldest is forgotten
    assert throttle.wait("10.0.0.1", 61.5) == 0.0
