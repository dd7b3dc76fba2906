"""What every dashboard page shares: who is asking, the CSRF check, rendering and headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, g, redirect, render_template, request

from gitconf.server.auth import ANONYMOUS_ADMIN, Auth, Principal
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.ui.session import COOKIE, Session, SessionCodec
from gitconf.ui.throttle import LoginThrottle

if TYPE_CHECKING:
    from gitconf.changes.api import ChangeContext

__all__ = ["UiContext", "check_form", "page", "session", "ui", "who"]

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Pages hold configs and forms: never cached, framed, or sent to other sites as a Referer.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class UiContext:
    """What the dashboard's views use besides the server's Deps."""

    auth: Auth
    codec: SessionCodec
    changes: ChangeContext | None = None  # the change API (None: it is off)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def ui() -> UiContext:
    """The dashboard's context (in a view)."""
    found: UiContext = current_app.extensions["gitconf.ui"]
    return found


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""

    def __init__(self, ended: bool) -> None:
        super().__init__("login required")
        self.ended = ended  # a session cookie was sent but no longer names a valid token


def session() -> Session:
    """This request's session: the cookie's, or a new one (set on the response by page())."""
    found: Session | None = g.get("ui_session")
    if found is None:
        found = ui().codec.loads(request.cookies.get(COOKIE))
        if found is None:
            # A cookie that was sent but is no longer good: expired, or signed with another key.
            g.ui_stale = COOKIE in request.cookies
            found = Session.fresh()
            g.ui_new_session = found
        g.ui_session = found
    return found


def who() -> Principal:
    """The caller: the anonymous admin without tokens, a bearer header's token, or the
    session's; LoginRequired otherwise."""
    auth = ui().auth
    if not auth.enabled:
        return ANONYMOUS_ADMIN
    header = request.headers.get("Authorization")
    if header:
        return deps().reader.principal(header)
    current = session()
    if current.name is None or current.binding is None:
        raise LoginRequired(ended=bool(g.get("ui_stale")))
    principal = auth.by_binding(current.name, current.binding, ui().codec.key)
    if principal is None:
        raise LoginRequired(ended=True)
    return principal


def check_form() -> None:
    """A POST from the dashboard's own forms: a form body and this session's CSRF token.

    The Origin check of gitconf.server.guard ran before; the token stops what it cannot (an
    older browser that sends no Origin)."""
    if request.mimetype not in FORM_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the dashboard's forms send application/x-www-form-urlencoded, not "
            f"{request.mimetype or 'no content type'!r}; use the JSON API under /v1 instead",
        )
    sent = request.form.get("csrf")
    cookie = ui().codec.loads(request.cookies.get(COOKIE))
    if not sent or cookie is None:
        raise ApiError(
            400,
            "csrf_missing",
            "the form came without its CSRF token or without the session cookie (expired, or "
            "cookies are blocked); reload the page and send the form again",
        )
    if not cookie.csrf_matches(sent):
        raise ApiError(
            403,
            "csrf_mismatch",
            "the form's CSRF token is not this session's: it came from another page or an "
            "older session; reload the page and send the form again",
        )
    g.ui_session = cookie


def set_session(response: Response, value: Session | None) -> None:
    """Put a session on the response's cookie (None: remove it)."""
    secure = request.is_secure or deps().settings.base_url().startswith("https://")
    if value is None:
        response.delete_cookie(COOKIE, path="/ui", secure=secure, httponly=True, samesite="Strict")
        return
    response.set_cookie(
        COOKIE,
        ui().codec.dumps(value),
        max_age=ui().codec.lifetime,
        path="/ui",
        secure=secure,
        httponly=True,
        samesite="Strict",
    )


def finish(response: Response) -> Response:
    """The dashboard's headers, and a new session's cookie."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    new = g.get("ui_new_session")
    if new is not None and not g.get("ui_cookie_set"):
        set_session(response, new)
    return response


def page(template: str, status: int = 200, **values: Any) -> Response:
    """A rendered page, with what every page shows (who is logged in, the CSRF token)."""
    principal = g.get("ui_principal")
    body = render_template(
        template,
        principal=principal,
        tokens=ui().auth.enabled,
        csrf=session().csrf,
        **values,
    )
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def to_login(ended: bool) -> Response:
    """The redirect of a page that needs a login."""
    return redirect("/ui/login?ended=1" if ended else "/ui/login", 303)  # type: ignore[return-value]
