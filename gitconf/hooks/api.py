"""POST /v1/hooks/<provider>: a verified push to the tracked branch asks for a poll at once.

Order of checks, each with its own status: the provider is on (404) and its secret readable
(503); the body fits (413); the signature holds (401); a Standard Webhooks id is new (409);
the body is JSON (400). Then a push to the tracked branch answers 202 and wakes the poller;
anything else is acknowledged with 200 and the reason it is ignored.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Blueprint, Request, Response, request

from gitconf.clock import iso, utcnow
from gitconf.hooks import verify
from gitconf.hooks.providers import EVENT_HEADERS, PROVIDERS, PayloadError, decide, parse
from gitconf.hooks.replay import ReplayCache
from gitconf.metrics import Metrics
from gitconf.server.audit_api import record
from gitconf.server.errors import ApiError
from gitconf.server.jsonbody import nesting_exceeds
from gitconf.server.responses import json_response
from gitconf.signing import parse_secret

__all__ = ["DEFAULT_MAX_BODY", "HookContext", "HookRefused", "make_blueprint"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 5 * 1024 * 1024
MAX_DEPTH = 64  # JSON nesting: pushes nest about 10 deep (Bitbucket Cloud's)
GITEA_SIGNATURES = ("X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature")


class PollRequester(Protocol):
    """The poller, as hooks see it."""

    def request(self) -> None:
        """Ask for a poll as soon as possible."""


class HookRefused(ApiError):
    """An ApiError that also names the outcome counted in gitconf_hooks_received."""

    def __init__(self, outcome: str, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.outcome = outcome


@dataclass
class HookContext:
    """What the hook endpoints use: the hooks settings, the poller, metrics, a replay cache."""

    hooks: Mapping[str, Any]
    environ: Mapping[str, str]
    poller: PollRequester
    metrics: Metrics
    branch: str
    replay: ReplayCache = field(default_factory=ReplayCache)
    # Globs of the other branches the mirror fetches (spring.labels): their pushes poll too.
    labels: tuple[str, ...] = ()
    clock: Callable[[], float] = time.time
    last: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def max_body(self) -> int:
        """The largest body accepted, in bytes."""
        return int(self.hooks.get("max_body", DEFAULT_MAX_BODY))

    def admits(self, environ: Mapping[str, Any]) -> bool:
        """Whether a request's body is worth reading: a provider that is on, with its secret."""
        provider = environ.get("PATH_INFO", "").removeprefix("/v1/hooks/")
        if provider not in PROVIDERS:
            return False
        try:
            self.secret(provider)
        except HookRefused:
            return False
        return True

    def secret(self, provider: str) -> str:
        """The provider's secret; 404 when none is configured, 503 when its variable is unset."""
        spec = self.hooks.get(provider)
        if not isinstance(spec, Mapping):
            raise HookRefused(
                "disabled",
                404,
                "hook_disabled",
                f"the {provider} webhook is off: no secret is configured for it. Add "
                f"hooks: {{{provider}: {{secret_env: NAME}}}} to the server settings",
            )
        if "secret" in spec:
            return str(spec["secret"])
        name = spec["secret_env"]
        value = self.environ.get(name)
        if not value:
            raise HookRefused(
                "misconfigured",
                503,
                "hook_secret_missing",
                f"hooks.{provider}.secret_env names {name!r}, which is not set in the server's "
                "environment: set it and restart gitconf",
            )
        return value

    def problems(self) -> list[str]:
        """What keeps a configured provider from working, for the log at start."""
        found = []
        for provider in PROVIDERS:
            try:
                secret = self.secret(provider)
                if provider == "generic":
                    _standard_key(provider, secret)
            except HookRefused as exc:
                if exc.status != 404:
                    found.append(exc.message)
        return found

    def count(self, provider: str, outcome: str, status: int) -> None:
        """Count one hook in the metrics and remember it for /v1/status."""
        self.metrics.hooks.labels(provider, outcome).inc()
        when = iso(utcnow())
        self.last[provider] = {"at": when, "outcome": outcome, "status": status}

    def status(self) -> dict[str, Any]:
        """Which providers are on, and the last hook each received."""
        doc: dict[str, Any] = {}
        for provider in PROVIDERS:
            try:
                self.secret(provider)
                state = "on"
            except HookRefused as exc:
                state = "off" if exc.status == 404 else "misconfigured"
            doc[provider] = {"state": state, "last": self.last.get(provider)}
        return doc


def _standard_key(provider: str, secret: str) -> bytes:
    try:
        return parse_secret(secret, strict=False)
    except ValueError as exc:
        raise HookRefused(
            "misconfigured",
            503,
            "hook_secret_invalid",
            f'hooks.{provider}: {exc}; make one with: python3 -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\"",
        ) from None


def _too_large(limit: int) -> HookRefused:
    return HookRefused(
        "too_large",
        413,
        "body_too_large",
        f"the body is over {limit} bytes; raise hooks.max_body in the server settings if "
        "the Git host really sends pushes this large",
    )


def read_body(req: Request, limit: int) -> bytes:
    """The request body, reading at most limit + 1 bytes; 413 beyond limit."""
    length = req.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    stream = req.stream
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _header(req: Request, *names: str) -> str | None:
    """The first of names present with a value; a header present but empty is no value."""
    for name in names:
        value = req.headers.get(name)
        if value:
            return value
    return None


