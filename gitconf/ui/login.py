"""Logging in with a token and out again."""

from __future__ import annotations

import logging
import math
import time

from flask import Response, g, redirect, request

from gitconf.server.audit_api import record
from gitconf.server.auth import ANONYMOUS_ADMIN
from gitconf.ui.session import Session
from gitconf.ui.web import check_form, page, session, set_session, ui

__all__ = ["login_form", "login_post", "logout"]

log = logging.getLogger(__name__)


def _redirect(to: str) -> Response:
    return redirect(to, 303)  # type: ignore[return-value]


def login_form() -> Response:
    """The login form: one field, the token."""
    if not ui().auth.enabled:
        g.ui_principal = ANONYMOUS_ADMIN
        return page("login.html", tokenless=True)
    current = session()
    if current.name is not None and current.binding is not None:
        signed_in = ui().auth.by_binding(current.name, current.binding, ui().codec.key)
        if signed_in is not None:
            return _redirect("/ui/")
    g.ui_principal = None
    ended = request.args.get("ended") == "1"
    return page("login.html", ended=ended)


def login_post() -> Response:
    """Check the token; on success a new session (and CSRF token) and a redirect to /ui/."""
    check_form()
    context = ui()
    if not context.auth.enabled:
        return _redirect("/ui/")
    g.ui_principal = None
    client = request.remote_addr or "-"
    wait = context.throttle.wait(client, time.monotonic())
    if wait > 0:
        error = f"Too many refused logins from your address: try again in {math.ceil(wait)} s."
        response = page("login.html", status=429, error=error)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    token = request.form.get("token", "").strip()
    found = context.auth.session(token, context.codec.key) if token else None
    if found is None:
        context.throttle.refused(client, time.monotonic())
        expired = context.auth.expired("Bearer " + token) if token else None
        if not token:
            error = "Enter a token: one of the tokens in the server's settings (tokens:)."
        elif expired:
            error = (
                f"Token {expired!r} has expired (expires_at in the server settings); "
                "ask for a new one."
            )
        else:
            error = (
                "That token is not one of this server's tokens. Check for a missing character, "
                "or ask the server's operator for one (tokens: in server.yaml)."
            )
        # Never the token itself: who tried, from where, and why it failed.
        log.warning(
            "dashboard login refused from %s: %s",
            request.remote_addr,
            f"token {expired!r} expired" if expired else "no such token",
        )
        record("token.refused", "POST /ui/login", "401 unauthorized", who=expired or "-",
               detail={"from": request.remote_addr})  # fmt: skip
        return page("login.html", status=401, error=error)
    principal, binding = found
    log.info("dashboard login: %r from %s", principal.name, request.remote_addr)
    response = _redirect("/ui/")
    set_session(response, Session.fresh(principal.name, binding))
    g.ui_cookie_set = True
    return response


def logout() -> Response:
    """End the session: the cookie is removed and the next page asks for a token again."""
    check_form()
    session()
    response = _redirect("/ui/login")
    set_session(response, None)
    g.ui_cookie_set = True
    return response
