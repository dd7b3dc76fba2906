"""Standard Webhooks signatures: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` headers.

See https://www.standardwebhooks.com: the signed content is `<msg id>.<timestamp>.<body>`,
keyed by the base64-decoded part of the secret after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["PREFIX", "generate_secret", "headers", "parse_secret", "sign"]

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


def generate_secret() -> str:
    """A new random secret: `whsec_` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_secret(secret: str, *, strict: bool = True) -> bytes:
    """The key bytes of a `whsec_` secret; ValueError saying what is wrong.

    Strict (gitconf's own subscription secrets): the prefix, valid base64, 24 to 64 bytes.
    Not strict (a secret a Git host was configured with, for its Standard Webhooks): the
    prefix is optional and the base64 is decoded as the reference libraries decode it, so a
    secret they accept works here too.
    """
    if not strict:
        encoded = secret.removeprefix(PREFIX)
        try:
            key = base64.b64decode(encoded + "==")
        except (binascii.Error, ValueError):
            raise ValueError(f"the secret is not {PREFIX} followed by base64") from None
        if not key:
            raise ValueError("the secret is empty")
        return key
    if not secret.startswith(PREFIX):
        raise ValueError(f"a secret starts with {PREFIX!r} followed by base64")
    encoded = secret[len(PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {PREFIX!r} is not valid base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes once decoded, not {len(key)}"
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }
