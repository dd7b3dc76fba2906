"""Bearer tokens and their scopes: who may read which environment, and which problems.

The 401s and 403s over HTTP are in tests/server/test_api.py and tests/server/test_guard.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitconf.errors import GitconfError
from gitconf.server.auth import ANONYMOUS_ADMIN, Auth, Principal, may_not_read, visible_problems

TOKENS = [
    {"name": "ci", "token": "t-admin", "scopes": ["admin"]},
    {"name": "prod-reader", "token": "t-prod", "scopes": ["read:production*"]},
    {"name": "two", "token": "t-two", "scopes": ["read:staging", "read:qa-?"]},
    {"name": "from-env", "token_env": "READER_TOKEN", "scopes": ["read:*"]},
]
AUTH = Auth(TOKENS, environ={"READER_TOKEN": "t-env"})


@pytest.mark.parametrize(
    ("scopes", "env", "may"),
    [
        (("admin",), "production", True),
        (("read:production*",), "production", True),
        (("read:production*",), "production-eu", True),
        (("read:production*",), "staging", False),
        (("read:production",), "production-eu", False),
        (("read:Production",), "production", False),  # globs are case-sensitive
        (("read:qa-?",), "qa-1", True),
        (("read:qa-?",), "qa-10", False),
        (("read:staging", "read:qa-*"), "qa-10", True),
        (("read:*",), "anything", True),
        (("write:production",), "production", True),  # write implies read of the same
        (("secrets:production",), "production", True),  # so does secrets
        (("release:production",), "production", False),  # release does not
        ((), "production", False),
    ],
)
def test_which_environments_a_scope_reads(scopes: tuple[str, ...], env: str, may: bool) -> None:
    assert Principal("p", scopes).can_read(env) is may


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Bearer t-admin", "ci"),
        ("bearer t-prod", "prod-reader"),  # the scheme is case-insensitive
        ("BEARER  t-two  ", "two"),
        ("Bearer t-env", "from-env"),
        ("Bearer t-wrong", None),
        ("Bearer ", None),
        ("Basic dDphZG1pbg==", None),
        ("t-admin", None),
        ("", None),
        (None, None),
    ],
)
def test_a_header_names_its_token_or_nobody(header: str | None, name: str | None) -> None:
    principal = AUTH.authenticate(header)
    assert (principal.name if principal else None) == name


def test_a_principal_has_its_tokens_scopes() -> None:
    assert AUTH.authenticate("Bearer t-two") == Principal("two", ("read:staging", "read:qa-?"))
    assert AUTH.authenticate("Bearer t-admin") == Principal("ci", ("admin",))
    assert Principal("ci", ("admin",)).admin and not Principal("r", ("read:*",)).admin


def test_without_tokens_everyone_is_the_anonymous_admin() -> None:
    open_auth = Auth([])
    assert not open_auth.enabled and AUTH.enabled
    for header in (None, "Bearer anything", "Basic x"):
        assert open_auth.authenticate(header) == ANONYMOUS_ADMIN
    assert ANONYMOUS_ADMIN.admin


def test_a_token_env_that_is_not_set_stops_the_start() -> None:
    for environ in ({}, {"READER_TOKEN": ""}):
        with pytest.raises(GitconfError) as caught:
            Auth(TOKENS, environ=environ)
        assert str(caught.value) == (
            "tokens: 'from-env' reads token_env 'READER_TOKEN', which is not set"
        )


def test_the_403_names_the_token_and_the_environment() -> None:
    refused = may_not_read(Principal("prod-reader", ("read:production*",)), "staging")
    assert (refused.status, refused.code) == (403, "forbidden")
    assert refused.message == (
        "token 'prod-reader' may not read environment 'staging'; it needs the scope "
        "'read:staging' (or one whose globs cover it)"
    )


PROBLEMS: list[dict[str, Any]] = [
    {"path": "gitconf.yaml", "text": "gitconf.yaml:1:1: manifest"},
    {"path": "schemas/payments.schema.json", "text": "a schema"},
    {"path": "base/payments.yaml", "text": "a base value"},
    {"path": "environments/production/payments.yaml", "text": "a production value"},
    {"path": "environments/staging/_all.yaml", "text": "a staging value"},
    {"path": "environments/README.md", "text": "directly under environments/"},
    {"path": None, "text": "no file"},
]


@pytest.mark.parametrize(
    ("scopes", "hidden"),
    [
        (("admin",), set()),
        (("read:*",), set()),
        (("read:production*",), {"a staging value"}),
        (("read:staging",), {"a production value"}),
        ((), {"a production value", "a staging value"}),
    ],
)
def test_a_problem_in_an_environment_shows_only_to_its_readers(
    scopes: tuple[str, ...], hidden: set[str]
) -> None:
    shown = visible_problems(Principal("p", scopes), PROBLEMS)
    assert [p["text"] for p in shown] == [p["text"] for p in PROBLEMS if p["text"] not in hidden]


@pytest.mark.parametrize(
    ("scopes", "kind", "env", "service", "may"),
    [
        (("read:production*/payments",), "read", "production-eu", "payments", True),
        (("read:production*/payments",), "read", "production-eu", "search", False),
        (("read:production*/payments",), "read", "production", None, True),  # some service
        (("read:production*/pay*",), "read", "production", "payroll", True),
        (("read:production",), "read", "production", "anything", True),  # every service
        (("write:staging/payments",), "write", "staging", "payments", True),
        (("write:staging/payments",), "read", "staging", "payments", True),
        (("write:staging/payments",), "write", "staging", "search", False),
        (("read:staging",), "write", "staging", "payments", False),
        (("secrets:production/payments",), "secrets", "production", "payments", True),
        (("secrets:production/payments",), "secrets", "production", "search", False),
        (("read:production",), "secrets", "production", "payments", False),
        (("release:production*",), "release", "production-eu", None, True),
        (("release:production",), "write", "production", "payments", False),
        (("admin",), "secrets", "anything", "anything", True),
    ],
)
def test_what_each_kind_of_scope_gives(
    scopes: tuple[str, ...], kind: str, env: str, service: str | None, may: bool
) -> None:
    assert Principal("p", scopes).may(kind, env, service) is may


@pytest.mark.parametrize(
    "scope",
    ["read", "read:", "delete:production", "read:a/b/c", "release:prod/payments", "read:/x"],
)
def test_a_scope_that_is_not_one_is_refused_naming_it(scope: str) -> None:
    with pytest.raises(GitconfError, match="tokens: 'x': scope"):
        Auth([{"name": "x", "token": "t" * 16, "scopes": [scope]}], environ={})


def test_an_expired_token_is_refused_and_the_401_says_so() -> None:
    now = [1_000_000.0]
    auth = Auth(
        [
            {
                "name": "temp",
                "token": "t" * 16,
                "scopes": ["admin"],
                "expires_at": "1970-01-12T13:46:50Z",
            }
        ],
        environ={},
        clock=lambda: now[0],
    )
    assert auth.authenticate("Bearer " + "t" * 16) is not None  # 1,000,000 s < 1,000,010
    now[0] = 1_000_011.0
    assert auth.authenticate("Bearer " + "t" * 16) is None
    assert auth.expired("Bearer " + "t" * 16) == "temp"
    assert auth.expired("Bearer " + "x" * 16) is None


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Any) -> None:
    import os

    path = tmp_path / "token"
    path.write_text("first-token-0123456789\n")
    auth = Auth([{"name": "rotating", "token_file": str(path), "scopes": ["admin"]}], environ={})
    assert auth.authenticate("Bearer first-token-0123456789") is not None
    generation = auth.generation
    path.write_text("second-token-0123456789\n")
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    auth.reload(only_changed=True)
    assert auth.generation == generation + 1
    assert auth.authenticate("Bearer first-token-0123456789") is None
    assert auth.authenticate("Bearer second-token-0123456789") is not None
    # A file that becomes unreadable keeps the token read before (logged).
    path.unlink()
    auth.reload()
    assert auth.authenticate("Bearer second-token-0123456789") is not None


def test_problems_of_a_service_show_only_to_who_may_read_it() -> None:
    problems = [
        {"path": "environments/production/payments.yaml", "text": "a"},
        {"path": "environments/production/search.yaml", "text": "b"},
        {"path": "environments/production/_all.yaml", "text": "c"},
        {"path": "environments/production/payments/extra.yaml", "text": "d"},
        {"path": "base/payments.yaml", "text": "e"},
    ]
    reader = Principal("p", ("read:production/payments",))
    assert [p["text"] for p in visible_problems(reader, problems)] == ["a", "c", "d", "e"]
