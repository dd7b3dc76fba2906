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
        (("write:production",), "production", False),
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
    assert refused.message == "token 'prod-reader' may not read environment 'staging'"


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
