"""The dashboard at /ui/ as a feature: server-rendered pages over the JSON API's documents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException

from gitconf.feature import Feature
from gitconf.server.errors import ApiError, internal_error
from gitconf.ui import change, login, pages
from gitconf.ui.openapi import PATHS
from gitconf.ui.session import SessionCodec, load_key
from gitconf.ui.web import LoginRequired, UiContext, finish, page, to_login, who

if TYPE_CHECKING:
    from flask.blueprints import BlueprintSetupState

    from gitconf.changes.api import ChangeContext
    from gitconf.feature import Parts

__all__ = ["feature", "make_blueprint"]

log = logging.getLogger(__name__)

View = Callable[..., Response]


def _signed_in(view: View) -> View:
    """A page for a logged-in caller (anyone, without tokens): else a redirect to the login."""

    @wraps(view)
    def run(*args: str, **kwargs: str) -> Response:
        try:
            g.ui_principal = who()
        except LoginRequired as exc:
            return to_login(exc.ended)
        return view(*args, **kwargs)

    return run


def _error(exc: ApiError) -> Response:
    """An error as the API gives it (code, message with its fix), on a page."""
    if exc.status == 401:
        return to_login(ended=False)
    response = page("error.html", status=exc.status, error=exc)
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def _unexpected(exc: Exception) -> Response:
    """A bug: logged with its traceback, and the API's 500 on a page."""
    if isinstance(exc, HTTPException):  # a 404 or 405 of Flask's: its own page
        return _error(
            ApiError(
                exc.code or 500,
                (exc.name or "error").lower().replace(" ", "_"),
                exc.description or "",
            )
        )
    log.exception("unexpected error on %s %s", request.method, request.path)
    return _error(internal_error())


def make_blueprint(context: UiContext) -> Blueprint:
    """The dashboard's routes, its templates and its one stylesheet."""
    bp = Blueprint(
        "ui",
        __name__,
        url_prefix="/ui",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )

    def record(state: BlueprintSetupState) -> None:
        state.app.extensions["gitconf.ui"] = context

    bp.record_once(record)
    bp.register_error_handler(ApiError, _error)
    bp.register_error_handler(Exception, _unexpected)
    bp.after_request(finish)
    bp.add_url_rule("/login", view_func=login.login_form, methods=["GET"])
    bp.add_url_rule("/login", endpoint="login_post", view_func=login.login_post, methods=["POST"])
    bp.add_url_rule("/logout", view_func=login.logout, methods=["POST"])
    routes: list[tuple[str, View]] = [
        ("/", pages.overview),
        ("/config/<env>/<service>", pages.config),
        ("/revisions", pages.revisions),
        ("/diff", pages.diff),
        ("/subscriptions", pages.subscriptions),
        ("/releases", pages.releases),
        ("/audit", pages.audit),
    ]
    for rule, view in routes:
        bp.add_url_rule(rule, view_func=_signed_in(view), methods=["GET"])
    bp.add_url_rule("/change", view_func=_signed_in(change.change_form), methods=["GET"])
    bp.add_url_rule(
        "/change",
        endpoint="change_post",
        view_func=_signed_in(change.change_post),
        methods=["POST"],
    )
    return bp


def feature(parts: Parts, changes: ChangeContext | None = None) -> Feature:
    """Serve the dashboard under /ui/, its sessions signed with a key kept in the state dir;
    its change form submits to changes (the change API), or says the API is off."""
    context = UiContext(parts.auth, SessionCodec(load_key(parts.state_dir)), changes)
    return Feature("ui", blueprint=make_blueprint(context), openapi=PATHS)
