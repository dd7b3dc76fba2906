"""The brokers: settings as values: defaults, routing keys, URLs without their secrets."""

from __future__ import annotations

import pytest

from gitconf.brokers.spec import check, check_settings, from_settings, redact


def test_defaults_per_kind_and_format() -> None:
    bus, amqp_events, nats_events = from_settings(
        [
            {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "AMQP_URL"},
            {"name": "ev", "kind": "amqp", "format": "cloudevents", "url": "amqp://h/"},
            {"name": "js", "kind": "nats", "format": "cloudevents", "url": "nats://h:4222"},
        ]
    )
    assert (bus.exchange, bus.routing_key, bus.subject) == (
        "springCloudBus",
        "springCloudBus",
        None,
    )
    assert (amqp_events.exchange, amqp_events.routing_key) == (
        "gitconf",
        "io.gitconf.config.changed",
    )
    assert (nats_events.subject, nats_events.exchange) == ("gitconf.config.changed", None)
    assert bus.environments == bus.services == ("*",)
    assert bus.subscription_id == "brk_bus"


def test_a_custom_spring_exchange_is_its_own_routing_key() -> None:
    (spec,) = from_settings(
        [
            {
                "name": "b",
                "kind": "amqp",
                "format": "spring-bus",
                "url": "amqp://h/",
                "exchange": "bus2",
            }
        ]
    )
    assert (spec.exchange, spec.routing_key) == ("bus2", "bus2")


def test_urls_are_shown_without_user_password_or_query() -> None:
    assert redact("amqp://gitconf:s3cr%40t@rabbit.internal:5672/prod?heartbeat=5") == (
        "amqp://rabbit.internal:5672/prod"
    )
    assert redact("nats://token@[::1]:4222") == "nats://[::1]:4222"
    assert redact("amqp://h:notaport/") == "<a URL that does not parse>"


def test_an_unset_url_variable_says_what_to_set_and_never_shows_a_value() -> None:
    (spec,) = from_settings(
        [{"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "AMQP_URL"}]
    )
    with pytest.raises(ValueError) as unset:
        spec.resolve_url({})
    assert str(unset.value) == (
        "server.yaml brokers[0] ('bus'): url_env 'AMQP_URL' is not set in the server's "
        "environment; set it to the broker's URL and restart gitconf serve"
    )
    assert spec.display_url({}) == "$AMQP_URL"
    assert spec.display_url({"AMQP_URL": "amqp://u:pw@h:5672/"}) == "amqp://h:5672/"
    with pytest.raises(ValueError) as wrong:
        spec.resolve_url({"AMQP_URL": "http://u:pw@h/"})
    assert "pw" not in str(wrong.value) and "the URL in AMQP_URL" in str(wrong.value)


def test_problems_beyond_the_schema_name_the_entry_and_the_fix() -> None:
    docs = [
        {
            "name": "bus",
            "kind": "nats",
            "format": "spring-bus",
            "url": "nats://h/",
            "exchange": "x",
        },
        {"name": "bus", "kind": "amqp", "format": "cloudevents", "url": "nats://u:pw@h/"},
    ]
    problems = check_settings(docs)
    assert problems == [
        "brokers[0]: exchange is not for kind 'nats', which publishes to a subject; remove it",
        "brokers[0]: format 'spring-bus' needs kind 'amqp' (Spring Cloud Bus listens on "
        "RabbitMQ); use format 'cloudevents' on NATS",
        "brokers[1]: name 'bus' is also brokers[0]'s; give each broker its own name",
        "brokers[1].url: the URL of kind 'amqp' starts with amqp:// or amqps://, not 'nats'",
    ]
    assert not any("pw" in p for p in problems)
    assert check(from_settings(docs[2:])) == []
