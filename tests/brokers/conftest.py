"""The machine's RabbitMQ and NATS, from GITCONF_TEST_AMQP_URL and GITCONF_TEST_NATS_URL."""

from __future__ import annotations

import os

import pytest


def broker_url(variable: str, what: str) -> str:
    """The URL of a real broker, or skip saying which variable .ci/run sets."""
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set: no {what} to test against (.ci/run sets it)")
    return url


@pytest.fixture
def amqp_url() -> str:
    return broker_url("GITCONF_TEST_AMQP_URL", "RabbitMQ")


@pytest.fixture
def nats_url() -> str:
    return broker_url("GITCONF_TEST_NATS_URL", "NATS server with JetStream")
