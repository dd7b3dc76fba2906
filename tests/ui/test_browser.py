"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
`gitconf serve` on 127.0.0.1. Screenshots of each page (1280×800) go to $GITCONF_UI_SCREENSHOTS,
or else to a temporary folder of the test run."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from gitconf.testing import commit_all, git, make_repo
from gitconf.testing.server import ServeProcess, wait_until
from tests.conftest import BASE_FILES
from tests.ui.conftest import ADMIN, BAD_STAGING, TOKENS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium; "
    ".ci/run installs it)",
)
SIZE = {"width": 1280, "height": 800}


class Served(NamedTuple):
    server: ServeProcess
    repo: Path  # a clone of the server's remote
    first: str
    second: str
    rejected: str
    shots: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real server with tokens that has published two revisions and rejected a third."""
    root = tmp_path_factory.mktemp("browser")
    repo = make_repo(root / "config", dict(BASE_FILES))
    first = commit_all(repo, "nothing new")
    # The server follows a bare remote, which the change form pushes to; commits of the tests'
    # own are made in repo and pushed there.
    remote = root / "remote.git"
    git(root, "clone", "-q", "--bare", str(repo), str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    config = root / "server.yaml"
    config.write_text(yaml.safe_dump({"tokens": TOKENS}))
    shots = Path(os.environ.get("GITCONF_UI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with ServeProcess(remote, root / "state", config=config, poll_interval=0.1) as server:
        auth = {"Authorization": "Bearer " + ADMIN}

        def status() -> dict[str, Any]:
            found: dict[str, Any] = server.get("/v1/status", headers=auth).json()
            return found

        wait_until(lambda: status()["revision"] == first, what="the first revision served")
        second = commit_all(
            repo,
            "raise the pool",
            {"environments/production/payments.yaml": "db:\n  pool: {max: 60}\n"},
        )
        git(repo, "push", "-q", "origin", "main")
        wait_until(lambda: status()["revision"] == second, what="the second revision served")
        rejected = commit_all(repo, "break staging", BAD_STAGING)
        git(repo, "push", "-q", "origin", "main")
        wait_until(
            lambda: any(r["revision"] == rejected for r in status()["rejected"]),
            what="the bad commit rejected",
        )
        yield Served(server, repo, first, second, rejected, shots)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport=SIZE, base_url=served.server.url)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def shot(page: Any, served: Served, name: str) -> None:
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=False)


def log_in(page: Any, token: str = ADMIN) -> None:
    page.goto("/ui/")
    assert page.url.endswith("/ui/login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui/$"))


def test_log_in_and_see_the_rejected_commits_problem_at_its_file_and_line(
    page: Any, served: Served
) -> None:
    page.goto("/ui/login")
    shot(page, served, "login")
    page.get_by_label("Token").fill("not-the-token-at-all")
    page.get_by_role("button", name="Log in").click()
    assert "not one of this server's tokens" in page.get_by_role("alert").inner_text()
    log_in(page)
    assert "Signed in as ops" in page.locator(".who").inner_text()
    rejected = page.locator("article.rejected").filter(has_text=served.rejected[:12])
    problem = rejected.locator(".problems li").first
    assert problem.locator(".where").inner_text() == "environments/staging/payments.yaml:2:9"
    assert "db.port" in problem.inner_text()
    assert "is not of type 'integer'" in problem.inner_text()
    served_card = page.locator("section.card", has_text="Served")
    assert served.second[:12] in served_card.inner_text()
    shot(page, served, "overview")


def test_a_config_page_shows_a_values_source_and_what_it_overrode(
    page: Any, served: Served
) -> None:
    log_in(page)
    page.get_by_role("link", name="production/payments", exact=True).click()
    page.wait_for_url(re.compile(r"/ui/config/production/payments$"))
    row = page.locator("table.leaves tr", has=page.locator("th", has_text="db.pool.max"))
    assert row.locator("td").first.inner_text() == "60"
    assert row.locator(".source").inner_text() == "environments/production/payments.yaml:2:15"
    assert row.locator(".overrode li").all_inner_texts() == ["base/payments.yaml:4:15"]
    layers = page.locator("section.layers li").all_inner_texts()
    assert layers == [
        "base/_all.yaml",
        "base/payments.yaml",
        "environments/production/payments.yaml",
    ]
    shot(page, served, "config")


def test_compare_two_revisions(page: Any, served: Served) -> None:
    log_in(page)
    page.get_by_role("link", name="Revisions").click()
    page.wait_for_url(re.compile(r"/ui/revisions$"))
    shot(page, served, "revisions")
    page.get_by_label("From (older)").select_option(served.first)
    page.get_by_label("To (newer)").select_option(served.second)
    page.get_by_role("button", name="Show the effective diff").click()
    page.wait_for_url(re.compile(r"/ui/diff\?"))
    section = page.locator("section.change", has_text="production/payments")
    row = section.locator("tr", has=page.locator("th", has_text="db.pool.max"))
    assert row.locator("td.old").inner_text() == "50"
    assert row.locator("td.new").inner_text() == "60"
    assert page.locator("section.change").count() == 2  # production and production-eu
    shot(page, served, "diff")


def test_the_other_pages_keyboard_focus_and_dark_mode(page: Any, served: Served) -> None:
    log_in(page)
    for path, name in [
        ("/ui/subscriptions", "subscriptions"),
        ("/ui/releases", "releases"),
        ("/ui/audit", "audit"),
    ]:
        page.goto(path)
        assert page.locator("h1").is_visible()
        shot(page, served, name)
    assert "Audit log" in page.locator("main h1").inner_text()  # the last page shown
    page.goto("/ui/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark
    shot(page, served, "overview-dark")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/ui/login$"))
    page.goto("/ui/")
    assert page.url.endswith("/ui/login")


def test_change_a_value_through_the_form_and_see_it_served(page: Any, served: Served) -> None:
    """Last in this module: it changes what the server serves."""
    # Fix the rejected commit first: a change is compiled on the branch's head, which must be
    # valid for any change to land.
    fix = commit_all(
        served.repo, "fix staging", {"environments/staging/payments.yaml": "db: {port: 1}\n"}
    )
    git(served.repo, "push", "-q", "origin", "main")
    auth = {"Authorization": "Bearer " + ADMIN}
    wait_until(
        lambda: served.server.get("/v1/status", headers=auth).json()["revision"] == fix,
        what="the fix served",
    )
    log_in(page)
    page.get_by_role("link", name="Change").click()
    page.wait_for_url(re.compile(r"/ui/change$"))
    page.get_by_label("Config", exact=True).select_option("production/payments")
    page.get_by_label("Set", exact=True).fill("db.pool.max=75")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    row = preview.locator("tr", has=page.locator("th", has_text="db.pool.max"))
    assert row.locator("td.old").first.inner_text() == "60"
    assert row.locator("td.new").first.inner_text() == "75"
    shot(page, served, "change-preview")
    page.get_by_role("button", name="Commit and push").click()
    assert "Committed" in page.locator("#change-done").inner_text()
    shot(page, served, "change-done")
    page.get_by_role("link", name="See production/payments as served").click()

    def value_shown() -> bool:
        page.reload()
        pool = page.locator("table.leaves tr", has=page.locator("th", has_text="db.pool.max"))
        return bool(pool.locator("td").first.inner_text() == "75")

    wait_until(value_shown, timeout=10, interval=0.1, what="the changed value on the config page")
    assert (
        served.server.get("/v1/config/production/payments", headers=auth).json()["db"]["pool"][
            "max"
        ]
        == 75
    )


def test_without_tokens_the_overview_follows_changes_live(browser: Any, tmp_path: Path) -> None:
    """The overview's script reloads it when /v1/watch says a config changed: no login, no
    click."""
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state", poll_interval=0.1) as server:
        context = browser.new_context(viewport=SIZE, base_url=server.url)
        page = context.new_page()
        page.goto("/ui/")
        before = page.locator("section.card", has_text="Served").inner_text()
        page.wait_for_function("document.readyState === 'complete'")
        sha = commit_all(repo, "more", {"base/search.yaml": "shards: [s1, s2, s3]\n"})
        page.wait_for_function(
            "sha => document.querySelector('section.card code.sha').title === sha",
            arg=sha,
            timeout=10_000,
        )
        assert page.locator("section.card", has_text="Served").inner_text() != before
        context.close()