def _unauthorized(exc: verify.SignatureError) -> HookRefused:
    return HookRefused("unauthorized", 401, "bad_signature", str(exc))


def _verify(ctx: HookContext, provider: str, secret: str, req: Request, body: bytes) -> None:
    """Check the request is signed with secret, as provider signs; 401, or 409 on a replay."""
    headers = req.headers
    standard = provider == "generic" or (
        provider == "gitlab" and secret.startswith("whsec_") and "webhook-signature" in headers
    )
    try:
        if standard:
            key = _standard_key(provider, secret)
            now = ctx.clock()
            seen = verify.check_standard(
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
                key,
                body,
                now,
            )
            if not ctx.replay.first_use(
                f"{provider}:{seen.msg_id}", seen.timestamp + verify.TOLERANCE, now
            ):
                raise HookRefused(
                    "replayed",
                    409,
                    "replayed",
                    f"webhook-id {seen.msg_id!r} was already accepted: a message is delivered "
                    "once; a sender sends each new message with a new id",
                )
        elif provider == "github":
            verify.check_prefixed(
                headers.get("X-Hub-Signature-256"), "X-Hub-Signature-256", secret, body
            )
        elif provider == "bitbucket":
            verify.check_prefixed(headers.get("X-Hub-Signature"), "X-Hub-Signature", secret, body)
        elif provider == "gitea":
            verify.check_bare_hex(
                _header(req, *GITEA_SIGNATURES), "X-Gitea-Signature", secret, body
            )
        else:  # gitlab with its secret token
            verify.check_token(headers.get("X-Gitlab-Token"), "X-Gitlab-Token", secret)
    except verify.SignatureError as exc:
        raise _unauthorized(exc) from None


def _decode(body: bytes, mimetype: str) -> dict[str, Any]:
    """The JSON object of a body; GitHub and Gitea may also send it form-encoded as payload=."""
    try:
        text = body.decode("utf-8")
        if mimetype == "application/x-www-form-urlencoded":
            text = urllib.parse.parse_qs(text, strict_parsing=True)["payload"][0]
        if nesting_exceeds(text.encode(), MAX_DEPTH):
            raise HookRefused(
                "malformed",
                400,
                "malformed_body",
                f"the body nests arrays and objects more than {MAX_DEPTH} levels deep; a push "
                "event from a Git host nests about 10",
            )
        doc = json.loads(text)
    except (ValueError, KeyError) as exc:
        raise HookRefused(
            "malformed",
            400,
            "malformed_body",
            f"the body is not JSON ({exc.__class__.__name__}): set the webhook's content "
            "type to application/json on the Git host",
        ) from None
    if not isinstance(doc, dict):
        raise HookRefused(
            "malformed",
            400,
            "malformed_body",
            "the body must be a JSON object, not a list or value",
        )
    return doc


def handle(ctx: HookContext, provider: str, req: Request) -> tuple[str, Response]:
    """The outcome and the response for one hook; HookRefused for every refusal."""
    secret = ctx.secret(provider)
    body = read_body(req, ctx.max_body)
    _verify(ctx, provider, secret, req, body)
    doc = _decode(body, req.mimetype)
    event = _header(req, *EVENT_HEADERS[provider])
    try:
        pushes = parse(provider, event, doc)
    except PayloadError as exc:
        raise HookRefused(
            "malformed", 400, "malformed_payload", f"{event or provider} event: {exc}"
        ) from None
    if pushes and pushes[0].kind == "ping":
        message = f"the signature is valid; pushes to refs/heads/{ctx.branch} trigger a poll"
        return "ping", json_response({"ping": "ok", "message": message})
    push, reason = decide(pushes, ctx.branch, ctx.labels)
    if push is None:
        log.debug("%s hook ignored: %s", provider, reason)
        return "ignored", json_response({"ignored": reason})
    ctx.poller.request()
    log.info(
        "%s hook: push to %s (%s); polling now",
        provider,
        push.ref or "the tracked branch",
        (push.after or "?")[:12],
    )
    return "accepted", json_response({"accepted": True, "ref": push.ref, "after": push.after}, 202)


def make_blueprint(ctx: HookContext) -> Blueprint:
    """The hooks blueprint over one context (one per server)."""
    bp = Blueprint("hooks", __name__)

    @bp.post(f"/v1/hooks/<any({', '.join(PROVIDERS)}):provider>")
    def receive(provider: str) -> Response:
        """Receive one Git host webhook."""
        who = f"hook:{provider}"  # a hook presents a signature, not a token
        try:
            outcome, response = handle(ctx, provider, request)
        except HookRefused as exc:
            if exc.status in (401, 409):
                log.warning(
                    "%s hook from %s refused: %s", provider, request.remote_addr, exc.message
                )
            ctx.count(provider, exc.outcome, exc.status)
            record("hook.refused", provider, f"{exc.status} {exc.code}", who=who,
                   detail={"message": exc.message, "from": request.remote_addr})  # fmt: skip
            raise
        except Exception:
            ctx.count(provider, "error", 500)
            record("hook.failed", provider, "500 internal", who=who)
            raise
        ctx.count(provider, outcome, response.status_code)
        record(f"hook.{outcome}", provider, str(response.status_code), who=who)
        return response

    return bp
