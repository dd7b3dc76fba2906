"""`POST /v1/changes`: a change of config values that ends in a Git commit, or in nothing.

The flow of one change, all of it under one lock per server (changes from other replicas are
ordered by the remote, which takes only fast-forwards):

1. the body is checked (schemas/change.schema.json) and every edit against the token's
   `write:` scopes;
2. the branch is fetched and the compile worker applies the edits to its head and compiles the
   result like a pushed commit (bounded like any compile); a problem is a 422 and nothing is
   written;
3. a file the change edits whose blob differs between `base` and the head makes it stale (412):
   unrelated commits in between do not;
4. the commit (author from the token, committer from settings, trailers) is pushed with the
   server's credentials; a push that loses a race starts again at 2 on the new head, 409 after
   MAX_TRIES; the poller is woken at once, so the change is served within milliseconds.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pygit2
from flask import Blueprint, Response, request
from jsonschema import Draft202012Validator

from gitconf.changes.apply import Edit, FileEdit, default_message
from gitconf.core.diff import ConfigChange, to_doc
from gitconf.errors import problem_doc
from gitconf.git.remote import FetchError, Mirror, PushRejected
from gitconf.jobs.poll import Poller
from gitconf.package_data import own_schema
from gitconf.server.audit_api import actor, record
from gitconf.server.auth import Principal, may_not, visible_problems
from gitconf.server.deps import deps
from gitconf.server.errors import ApiError
from gitconf.server.jsonbody import check_body, read_object
from gitconf.server.refs import worker_busy, worker_died
from gitconf.server.responses import json_response
from gitconf.worker.messages import ApplyChange, ChangeApplied, ChangeRefused, Failed
from gitconf.worker.proxy import CompileWorker, WorkerBusy, WorkerDied, limit_problem

__all__ = ["ChangeContext", "make_blueprint", "submit"]

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
MAX_DEPTH = 64  # values are JSON: a config nests, but not this deep
MAX_TRIES = 3  # pushes that lose a race before a 409
MAX_OPS = 1000  # keys set or unset by one change (each is an edit of its file's text)
LOCK_WAIT = 90.0  # seconds a change waits for the changes before it (one at a time per server)
WORKER_WAIT = 60.0  # seconds to wait for a compile worker busy with a poll's compile
SCHEMA_NOTE = "see gitconf's schemas/change.schema.json and docs/changes.md"


@dataclass
class ChangeContext:
    """What the change route uses: the mirror to commit in, the worker, the poller to wake."""

    mirror: Mirror
    compiler: CompileWorker
    poller: Poller
    branch: str
    mode: str
    committer: tuple[str, str]
    review_url: str | None = None
    made: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> dict[str, Any]:
        """The changes section of /v1/status."""
        return {
            "mode": self.mode,
            "committed": self.made,
            "refused": dict(sorted(self.refused.items())),
        }


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(own_schema("change"))


def _body() -> dict[str, Any]:
    return read_object(
        request,
        what="POST /v1/changes",
        limit=MAX_BODY,
        max_depth=MAX_DEPTH,
        shape=f"values nest at most {MAX_DEPTH} levels ({SCHEMA_NOTE})",
        code="invalid_change",
        example=f'{{"base": ..., "edits": [...]}} ({SCHEMA_NOTE})',
    )


def _checked(doc: dict[str, Any]) -> dict[str, Any]:
    """A change body that schemas/change.schema.json and the rules beside it accept."""
    if "base" not in doc:
        raise ApiError(
            428,
            "base_required",
            "base: the change must name the commit it was made from (the X-Gitconf-Revision "
            "of the config you read), so that a change made on an old copy is refused",
            field="base",
        )
    check_body(doc, _validator(), "invalid_change", SCHEMA_NOTE)
    ops = sum(len(e.get("set") or {}) + len(e.get("unset") or ()) for e in doc["edits"])
    if ops > MAX_OPS:
        raise ApiError(
            400, "invalid_change", f"edits: {ops} keys set or unset; one change makes at most {MAX_OPS}",
            field="edits",
        )  # fmt: skip
    for index, edit in enumerate(doc["edits"]):
        if not edit.get("set") and not edit.get("unset"):
            where = f"edits[{index}]"
            raise ApiError(
                400, "invalid_change", f"{where}: an edit sets or unsets at least one key", field=where
            )  # fmt: skip
    return doc


def _edits(doc: Mapping[str, Any]) -> tuple[Edit, ...]:
    return tuple(
        Edit(
            e["environment"],
            e["service"],
            dict(e.get("set") or {}),
            tuple(e.get("unset") or ()),
            e.get("layer"),
        )
        for e in doc["edits"]
    )


def _check_scopes(principal: Principal, edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        if not principal.may("write", edit.environment, edit.service):
            raise may_not(principal, "write", edit.environment, edit.service)


def _check_reach(principal: Principal, reach: tuple[tuple[str, str], ...]) -> None:
    """403 for a change of a file that feeds a config the token may not write: an edit of a
    shared layer (base/payments.yaml, production's own file that production-eu extends)
    changes those configs too, now or once an override above it goes. Checked before the
    compile's problems are shown, since they may quote values of those configs."""
    for env, service in reach:
        if not principal.may("write", env, service):
            where = f"{env}/{service}"
            raise ApiError(
                403,
                "forbidden",
                f"token {principal.name!r} may not change {where}, and this change edits a "
                f"layer of it too; it needs the scope 'write:{where}', or edit a layer of your "
                "own configs only (`layer`)",
            )


def _worker_reply(
    ctx: ChangeContext, principal: Principal, head: str, edits: tuple[Edit, ...]
) -> ChangeApplied:
    try:
        reply = ctx.compiler.call(ApplyChange(head, edits), wait=WORKER_WAIT)
    except WorkerBusy:
        raise worker_busy("a change") from None
    except WorkerDied as died:
        if died.limit is None:
            raise worker_died(died, "while applying the change") from None
        problem = limit_problem(died, ctx.compiler.timeout, ctx.compiler.max_memory)
        raise ApiError(
            422, "invalid_change", f"the change was not applied: {problem.message}",
            problems=[problem_doc(problem)],
        ) from None  # fmt: skip
    if isinstance(reply, ChangeRefused):
        extra: dict[str, Any] = dict(reply.fields)
        message = reply.message
        if reply.problems:
            docs = [problem_doc(p) for p in reply.problems]
            extra["problems"] = visible_problems(principal, docs)
            hidden = len(docs) - len(extra["problems"])
            if hidden:
                message += f" ({hidden} problem(s) in configs your token may not read)"
        raise ApiError(reply.status, reply.code, message, None, **extra)
    if isinstance(reply, Failed):
        raise ApiError(500, "change_failed", f"the compile worker could not apply the change: {reply.message}")  # fmt: skip
    assert isinstance(reply, ChangeApplied)
    return reply


def _resolve_base(mirror: Mirror, base: str, head: str) -> str:
    # A full commit id, looked up as an object: never as a ref, which a tag named like a
    # short sha could otherwise stand in for.
    if not (base == head or (mirror.is_commit(base) and mirror.descends(head, base))):
        raise ApiError(
            422,
            "unknown_base",
            f"base: {base} is not a commit of the branch {mirror.branch!r}; send the "
            "X-Gitconf-Revision of the config you read",
            field="base",
        )
    return base


def _stale(mirror: Mirror, base: str, head: str, edited: tuple[FileEdit, ...]) -> list[str]:
    """The edited files whose blob differs between base and head."""
    if base == head:
        return []
    paths = [e.path for e in edited]
    then, now = mirror.blob_ids(base, paths), mirror.blob_ids(head, paths)
    return [p for p in paths if then[p] != now[p]]


def _visible_diff(principal: Principal, diff: list[ConfigChange]) -> list[dict[str, Any]]:
    return to_doc([c for c in diff if principal.can_read(c.environment, c.service)])


def _problems(principal: Principal, applied: ChangeApplied) -> ApiError:
    docs = [problem_doc(p) for p in applied.problems]
    shown = visible_problems(principal, docs)
    hidden = len(docs) - len(shown)
    more = f"; {hidden} more in configs your token may not read" if hidden else ""
    return ApiError(
        422,
        "invalid_change",
        f"the change would make the repository invalid: {len(docs)} problem(s){more}; "
        "nothing was written",
        problems=shown,
    )


def _message(doc: Mapping[str, Any], edits: tuple[Edit, ...], change: str, base: str) -> str:
    head = doc.get("message") or default_message(edits)
    return f"{head.rstrip()}\n\nGitconf-Change-Id: {change}\nGitconf-Base: {base}\n"


_NOT_IN_SIGNATURES = str.maketrans({"<": None, ">": None, "\n": " ", "\r": " ", "\0": None})


def _signature(principal: Principal) -> pygit2.Signature:
    """The author: the token's name and email (Git refuses <, > and newlines in either)."""
    name = principal.name.translate(_NOT_IN_SIGNATURES).strip() or "gitconf token"
    email = (principal.email or "").translate(_NOT_IN_SIGNATURES).strip()
    return pygit2.Signature(name, email or f"{name.replace(' ', '.')}@gitconf.invalid")


def _count(ctx: ChangeContext, outcome: str) -> None:
    ctx.refused[outcome] = ctx.refused.get(outcome, 0) + 1


def change(ctx: ChangeContext) -> Response:
    """Apply, validate, commit and push one change."""
    try:
        principal = deps().reader.principal(request.headers.get("Authorization"))
        body = _body()
    except ApiError as exc:
        _count(ctx, exc.code)
        record("change", "changes", f"{exc.status} {exc.code}", who=actor(exc))
        raise
    reply, status = submit(ctx, principal, body)
    return json_response(reply, status)


def submit(
    ctx: ChangeContext, principal: Principal, body: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    """One change by principal, as POST /v1/changes makes it (the dashboard's form too): the
    reply and its status (200 for a dry run, 201 committed); ApiError when it is refused."""
    change_id = "chg_" + secrets.token_hex(8)
    targets = "changes"
    try:
        doc = _checked(body)
        edits = _edits(doc)
        targets = ", ".join(sorted({f"{e.environment}/{e.service}" for e in edits}))
        _check_scopes(principal, edits)
        mode = doc.get("mode") or ctx.mode
        if ctx.mode == "branch" and mode == "commit":
            raise ApiError(
                403,
                "commit_refused",
                "mode: this server takes changes as branches for review (changes.mode: branch); "
                'send "mode": "branch" or leave it out',
                field="mode",
            )
        dry_run = bool(doc.get("dry_run"))
        if not ctx._lock.acquire(timeout=LOCK_WAIT):
            raise ApiError(
                503, "change_busy", f"other changes kept this server busy for {LOCK_WAIT:g} s; try again",
                headers={"Retry-After": "5"},
            )  # fmt: skip
        try:
            reply, status = _change(ctx, principal, doc, edits, mode, dry_run, change_id)
        finally:
            ctx._lock.release()
    except ApiError as exc:
        _count(ctx, exc.code)
        log.info("change %s refused: %s %r", change_id, exc.status, exc.message)
        record("change", targets, f"{exc.status} {exc.code}", who=actor(exc),
               detail={"change": change_id})  # fmt: skip
        raise
    record(
        "change.dry_run" if dry_run else "change",
        targets,
        str(status),
        who=principal.name,
        # Which keys, not their values: a value may be a secret.
        detail={
            "change": change_id,
            "commit": reply.get("commit"),
            "branch": reply.get("branch"),
            "files": reply.get("files"),
            "keys": sorted({k for e in edits for k in (*e.set, *e.unset)}),
        },
    )
    return reply, status


def _change(
    ctx: ChangeContext,
    principal: Principal,
    doc: Mapping[str, Any],
    edits: tuple[Edit, ...],
    mode: str,
    dry_run: bool,
    change_id: str,
) -> tuple[dict[str, Any], int]:
    mirror = ctx.mirror
    branch = ctx.branch if mode == "commit" else f"gitconf/change-{change_id}"
    for attempt in range(1, MAX_TRIES + 1):
        try:
            head = mirror.fetch()
        except FetchError as exc:
            raise ApiError(
                502, "remote_unavailable", f"cannot fetch the branch to change it: {exc}",
                headers={"Retry-After": "10"},
            ) from None  # fmt: skip
        base = _resolve_base(mirror, doc["base"], head)
        applied = _worker_reply(ctx, principal, head, edits)
        _check_reach(principal, applied.reach)
        stale = _stale(mirror, base, head, applied.edited)
        if stale:
            raise ApiError(
                412,
                "stale_base",
                f"{', '.join(stale)} changed since {base[:12]}; read the config again "
                f"(the branch is at {head[:12]}) and make the change on it",
                files=stale,
                head=head,
            )
        if applied.problems:
            raise _problems(principal, applied)
        reply: dict[str, Any] = {
            "change": change_id,
            "commit": None,
            "base": base,
            "parent": head,
            "branch": branch,
            "url": None,
            "files": [e.path for e in applied.edited],
            "diff": _visible_diff(principal, applied.diff),
        }
        if dry_run or not applied.edited:
            reply["dry_run"] = dry_run
            return reply, 200
        author = _signature(principal)
        name, email = ctx.committer
        sha = mirror.commit(
            head,
            {e.path: e.after for e in applied.edited},
            author=author,
            committer=pygit2.Signature(name, email),
            message=_message(doc, edits, change_id, base),
        )
        try:
            mirror.push(sha, branch)
        except PushRejected as exc:
            if mode == "branch" or not exc.race:
                raise ApiError(409, "push_refused", str(exc)) from None
            log.info("change %s lost a push race (try %d): %r", change_id, attempt, str(exc))
            continue
        except FetchError as exc:
            raise ApiError(
                502, "remote_unavailable", f"the change was not pushed: {exc}",
                headers={"Retry-After": "10"},
            ) from None  # fmt: skip
        ctx.made += 1
        log.info(
            "change %s by %r: %s pushed to %s (%s)",
            change_id, principal.name, sha[:12], branch, ", ".join(reply["files"]),
        )  # fmt: skip
        if mode == "commit":
            ctx.poller.request()
        elif ctx.review_url:
            reply["url"] = ctx.review_url.replace("{branch}", branch)
        reply["commit"] = sha
        return reply, 201
    raise ApiError(
        409,
        "push_conflict",
        f"the branch {ctx.branch!r} kept moving: {MAX_TRIES} pushes lost the race; try again",
    )


def make_blueprint(ctx: ChangeContext) -> Blueprint:
    """The change API's blueprint."""
    blueprint = Blueprint("changes", __name__)
    blueprint.add_url_rule("/v1/changes", "create", lambda: change(ctx), methods=["POST"])
    return blueprint
