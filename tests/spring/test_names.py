"""Spring's request names: profiles, labels and `<service>-<env>` documents split by known names."""

from __future__ import annotations

import time

import pytest

from gitconf.spring.names import (
    MAX_NAME_LENGTH,
    MAX_PROFILES,
    BadName,
    Reading,
    check_name,
    parse_label,
    parse_profiles,
    split_document,
)

SERVICES = {"api", "api-production", "checkout", "web-app"}
ENVIRONMENTS = {"staging", "production", "production-eu", "eu"}


@pytest.mark.parametrize(
    ("text", "profiles"),
    [
        ("production", ("production",)),
        ("production,eu", ("production", "eu")),
        (" production , eu ", ("production", "eu")),
        ("production,,eu,", ("production", "eu")),
        (",", ()),
        # Repeats are dropped, each profile keeping its first place.
        ("staging,production,staging,production", ("staging", "production")),
        ("eu, eu,production", ("eu", "production")),
    ],
)
def test_parse_profiles(text: str, profiles: tuple[str, ...]) -> None:
    assert parse_profiles(text) == profiles


def test_parse_profiles_refuses_more_than_the_limit_of_distinct_profiles() -> None:
    many = [f"p{i}" for i in range(MAX_PROFILES)]
    assert parse_profiles(",".join(many + many)) == tuple(many)
    with pytest.raises(BadName) as caught:
        parse_profiles(",".join([*many, "one-more"]))
    assert caught.value.code == "too_many_profiles"
    assert caught.value.limit == MAX_PROFILES
    assert str(caught.value) == (
        f"{MAX_PROFILES + 1} profiles asked for at once; gitconf reads at most {MAX_PROFILES} "
        "distinct profiles in one request: ask for fewer"
    )
    with pytest.raises(BadName):
        split_document("checkout-" + ",".join([*many, "staging"]), SERVICES, ENVIRONMENTS)


@pytest.mark.parametrize(
    ("text", "label"),
    [("main", "main"), ("release(_)1.0", "release/1.0"), ("a(_)b(_)c", "a/b/c")],
)
def test_parse_label(text: str, label: str) -> None:
    assert parse_label(text) == label


@pytest.mark.parametrize(
    ("stem", "readings"),
    [
        ("checkout-production", [Reading("checkout", ("production",))]),
        # Spring would split at the last hyphen (checkout-production in eu) and fail.
        ("checkout-production-eu", [Reading("checkout", ("production-eu",))]),
        ("web-app-staging", [Reading("web-app", ("staging",))]),
        ("web-app-production-eu", [Reading("web-app", ("production-eu",))]),
        # Both readings name a known service and environment: the caller must choose.
        (
            "api-production-eu",
            [Reading("api", ("production-eu",)), Reading("api-production", ("eu",))],
        ),
        ("checkout-staging,production", [Reading("checkout", ("staging", "production"))]),
        ("checkout-staging,staging", [Reading("checkout", ("staging",))]),
        (
            "checkout-production,kubernetes",
            [Reading("checkout", ("production", "kubernetes"))],
        ),
        ("checkout-kubernetes", []),
        ("checkout", []),
        ("search-production", []),
        ("-production", []),
        ("checkout-", []),
    ],
)
def test_split_document(stem: str, readings: list[Reading]) -> None:
    assert split_document(stem, SERVICES, ENVIRONMENTS) == readings


def test_reading_describes_itself() -> None:
    assert Reading("api", ("production", "eu")).describe() == (
        "service 'api' in environment 'production,eu'"
    )


@pytest.mark.parametrize("services", [SERVICES, {"a", "a-", "a-,"}])
def test_split_document_work_grows_with_the_stem_not_its_square(services: set[str]) -> None:
    # 16,000 hyphens: reading the profiles after each of them took 10 s of CPU.
    stem = "a" + "-," * 16000
    started = time.process_time()
    assert split_document(stem, services, ENVIRONMENTS) == []
    assert time.process_time() - started < 2.0


def test_check_name_refuses_names_past_the_limit() -> None:
    check_name("label", "x" * MAX_NAME_LENGTH)
    with pytest.raises(BadName) as caught:
        check_name("label", "x" * (MAX_NAME_LENGTH + 1))
    assert caught.value.code == "name_too_long"
    assert caught.value.limit == MAX_NAME_LENGTH
    assert str(caught.value) == (
        f"the label {'x' * 40 + '...'!r} is {MAX_NAME_LENGTH + 1} characters long; gitconf "
        f"reads Spring names of at most {MAX_NAME_LENGTH} characters: ask with a shorter one"
    )


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", "\t", "\x7f", "\x85"])
def test_check_name_refuses_control_characters(char: str) -> None:
    with pytest.raises(BadName) as caught:
        check_name("profiles", f"staging,x{char}y")
    assert caught.value.code == "bad_name"
    assert caught.value.limit is None
    assert str(caught.value) == (
        f"the profiles {'staging,x' + char + 'y'!r} holds the control character {char!r} at 10; "
        "names are printable text: remove it from the request"
    )


@pytest.mark.parametrize("text", ["production", "production, eu", "caf\u00e9", "\u2603", "a b"])
def test_check_name_takes_printable_text(text: str) -> None:
    check_name("profiles", text)
