"""CloudEvents binary mode on NATS and AMQP: which headers, and how values are encoded."""

from __future__ import annotations

import json

import pytest

from gitconf.brokers import cloudevents
from gitconf.notify.events import Change, changed_event, encode

EVENT = changed_event(
    Change("production", "payments", "changed", '"e2"', '"e1"', ("db.pool.max",), None),
    event_id="evt_5fd2a6f4fcb54c7fbc51b6068598f2fc",
    source="https://gitconf.example.com",
    time="2026-01-02T03:04:05.678Z",
    revision="9f0c",
    previous_revision="41aa",
    base_url="https://gitconf.example.com",
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("production/payments", "production/payments"),
        # The example of the NATS binding: space, U+20AC and U+1F600.
        ("Euro \u20ac \U0001f600", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("tab\there", "tab%09here"),
        ("~!#$&'()*+,/:;<=>?@[]^_`{|}", "~!#$&'()*+,/:;<=>?@[]^_`{|}"),
        ("\x7f", "%7F"),
    ],
)
def test_nats_header_values_are_percent_encoded(value: str, encoded: str) -> None:
    assert cloudevents.percent_encode(value) == encoded


def test_the_body_is_the_webhook_data_and_the_attributes_travel_beside_it() -> None:
    message = cloudevents.message(json.loads(encode(EVENT)))
    assert message.id == "evt_5fd2a6f4fcb54c7fbc51b6068598f2fc"
    assert json.loads(message.body) == EVENT["data"]
    assert message.content_type == "application/json"
    assert dict(message.attributes) == {
        "specversion": "1.0",
        "id": "evt_5fd2a6f4fcb54c7fbc51b6068598f2fc",
        "source": "https://gitconf.example.com",
        "type": "io.gitconf.config.changed",
        "subject": "production/payments",
        "time": "2026-01-02T03:04:05.678Z",
    }


def test_nats_headers_are_ce_prefixed_with_the_content_type_among_them() -> None:
    headers = cloudevents.nats_headers(cloudevents.message(EVENT))
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": "evt_5fd2a6f4fcb54c7fbc51b6068598f2fc",
        "ce-source": "https://gitconf.example.com",
        "ce-type": "io.gitconf.config.changed",
        "ce-subject": "production/payments",
        "ce-time": "2026-01-02T03:04:05.678Z",
        "ce-datacontenttype": "application/json",
        # Not application/cloudevents+json, which would announce structured mode.
        "Content-Type": "application/json",
    }


def test_amqp_headers_are_cloudevents_colon_prefixed_and_the_content_type_a_property() -> None:
    message = cloudevents.message(EVENT)
    headers = cloudevents.amqp_headers(message)
    assert headers["cloudEvents:specversion"] == "1.0"
    assert headers["cloudEvents:subject"] == "production/payments"
    assert all(name.startswith("cloudEvents:") for name in headers)
    assert "cloudEvents:datacontenttype" not in headers  # the message's content_type instead
    assert len(headers) == 6


def test_a_message_without_attributes_gets_its_content_type_header_only() -> None:
    message = cloudevents.message(EVENT)._replace(attributes=())
    assert cloudevents.nats_headers(message) == {"Content-Type": "application/json"}
    assert cloudevents.amqp_headers(message) == {}
