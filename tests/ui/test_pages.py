"""The dashboard's pages, over a server without tokens: each shows what the JSON API says."""

from __future__ import annotations

import html
import re
from typing import Any

from gitconf.bootstrap import Server
from tests.ui.conftest import ADMIN, PROD, History, login


def text(response: Any) -> str:
    """A page's HTML with entities decoded, for assertions on what a reader sees."""
    return html.unescape(response.get_data(as_text=True))


def test_the_overview_shows_the_served_revision_the_poll_and_each_rejected_problem(
    open_server: tuple[Server, History],
) -> None:
    server, history = open_server
    client = server.app.test_client()
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.content_type == "text/html; charset=utf-8"
    shown = text(page)
    status = client.get("/v1/status").get_json()
    assert status["revision"] == history.second
    assert f'title="{history.second}"' in shown  # the served revision
    assert "rejected" in shown  # the last poll's result
    problem = status["rejected"][0]["problems"][0]
    assert problem["path"] == "environments/staging/payments.yaml"
    where = f"{problem['path']}:{problem['line']}:{problem['column']}"
    assert where == "environments/staging/payments.yaml:2:9"
    assert where in shown
    assert problem["message"] in shown
    assert f'title="{history.rejected}"' in shown


def test_the_overview_table_has_every_config_with_the_etag_the_api_serves(
    open_server: tuple[Server, History],
) -> None:
    server, _ = open_server
    client = server.app.test_client()
    shown = text(client.get("/ui/"))
    for env in ("staging", "production", "production-eu"):
        for service in ("payments", "search"):
            etag = client.get(f"/v1/config/{env}/{service}").headers["ETag"]
            cell = re.search(
                rf'<a href="/ui/config/{env}/{service}"[^>]*><code>([^<]+)</code>', shown
            )
            assert cell is not None, (env, service)
            assert cell.group(1) == etag


def test_the_config_page_shows_each_value_where_it_was_set_and_what_it_overrode(
    open_server: tuple[Server, History],
) -> None:
    server, history = open_server
    client = server.app.test_client()
    page = client.get("/ui/config/production/payments")
    assert page.status_code == 200
    shown = text(page)
    explain = client.get("/v1/config/production/payments/explain").get_json()
    for leaf in explain["leaves"]:
        row = re.search(rf"<code>{re.escape(leaf['key'])}</code></th>(.*?)</tr>", shown, re.S)
        assert row is not None, leaf["key"]
        assert leaf["source"] in row.group(1)
        for overridden in leaf["overrides"]:
            assert overridden in row.group(1)
    pool = re.search(r"<code>db.pool.max</code></th>(.*?)</tr>", shown, re.S)
    assert pool is not None
    assert ">60<" in pool.group(1)
    assert "environments/production/payments.yaml:2:15" in pool.group(1)
    assert "base/payments.yaml:4:15" in pool.group(1)  # what it overrode
    layers = re.findall(r"<li><code>([^<]+)</code></li>", shown.split('id="layers-h"')[1])
    assert layers[:3] == explain["layers"]
    assert f'title="{history.second}"' in shown
    etag = client.get("/v1/config/production/payments").headers["ETag"]
    assert etag in shown


def test_the_config_page_of_an_earlier_revision(open_server: tuple[Server, History]) -> None:
    server, history = open_server
    shown = text(
        server.app.test_client().get(f"/ui/config/production/payments?ref={history.first}")
    )
    pool = re.search(r"<code>db.pool.max</code></th>(.*?)</tr>", shown, re.S)
    assert pool is not None and ">50<" in pool.group(1)


def test_an_unknown_config_is_the_apis_404_with_what_exists(
    open_server: tuple[Server, History],
) -> None:
    client = open_server[0].app.test_client()
    page = client.get("/ui/config/nowhere/payments")
    assert page.status_code == 404
    api = client.get("/v1/config/nowhere/payments/explain").get_json()["error"]
    shown = text(page)
    assert api["code"] in shown and api["message"] in shown
    assert "known: staging, production, production-eu" in shown


def test_revisions_list_every_commit_and_compare_two(open_server: tuple[Server, History]) -> None:
    server, history = open_server
    client = server.app.test_client()
    shown = text(client.get("/ui/revisions"))
    for sha in history:
        assert f'title="{sha}"' in shown
    assert "environments/staging/payments.yaml:2:9" in shown
    assert f'<option value="{history.first}"' in shown
    page = client.get(f"/ui/diff?from={history.first}&to={history.second}")
    assert page.status_code == 200
    shown = text(page)
    api = client.get(f"/v1/diff?from={history.first}&to={history.second}").get_json()
    assert [(c["environment"], c["service"]) for c in api["changes"]] == [
        ("production", "payments"),
        ("production-eu", "payments"),
    ]
    for change in api["changes"]:
        assert f'href="/ui/config/{change["environment"]}/{change["service"]}"' in shown
    row = re.search(r"<code>db.pool.max</code></th>(.*?)</tr>", shown, re.S)
    assert row is not None
    assert re.search(r'class="old"><code class="value">50</code>', row.group(1))
    assert re.search(r'class="new"><code class="value">60</code>', row.group(1))


