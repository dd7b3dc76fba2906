"""The change form: KEY=VALUE lines for one config, previewed (a dry run of POST /v1/changes:
the effective diff and the problems) and then committed through the same change API."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request

from gitconf.changes.api import submit
from gitconf.changes.command import parse_assignment
from gitconf.changes.errors import BadKey
from gitconf.changes.ops import parse_key
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.ops import environments_doc
from gitconf.ui.web import check_form, page, ui

__all__ = ["change_form", "change_post"]

FIELDS = ("config", "base", "set", "unset", "layer", "message")


def _writable() -> list[str]:
    """The configs (env/service) the caller may change."""
    principal = g.ui_principal
    envs = environments_doc(deps(), principal)["environments"]
    return [
        f"{env['name']}/{service}"
        for env in envs
        for service in env["services"]
        if principal.may("write", env["name"], service)
    ]


def _form(values: dict[str, str], status: int = 200, **extra: Any) -> Response:
    return page(
        "change.html",
        status=status,
        configs=_writable(),
        values=values,
        **extra,
    )


def change_form() -> Response:
    """The form, for the config of ?config=env/service if given, based on the served revision."""
    if ui().changes is None:
        return page("unavailable.html", title="Change", what="change")
    served = deps().reader.revision(None, g.ui_principal)
    values = {name: "" for name in FIELDS}
    values["config"] = request.args.get("config", "")
    values["base"] = served.revision
    return _form(values)


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _body(values: dict[str, str], dry_run: bool) -> dict[str, Any]:
    """The POST /v1/changes body the form's fields say; ApiError 400 naming the field and line."""
    env, slash, service = values["config"].partition("/")
    if not slash or not env or not service:
        raise ApiError(
            400,
            "invalid_change",
            f"config: {values['config']!r} is not <environment>/<service>; choose one in the list",
            field="config",
        )
    sets: dict[str, Any] = {}
    for number, line in _lines(values["set"]):
        try:
            key, value = parse_assignment(line)
        except BadKey as exc:
            raise ApiError(400, "bad_key", f"set, line {number}: {exc}", field="set") from None
        sets[key] = value
    unsets = []
    for number, line in _lines(values["unset"]):
        try:
            parse_key(line)
        except BadKey as exc:
            raise ApiError(400, "bad_key", f"unset, line {number}: {exc}", field="unset") from None
        unsets.append(line)
    edit: dict[str, Any] = {"environment": env, "service": service}
    if sets:
        edit["set"] = sets
    if unsets:
        edit["unset"] = unsets
    if values["layer"].strip():
        edit["layer"] = values["layer"].strip()
    doc: dict[str, Any] = {"base": values["base"], "edits": [edit], "dry_run": dry_run}
    if values["message"].strip():
        doc["message"] = values["message"].strip()
    return doc


def change_post() -> Response:
    """Preview (a dry run) or commit the change; the API's reply, or its refusal, on the form."""
    check_form()
    context = ui().changes
    if context is None:
        return page("unavailable.html", status=404, title="Change", what="change")
    values = {name: request.form.get(name, "") for name in FIELDS}
    action = request.form.get("action", "preview")
    if action not in ("preview", "commit"):
        raise ApiError(400, "bad_action", f"action: {action!r} is not preview or commit")
    try:
        reply, _status = submit(context, g.ui_principal, _body(values, action == "preview"))
    except ApiError as exc:
        problems = exc.extra.get("problems") or []
        return _form(values, exc.status, error=exc, problems=problems)
    if reply["commit"] is None:  # a preview (or a change that changes nothing)
        return _form(values, preview=reply)
    # The next change starts from this commit when it went to the tracked branch.
    base = reply["commit"] if reply["branch"] == context.branch else values["base"]
    fresh = dict(values, set="", unset="", message="", base=base)
    return _form(fresh, done=reply)
