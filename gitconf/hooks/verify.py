"""Signature checks of Git host webhooks, exactly as each host signs: pure, constant-time.

- GitHub, Bitbucket Cloud and Data Center: `sha256=<hex HMAC-SHA256 of the body>`.
- Gitea, Forgejo, Gogs: the bare hex HMAC-SHA256 of the body, no prefix.
- GitLab: the secret token itself, sent verbatim (it authenticates the sender, not the body).
- Standard Webhooks (generic senders, GitLab's signing token): HMAC-SHA256 over
  `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64 key after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import NamedTuple

from gitconf.errors import GitconfError
from gitconf.signing import sign

__all__ = [
    "TOLERANCE",
    "SignatureError",
    "StandardId",
    "check_bare_hex",
    "check_prefixed",
    "check_standard",
    "check_token",
    "hmac_hex",
]

# Standard Webhooks: a timestamp further than this from now, either way, is refused.
TOLERANCE = 300.0


class SignatureError(GitconfError):
    """A webhook's signature is missing, malformed or does not match the body."""


class StandardId(NamedTuple):
    """The verified identity of a Standard Webhooks message, for the replay cache."""

    msg_id: str
    timestamp: int


def hmac_hex(secret: bytes, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of body."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _same(presented: str, expected: str) -> bool:
    # Bytes, so a non-ASCII header cannot raise; compare_digest leaks only the length.
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode())


def check_prefixed(value: str | None, header: str, secret: str, body: bytes) -> None:
    """Check `header: sha256=<hex>` (GitHub's X-Hub-Signature-256, Bitbucket's X-Hub-Signature)."""
    if not value:
        raise SignatureError(f"{header} is missing: the webhook on the Git host has no secret set")
    expected = "sha256=" + hmac_hex(secret.encode(), body)
    if not _same(value.strip().lower(), expected):
        raise SignatureError(
            f"{header} does not match the body: the secret on the Git host differs from the "
            "server's, or the body was changed on the way"
        )


def check_bare_hex(value: str | None, header: str, secret: str, body: bytes) -> None:
    """Check `header: <hex>` with no prefix (Gitea, Forgejo and Gogs)."""
    if not value:
        raise SignatureError(f"{header} is missing: the webhook on the Git host has no secret set")
    if not _same(value.strip().lower(), hmac_hex(secret.encode(), body)):
        raise SignatureError(
            f"{header} does not match the body: the secret on the Git host differs from the "
            "server's, or the body was changed on the way"
        )


def check_token(value: str | None, header: str, secret: str) -> None:
    """Check a shared token sent verbatim (GitLab's X-Gitlab-Token)."""
    if not value:
        raise SignatureError(f"{header} is missing: set the webhook's secret token on the Git host")
    if not _same(value, secret):
        raise SignatureError(f"{header} is not the configured secret token")


def check_standard(
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    key: bytes,
    body: bytes,
    now: float,
    tolerance: float = TOLERANCE,
) -> StandardId:
    """Check the webhook-id, webhook-timestamp and webhook-signature headers of a message."""
    if not msg_id or not timestamp or not signature:
        missing = [
            name
            for name, value in (
                ("webhook-id", msg_id),
                ("webhook-timestamp", timestamp),
                ("webhook-signature", signature),
            )
            if not value
        ]
        raise SignatureError(
            f"{', '.join(missing)} missing: sign the request as the Standard Webhooks spec says "
            "(webhook-id, webhook-timestamp, webhook-signature: v1,<base64>)"
        )
    if "." in msg_id:
        raise SignatureError(f"webhook-id {msg_id!r} may not contain '.'")
    # Twelve digits reach the year 33658; longer ones are no timestamp (and int() of
    # thousands of digits is slow or refused).
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError(f"webhook-timestamp {timestamp!r} is not whole Unix seconds")
    seconds = int(timestamp)
    if abs(now - seconds) > tolerance:
        raise SignatureError(
            f"webhook-timestamp {timestamp} is {now - seconds:+.0f}s from the server's clock, "
            f"beyond {tolerance:.0f}s: a replay, or a clock to set right (NTP)"
        )
    expected = base64.b64decode(sign(key, msg_id, timestamp, body)[3:])
    matched = False
    for entry in signature.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":  # v1a (ed25519) and future versions are skipped, as the spec says
            continue
        try:
            presented = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # No early exit: every entry costs the same whichever one matches.
        matched |= hmac.compare_digest(presented, expected)
    if not matched:
        raise SignatureError(
            "no v1 entry of webhook-signature matches: the sender's secret differs from the "
            "server's, or the body was changed on the way"
        )
    return StandardId(msg_id, seconds)