def test_a_diff_needs_its_older_revision(open_server: tuple[Server, History]) -> None:
    page = open_server[0].app.test_client().get("/ui/diff")
    assert page.status_code == 400
    assert "give the older revision as ?from=" in text(page)


def test_subscriptions_show_their_deliveries(
    open_server: tuple[Server, History], repo: Any
) -> None:
    from gitconf.testing import commit_all

    server, _ = open_server
    client = server.app.test_client()
    created = client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook", "name": "payments-hook"}
    )
    assert created.status_code == 201
    sub = created.get_json()["id"]
    commit_all(repo, "fix staging", {"environments/staging/payments.yaml": "db: {port: 1}\n"})
    assert server.poller.run_once() == "published"
    api = client.get(f"/v1/subscriptions/{sub}/deliveries").get_json()["deliveries"]
    assert api, "the publish should have made deliveries"
    shown = text(client.get("/ui/subscriptions"))
    assert "payments-hook" in shown and sub in shown and "http://127.0.0.1:9/hook" in shown
    assert "staging/payments" in shown
    assert shown.count("io.gitconf.config.changed") == len(api)


def test_releases_shows_each_pin_with_its_reason_and_the_way_to_act(
    open_server: tuple[Server, History],
) -> None:
    server, history = open_server
    client = server.app.test_client()
    assert "No environment is pinned" in text(client.get("/ui/releases"))
    pinned = client.put(
        "/v1/environments/production/pin",
        json={"revision": history.first, "reason": "pool 60 starves the db"},
    )
    assert pinned.status_code == 200, pinned.get_json()
    shown = text(client.get("/ui/releases"))
    assert f'title="{history.first}"' in shown and "pool 60 starves the db" in shown
    assert "No rollout yet" in shown
    assert "/v1/environments/ENV/pin" in shown  # how to act: the API, scope release


def test_the_audit_page_lists_the_newest_writes_for_admins_only(
    secured: tuple[Server, History],
) -> None:
    server, _ = secured
    api = server.app.test_client()
    made = api.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert made.status_code == 201
    assert api.get("/v1/status").status_code == 401  # a refused token: audited too
    admin = server.app.test_client()
    login(admin, ADMIN)
    shown = text(admin.get("/ui/audit"))
    assert "subscription.create" in shown and "token.refused" in shown
    assert made.headers["X-Request-Id"] in shown
    assert ADMIN not in shown and made.get_json()["secret"] not in shown
    filtered = text(admin.get("/ui/audit?action=token"))
    assert "token.refused" in filtered and "subscription.create" not in filtered
    reader = server.app.test_client()
    login(reader, PROD)
    assert reader.get("/ui/audit").status_code == 403


def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(
    open_server: tuple[Server, History],
) -> None:
    client = open_server[0].app.test_client()
    page = client.get("/ui/")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    css = client.get("/ui/static/gitconf.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.get_data(as_text=True)


def test_without_tokens_the_host_check_applies_and_another_origin_cannot_post(
    open_server: tuple[Server, History],
) -> None:
    client = open_server[0].app.test_client()
    assert client.get("/ui/", headers={"Host": "attacker.example"}).status_code == 421
    assert "no tokens configured" in text(client.get("/ui/login"))
    for path in ("/ui/login", "/ui/logout"):
        refused = client.post(path, data={"token": "x"}, headers={"Origin": "http://evil.example"})
        assert refused.status_code == 403, path
        assert "cross_origin" in text(refused) and "another origin" in text(refused)
        # Without an Origin (an old browser), the missing CSRF token stops it.
        assert client.post(path, data={"token": "x"}).status_code == 400


def test_before_any_revision_is_served_the_pages_say_so(repo: Any, make_server: Any) -> None:
    client = make_server(repo, branch="nothing-here").app.test_client()
    overview = client.get("/ui/")
    assert overview.status_code == 200
    assert "No valid revision is loaded yet" in text(overview)
    config = client.get("/ui/config/production/payments")
    assert config.status_code == 503
    assert "no valid revision has been loaded yet; see /v1/status" in text(config)
    assert config.headers["Retry-After"] == "1"
