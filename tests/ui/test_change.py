"""The change form: a preview through the change API's dry run, then a commit that is pushed
and served; its refusals as the API gives them. Against a real bare remote."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitconf.bootstrap import Server
from gitconf.testing import git, make_repo
from tests.conftest import BASE_FILES
from tests.ui.conftest import csrf_of, login

WRITER = {"name": "Ada", "email": "ada@example.com", "token": "w" * 32, "scopes": ["write:production*/payments"]}  # fmt: skip
READER = {"name": "reader", "token": "r" * 32, "scopes": ["read:*"]}


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    work = make_repo(tmp_path / "seed", dict(BASE_FILES))
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


@pytest.fixture
def serve(remote: Path, make_server: Callable[..., Server]) -> Callable[..., Server]:
    def start(**options: Any) -> Server:
        server = make_server(remote, **options)
        assert server.poller.run_once() == "published"
        return server

    return start


def form_of(client: Any, **values: str) -> dict[str, str]:
    page = client.get("/ui/change").get_data(as_text=True)
    base = re.search(r'name="base" value="([0-9a-f]+)"', page)
    assert base, page
    return {
        "csrf": csrf_of(page),
        "base": base.group(1),
        "config": "production/payments",
        "set": "",
        "unset": "",
        **values,
    }


def test_preview_writes_nothing_then_commit_pushes_and_is_served(
    serve: Callable[..., Server], remote: Path
) -> None:
    server = serve()
    client = server.app.test_client()
    page = client.get("/ui/change")
    assert page.status_code == 200
    shown = text(page)
    assert '<option value="production/payments"' in shown
    assert '<label for="set">Set</label>' in shown
    before = git(remote, "rev-parse", "main")
    form = form_of(client, set="db.pool.max=60\n")
    preview = client.post("/ui/change", data={**form, "action": "preview"})
    assert preview.status_code == 200, text(preview)
    shown = text(preview)
    assert 'id="preview"' in shown
    assert "environments/production/payments.yaml" in shown
    row = re.search(r"<code>db.pool.max</code></th>(.*?)</tr>", shown, re.S)
    assert row and ">50<" in row.group(1) and ">60<" in row.group(1)
    assert git(remote, "rev-parse", "main") == before  # a preview writes nothing
    assert "db.pool.max=60" in shown  # the form keeps what was typed
    done = client.post(
        "/ui/change", data={**form, "action": "commit", "message": "Pool for the sale"}
    )
    assert done.status_code == 200, text(done)
    after = git(remote, "rev-parse", "main")
    assert after != before
    assert f'title="{after}"' in text(done)
    message = git(remote, "log", "-1", "--format=%an <%ae>%n%B", "main")
    assert message.startswith("anonymous")
    assert "Pool for the sale" in message and "Gitconf-Change-Id: chg_" in message
    assert server.poller.run_once() == "published"
    assert client.get("/v1/config/production/payments").get_json()["db"]["pool"]["max"] == 60
    config = text(client.get("/ui/config/production/payments"))
    pool = re.search(r"<code>db.pool.max</code></th>(.*?)</tr>", config, re.S)
    assert pool and ">60<" in pool.group(1)
    assert "environments/production/payments.yaml:2:" in pool.group(1)


def test_a_change_the_schema_refuses_shows_the_problem_at_its_line(
    serve: Callable[..., Server], remote: Path
) -> None:
    client = serve().app.test_client()
    before = git(remote, "rev-parse", "main")
    refused = client.post(
        "/ui/change", data={**form_of(client, set="db.port='abc'"), "action": "commit"}
    )
    assert refused.status_code == 422
    shown = text(refused)
    assert "invalid_change" in shown
    assert '<code class="where">environments/production/payments.yaml:3:9</code>' in shown
    assert "'abc' is not of type 'integer'" in shown
    assert git(remote, "rev-parse", "main") == before


def test_lines_that_are_not_key_value_name_the_field_and_line(
    serve: Callable[..., Server],
) -> None:
    client = serve().app.test_client()
    bad = client.post(
        "/ui/change", data={**form_of(client, set="db.pool.max=60\nnonsense"), "action": "preview"}
    )
    assert bad.status_code == 400
    assert "set, line 2: 'nonsense' is not KEY=VALUE" in text(bad)
    nothing = client.post("/ui/change", data={**form_of(client), "action": "preview"})
    assert nothing.status_code == 400
    assert "sets or unsets at least one key" in text(nothing)


def test_a_stale_base_is_the_apis_412(
    serve: Callable[..., Server], tmp_path: Path, remote: Path
) -> None:
    client = serve().app.test_client()
    form = form_of(client, set="db.pool.max=60")
    clone = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    (clone / "environments/production/payments.yaml").write_text("db:\n  pool: {max: 55}\n")
    git(clone, "-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qam", "other")
    git(clone, "push", "-q", "origin", "main")
    stale = client.post("/ui/change", data={**form, "action": "commit"})
    assert stale.status_code == 412
    assert "stale_base" in text(
        stale
    ) and "environments/production/payments.yaml changed since" in text(stale)


def test_the_form_offers_only_what_the_token_may_write(serve: Callable[..., Server]) -> None:
    server = serve(tokens=[WRITER, READER])
    writer = server.app.test_client()
    login(writer, WRITER["token"])
    shown = text(writer.get("/ui/change"))
    offered = re.findall(r'<option value="([^"]+)"', shown)
    assert offered == ["production/payments", "production-eu/payments"]
    refused = writer.post(
        "/ui/change",
        data={**form_of(writer, config="staging/payments", set="db.port=1"), "action": "preview"},
    )
    assert refused.status_code == 403
    assert "needs the scope 'write:staging/payments'" in text(refused)
    reader = server.app.test_client()
    login(reader, READER["token"])
    assert "may not change any config" in text(reader.get("/ui/change"))
    done = writer.post(
        "/ui/change", data={**form_of(writer, set="db.pool.max=61"), "action": "commit"}
    )
    assert done.status_code == 200 and "Committed" in text(done)


def test_the_form_needs_csrf_and_refuses_another_origin(
    serve: Callable[..., Server], remote: Path
) -> None:
    client = serve().app.test_client()
    form = form_of(client, set="db.pool.max=60")
    before = git(remote, "rev-parse", "main")
    missing = client.post("/ui/change", data={k: v for k, v in form.items() if k != "csrf"})
    assert missing.status_code == 400
    other = client.post(
        "/ui/change", data={**form, "action": "commit"}, headers={"Origin": "http://evil.example"}
    )
    assert other.status_code == 403 and "cross_origin" in text(other)
    assert git(remote, "rev-parse", "main") == before


def test_without_the_change_api_the_page_says_it_is_off(serve: Callable[..., Server]) -> None:
    server = serve()
    server.app.extensions["gitconf.ui"] = server.app.extensions["gitconf.ui"].__class__(
        server.auth, server.app.extensions["gitconf.ui"].codec, None
    )
    page = server.app.test_client().get("/ui/change")
    assert page.status_code == 200
    assert "The change API is off in this version" in text(page)
