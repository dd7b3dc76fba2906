"""Standard Webhooks signatures, checked against the spec's vector and the real library."""

from __future__ import annotations

import datetime as dt

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gitconf import signing

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_vector() -> None:
    key = signing.parse_secret(VECTOR_SECRET)
    assert signing.sign(key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_reference_library_verifies_our_headers() -> None:
    secret = signing.generate_secret()
    body = b'{"specversion":"1.0","id":"evt_1"}'
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = signing.headers(signing.parse_secret(secret), "evt_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"specversion": "1.0", "id": "evt_1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_generated_secrets_are_whsec_and_32_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(signing.parse_secret(secret)) == 32
    assert secret != signing.generate_secret()


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_c2hvcnQ=", "24 to 64 bytes once decoded, not 5"),
    ],
)
def test_bad_secrets_say_what_is_wrong(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing.parse_secret(secret)
