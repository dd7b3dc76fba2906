"""Push bodies in each Git host's real shape (from vectors/) and their signed headers.

The HMACs here are computed independently of gitconf.hooks.verify (hmac/hashlib directly,
and the standardwebhooks package for Standard Webhooks), so the tests check gitconf against
the hosts' schemes, not against itself.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

VECTORS = Path(__file__).resolve().parent / "vectors"

# The secret of each provider in the tests' server settings.
SECRETS = {
    "github": "It's a Secret to Everybody",
    "gitlab": "gitlab-secret-token",
    "gitea": "71295b197fa25f4356d2fb9965df3f2379d903d7",
    "bitbucket": "bitbucket-secret",
    "generic": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

# Bitbucket Cloud and Data Center share the endpoint (and the signature); both are tested.
VARIANTS = ["github", "gitlab", "gitea", "bitbucket-cloud", "bitbucket-dc", "generic"]


def provider_of(variant: str) -> str:
    """The endpoint of a variant."""
    return variant.split("-")[0]


def vector_bytes(name: str) -> bytes:
    """The exact bytes of a vector file."""
    return (VECTORS / name).read_bytes()


@cache
def _vector(name: str) -> Any:
    return json.loads(vector_bytes(name))


def vector(name: str) -> Any:
    """A fresh copy of a decoded vector file."""
    return copy.deepcopy(_vector(name))


def push_event(
    variant: str, ref: str, before: str, after: str, *, deleted: bool = False
) -> tuple[dict[str, str], bytes]:
    """The event headers and JSON body of a push in the host's real shape."""
    branch = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if variant == "github":
        doc = vector("github_push_new_branch.json")
        doc.update(ref=ref, before=before, after=after, created=False, deleted=deleted)
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
    elif variant == "gitlab":
        doc = vector("gitlab_push.json")
        doc.update(ref=ref, before=before, after=after, checkout_sha=None if deleted else after)
        headers = {"X-Gitlab-Event": "Push Hook"}
    elif variant == "gitea":
        doc = vector("gitea_push.json")
        doc.update(ref=ref, before=before, after=after)
        headers = {"X-Gitea-Event": "push", "X-Gogs-Event": "push", "X-GitHub-Event": "push"}
    elif variant == "bitbucket-cloud":
        doc = vector("bitbucket_cloud_push.json")
        change = doc["push"]["changes"][0]
        kind = "tag" if ref.startswith("refs/tags/") else "branch"
        change["old"].update(name=branch, type=kind)
        change["old"]["target"]["hash"] = before
        if deleted:
            change["new"] = None
            change["closed"] = True
        else:
            change["new"].update(name=branch, type=kind)
            change["new"]["target"]["hash"] = after
        headers = {"X-Event-Key": "repo:push", "X-Request-UUID": str(uuid.uuid4())}
    elif variant == "bitbucket-dc":
        doc = vector("bitbucket_dc_push.json")
        change = doc["changes"][0]
        change["ref"].update(id=ref, displayId=branch)
        change["ref"]["type"] = "TAG" if ref.startswith("refs/tags/") else "BRANCH"
        change.update(refId=ref, fromHash=before, toHash=after)
        change["type"] = "DELETE" if deleted else "UPDATE"
        headers = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": str(uuid.uuid4())}
    elif variant == "generic":
        doc = {"ref": ref, "before": before, "after": after}
        headers = {}
    else:
        raise ValueError(variant)
    return headers, json.dumps(doc).encode()


def hex_hmac(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256, as every HMAC-signing host computes it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers made by the reference library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = dt.datetime.fromtimestamp(int(time.time() if at is None else at), tz=dt.UTC)
    timestamp = str(int(when.timestamp()))
    try:
        signature = Webhook(secret).sign(msg_id, when, body.decode())
    except UnicodeDecodeError:  # the library signs text only; a binary body is signed by hand
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
        signature = "v1," + base64.b64encode(digest.digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def signature_headers(variant: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    """The headers that authenticate body, as the host sends them."""
    secret = SECRETS[provider_of(variant)] if secret is None else secret
    if variant == "github":
        return {"X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body)}
    if variant == "gitlab":
        return {"X-Gitlab-Token": secret}
    if variant == "gitea":
        signature = hex_hmac(secret, body)
        return {"X-Gitea-Signature": signature, "X-Gogs-Signature": signature}
    if variant.startswith("bitbucket"):
        return {"X-Hub-Signature": "sha256=" + hex_hmac(secret, body)}
    return standard_headers(secret, body)


def signed_push(
    variant: str, ref: str, before: str, after: str, **kwargs: Any
) -> tuple[dict[str, str], bytes]:
    """Headers (event, signature, content type) and body of a signed push."""
    headers, body = push_event(variant, ref, before, after, **kwargs)
    return {
        "Content-Type": "application/json",
        **headers,
        **signature_headers(variant, body),
    }, body


def hooks_settings() -> dict[str, Any]:
    """The hooks: section of the tests' server settings: every provider on."""
    return {provider: {"secret": secret} for provider, secret in SECRETS.items()}
