"""Which format a read asks for, and whether If-None-Match names the ETag served."""

from __future__ import annotations

import pytest

from gitconf.server.errors import ApiError
from gitconf.server.formats import etag_matches, negotiate


@pytest.mark.parametrize(
    ("query", "accept", "fmt"),
    [
        (None, None, "json"),
        (None, "*/*", "json"),
        (None, "application/json", "json"),
        (None, "application/yaml", "yaml"),
        (None, "application/x-yaml", "yaml"),
        (None, "text/yaml", "yaml"),
        (None, "text/x-yaml", "yaml"),
        (None, "text/html, text/yaml;q=0.9", "yaml"),
        ("yaml", None, "yaml"),
        ("env", None, "env"),
        # ?format= wins over Accept.
        ("json", "application/yaml", "json"),
        ("env", "application/yaml", "env"),
    ],
)
def test_the_format_of_a_read(query: str | None, accept: str | None, fmt: str) -> None:
    assert negotiate(query, accept) == fmt


@pytest.mark.parametrize("query", ["toml", "", "JSON", "yml"])
def test_an_unknown_format_is_a_400_naming_the_known_ones(query: str) -> None:
    with pytest.raises(ApiError) as caught:
        negotiate(query, "application/yaml")
    assert (caught.value.status, caught.value.code) == (400, "bad_format")
    assert caught.value.message == f"format {query!r} is not one of json, yaml, env"


ETAG = '"5d41402abc4b2a76b9719d911017c592"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (ETAG, True),
        (f"W/{ETAG}", True),  # weak comparison, as RFC 9110 asks of If-None-Match
        (f'"other", {ETAG}', True),
        (f'"other",{ETAG} ', True),
        ("*", True),
        (" * ", True),
        (None, False),
        ("", False),
        ('"other"', False),
        (ETAG.upper(), False),
        (ETAG.strip('"'), False),  # unquoted is another tag
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, ETAG) is matches


def test_a_weak_etag_served_matches_its_strong_form() -> None:
    assert etag_matches(ETAG, f"W/{ETAG}")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/yaml", "yaml"),
        ("application/json, application/yaml", "yaml"),  # named at all: YAML, as before
        ("application/yaml;q=0, application/json", "json"),  # refused by the client
        ("application/json;q=0.5, application/yaml;q=0.9", "yaml"),
        ("application/yaml;q=0.4, application/json;q=0.9", "json"),
        ("text/yaml; q=0.8, */*;q=0.8", "yaml"),
        ("application/json;q=0.9", "json"),
        ("application/yaml;q=nonsense", "json"),
    ],
)
def test_accept_q_values_are_weighed(accept: str, expected: str) -> None:
    from gitconf.server.formats import negotiate

    assert negotiate(None, accept) == expected
