"""gitconf.hooks.verify against the hosts' published vectors and the Standard Webhooks library."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from gitconf.hooks.verify import (
    SignatureError,
    StandardId,
    check_bare_hex,
    check_prefixed,
    check_standard,
    check_token,
    hmac_hex,
)
from gitconf.signing import parse_secret, sign
from tests.hooks.payloads import VECTORS, vector, vector_bytes

HMAC_VECTORS: list[dict[str, Any]] = [
    v for v in vector("webhook_signature_vectors.json")["vectors"] if "header_value" in v
]
STANDARD = vector("standard_webhooks.json")
OFFICIAL = STANDARD["vectors"][0]
OFFICIAL_BODY = OFFICIAL["payload"].encode()
OFFICIAL_NOW = float(OFFICIAL["timestamp"])


def _body(v: dict[str, Any]) -> bytes:
    return vector_bytes(v["body_file"]) if "body_file" in v else v["body_utf8"].encode()


def test_github_documented_vector() -> None:
    doc = json.loads((VECTORS / "github_signature.json").read_text())
    assert doc["expected_header_value"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    body = doc["payload"].encode()
    assert hmac_hex(doc["secret"].encode(), body) == doc["expected_signature_hex"]
    check_prefixed(doc["expected_header_value"], "X-Hub-Signature-256", doc["secret"], body)


@pytest.mark.parametrize(
    "case", vector("github_signature.json")["negative_cases_suggested"], ids=lambda c: c["why"]
)
def test_github_documented_negative_cases(case: dict[str, Any]) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check_prefixed(
            case["header"], "X-Hub-Signature-256", case["secret"], case["payload"].encode()
        )


@pytest.mark.parametrize("v", HMAC_VECTORS, ids=lambda v: v["name"])
def test_hmac_vectors_on_real_payload_bytes(v: dict[str, Any]) -> None:
    body = _body(v)
    if v["header"] == "X-Hub-Signature" and v["provider"] == "github":
        # GitHub's legacy SHA-1 header is not accepted: GitHub always sends the SHA-256 one.
        with pytest.raises(SignatureError):
            check_prefixed(v["header_value"], v["header"], v["secret"], body)
        return
    check = check_bare_hex if v["provider"] in ("gitea", "gogs") else check_prefixed
    if v["expect_valid"]:
        check(v["header_value"], v["header"], v["secret"], body)
    else:
        with pytest.raises(SignatureError, match=f"{v['header']} does not match the body"):
            check(v["header_value"], v["header"], v["secret"], body)


def test_bitbucket_data_center_signs_sha256_under_the_sha1_header_name() -> None:
    v = next(v for v in HMAC_VECTORS if v["name"] == "bitbucket_server_goscm_push")
    body = vector_bytes(v["body_file"])
    check_prefixed(v["header_value"], "X-Hub-Signature", v["secret"], body)
    # The same signature without its prefix, or bare hex as Gitea sends it, is not Bitbucket's.
    with pytest.raises(SignatureError):
        check_prefixed(v["expected_hex"], "X-Hub-Signature", v["secret"], body)


def test_gitea_signature_has_no_prefix() -> None:
    v = next(v for v in HMAC_VECTORS if v["name"] == "gitea_goscm_pull_request_edited")
    body = vector_bytes(v["body_file"])
    check_bare_hex(v["header_value"].upper(), "X-Gitea-Signature", v["secret"], body)
    with pytest.raises(SignatureError, match="does not match"):
        check_bare_hex("sha256=" + v["header_value"], "X-Gitea-Signature", v["secret"], body)


@pytest.mark.parametrize("check", [check_prefixed, check_bare_hex])
@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_header_is_no_signature(check: Any, value: str | None) -> None:
    with pytest.raises(SignatureError, match="X-Sig is missing"):
        check(value, "X-Sig", "secret", b"{}")


def test_truncated_and_non_ascii_signatures_fail_cleanly() -> None:
    good = "sha256=" + hmac_hex(b"s", b"{}")
    for value in (good[:-1], good[:10], good + "0", "sha256=é" + good[8:]):
        with pytest.raises(SignatureError):
            check_prefixed(value, "X-Hub-Signature-256", "s", b"{}")


def test_gitlab_token_cases() -> None:
    v = next(v for v in vector("webhook_signature_vectors.json")["vectors"] if "cases" in v)
    for case in v["cases"]:
        if case["expect_valid"]:
            check_token(case["header_value"], "X-Gitlab-Token", v["configured_secret"])
        else:
            with pytest.raises(SignatureError, match="X-Gitlab-Token"):
                check_token(case["header_value"], "X-Gitlab-Token", v["configured_secret"])
    with pytest.raises(SignatureError, match="X-Gitlab-Token is not the configured secret"):
        check_token("topsecre", "X-Gitlab-Token", "topsecret")


# Standard Webhooks


def test_official_standard_webhooks_vector() -> None:
    key = parse_secret(OFFICIAL["secret"], strict=False)
    assert key.hex() == OFFICIAL["secret_raw_hex"]
    signature = sign(key, OFFICIAL["msg_id"], OFFICIAL["timestamp"], OFFICIAL_BODY)
    assert signature == OFFICIAL["expected_signature_header"]
    assert check_standard(
        OFFICIAL["msg_id"],
        str(OFFICIAL["timestamp"]),
        signature,
        key,
        OFFICIAL_BODY,
        now=OFFICIAL_NOW,
    ) == StandardId(OFFICIAL["msg_id"], OFFICIAL["timestamp"])


def test_the_whsec_prefix_is_optional() -> None:
    assert parse_secret(STANDARD["vectors"][1]["secret"], strict=False) == parse_secret(
        OFFICIAL["secret"], strict=False
    )


@pytest.mark.parametrize(
    "secret, case",
    list(STANDARD["derived_not_official"]["unpadded_secret_cases"].items()),
)
def test_unpadded_secrets_decode_as_the_reference_libraries_do(
    secret: str, case: dict[str, Any]
) -> None:
    key = parse_secret(secret, strict=False)
    assert key.hex() == case["decoded_key_hex"]
    assert (
        sign(key, OFFICIAL["msg_id"], OFFICIAL["timestamp"], OFFICIAL_BODY) == (case["signature"])
    )


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_a"])
def test_an_empty_or_undecodable_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        parse_secret(secret, strict=False)


def _check(signature: str, *, timestamp: str | None = None, now: float = OFFICIAL_NOW) -> None:
    check_standard(
        OFFICIAL["msg_id"],
        str(OFFICIAL["timestamp"]) if timestamp is None else timestamp,
        signature,
        parse_secret(OFFICIAL["secret"], strict=False),
        OFFICIAL_BODY,
        now=now,
    )


def test_standard_negative_vectors() -> None:
    negative = STANDARD["negative_vectors_from_tests"]
    with pytest.raises(SignatureError, match="no v1 entry"):
        _check(negative[0]["webhook-signature"])
    # Several entries (key rotation): bogus v1 and v2 ones are skipped, the good one passes.
    _check(negative[1]["webhook-signature"])


@pytest.mark.parametrize("direction", [-1, 1], ids=["too-old", "too-new"])
def test_a_timestamp_beyond_five_minutes_fails(direction: int) -> None:
    with pytest.raises(SignatureError, match="beyond 300s"):
        _check(OFFICIAL["expected_signature_header"], now=OFFICIAL_NOW - direction * 301)
    _check(OFFICIAL["expected_signature_header"], now=OFFICIAL_NOW - direction * 300)


@pytest.mark.parametrize(
    "msg_id, timestamp, signature, message",
    [
        (None, "1614265330", "v1,x", "webhook-id missing"),
        ("msg_1", "", "v1,x", "webhook-timestamp missing"),
        ("msg_1", "1614265330", None, "webhook-signature missing"),
        (None, None, None, "webhook-id, webhook-timestamp, webhook-signature missing"),
        ("msg_1", "hello", "v1,x", "'hello' is not whole Unix seconds"),
        ("msg_1", "1614265330.5", "v1,x", "is not whole Unix seconds"),
        ("msg_1", "9" * 400, "v1,x", "is not whole Unix seconds"),
        ("msg_1", "9" * 5000, "v1,x", "is not whole Unix seconds"),
        ("msg.1", "1614265330", "v1,x", "may not contain '.'"),
        ("msg_1", "1614265330", "v1a,abc v2,abc", "no v1 entry"),
        ("msg_1", "1614265330", "garbage", "no v1 entry"),
    ],
)
def test_bad_standard_headers(
    msg_id: str | None, timestamp: str | None, signature: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message.replace(".", r"\.")):
        check_standard(msg_id, timestamp, signature, b"key", b"{}", now=OFFICIAL_NOW)


def test_signed_by_the_reference_library_verifies_here_and_back() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = '{"ref": "refs/heads/main", "after": "ü"}'.encode()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    signature = Webhook(secret).sign("msg_abc", now, body.decode())
    key = parse_secret(secret, strict=False)
    check_standard("msg_abc", str(int(now.timestamp())), signature, key, body, now.timestamp())
    ours = sign(key, "msg_abc", int(now.timestamp()), body)
    assert ours == signature
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": ours,
    }
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(SignatureError):
        check_standard(
            "msg_abc", headers["webhook-timestamp"], ours, key, body + b" ", now.timestamp()
        )
