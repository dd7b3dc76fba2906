"""`gitconf set ENV SERVICE KEY=VALUE... [--unset KEY]... [--layer PATH] [--commit]`.

Edits the work tree as `POST /v1/changes` edits a commit: each key in its layer file
(changes/layers.py), in place (changes/edit.py), then the whole repository is compiled with the
edit, as `gitconf validate` reads it; nothing is written unless it is valid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from gitconf.changes.apply import Edit, FileEdit, apply_change, default_message
from gitconf.changes.edit import parse_key
from gitconf.changes.errors import BadKey, BaseInvalid
from gitconf.core.diff import to_text
from gitconf.core.parse import parse_yaml
from gitconf.errors import GitconfError, Problem, UsageError
from gitconf.gcpause import collector_paused
from gitconf.git.folder import fileset_from_dir, is_url

__all__ = ["parse_assignment", "parse_value", "set_cmd"]

EXIT_INVALID = 1
EXIT_USAGE = 2


def parse_value(text: str, *, key: str = "") -> Any:
    """A VALUE of the command line: one YAML 1.2 flow value, read by gitconf's own parser
    (`60`, `true`, `'60'`, `[a, b]`, `{a: 1}`; nothing: null)."""
    bad = BadKey(
        f"{text!r} is not one YAML value",
        key=key,
        hint="write a YAML flow value: 60, true, '60' (a string), [a, b], {a: 1}",
    )
    if "\n" in text or "\r" in text:
        raise bad
    tree, problems = parse_yaml("VALUE", f"v: {text}\n".encode())
    if tree is None or problems or list(tree.value) != ["v"]:
        raise bad
    node = tree.value["v"]
    stack = [node]
    while stack:
        each = stack.pop()
        if each.tag is not None:
            raise BadKey(
                f"{text!r} carries the merge tag !{each.tag}, which is not a value",
                key=key,
                hint="`gitconf set` writes values; write tags in the file itself",
            )
        if each.kind == "map":
            stack += each.value.values()
        elif each.kind == "seq":
            stack += each.value
    from gitconf.core.model import to_plain

    return to_plain(node)


def parse_assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE: the key path (checked) and the value; `=` inside `["..."]` is part of a key."""
    depth = False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            depth = not depth
        elif ch == "=" and not depth:
            key = text[:i]
            parse_key(key)
            return key, parse_value(text[i + 1 :], key=key)
    raise BadKey(
        f"{text!r} is not KEY=VALUE",
        hint="write db.pool.max=60; to remove a key from its layer, use --unset db.pool.max",
    )


@click.command(name="set")
@click.argument("env")
@click.argument("service")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option("--unset", "unsets", multiple=True, metavar="KEY", help="Remove KEY from its layer.")
@click.option(
    "--layer",
    default=None,
    metavar="PATH",
    help="The layer file to edit (repository-relative), instead of the one gitconf chooses.",
)
@click.option(
    "--repo",
    default=".",
    show_default=True,
    metavar="PATH",
    help="The config repository's work tree.",
)
@click.option("--commit", "do_commit", is_flag=True, help="git commit the changed files.")
@click.option("--message", "-m", default=None, metavar="M", help="The commit message.")
def set_cmd(
    env: str,
    service: str,
    assignments: tuple[str, ...],
    unsets: tuple[str, ...],
    layer: str | None,
    repo: str,
    do_commit: bool,
    message: str | None,
) -> None:
    """Set keys of SERVICE in ENV in their layer files, validated first (KEY=VALUE: YAML values).

    Nothing is written unless the whole repository is valid with the edit (exit 1 with the
    problems). Prints the effective changes and the files written.
    """
    try:
        _set(env, service, assignments, unsets, layer, repo, do_commit, message)
    except GitconfError as exc:
        click.echo(f"gitconf: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _set(
    env: str,
    service: str,
    assignments: tuple[str, ...],
    unsets: tuple[str, ...],
    layer: str | None,
    repo: str,
    do_commit: bool,
    message: str | None,
) -> None:
    if is_url(repo) or repo.startswith("file://"):
        raise UsageError(f"gitconf set edits a work tree on disk; {repo!r} is a URL")
    if not assignments and not unsets:
        raise UsageError("nothing to do: give KEY=VALUE arguments or --unset KEY")
    if message is not None and not do_commit:
        raise UsageError("--message is the commit's message: give --commit too")
    sets = dict(parse_assignment(a) for a in assignments)
    for key in unsets:
        parse_key(key)
    files = fileset_from_dir(repo)
    if "gitconf.yaml" not in files.files:
        raise UsageError(f"{repo}: no gitconf.yaml; is this a gitconf config repository?")
    edit = Edit(env, service, sets, list(unsets), layer)
    try:
        with collector_paused():
            result = apply_change(files, [edit])
    except BaseInvalid as exc:
        _problems(
            list(exc.problems), "the repository is invalid before the edit; nothing was written"
        )
        sys.exit(EXIT_INVALID)
    if result.problems:
        _problems(result.problems, "nothing was written")
        sys.exit(EXIT_INVALID)
    if not result.edited:
        click.echo("no change: the layer files already say that")
        return
    click.echo(to_text(result.diff), nl=False)
    for edited in result.edited:
        _write(Path(repo), edited)
        click.echo(f"{'created' if edited.before is None else 'wrote'} {edited.path}")
    if do_commit:
        sha = _commit(repo, [e.path for e in result.edited], message or default_message([edit]))
        click.echo(f"committed {sha}")


def _problems(problems: list[Problem], outcome: str) -> None:
    for problem in problems:
        click.echo(problem.render(), err=True)
    click.echo(f"gitconf: {len(problems)} problem(s); {outcome}", err=True)


def _write(root: Path, edited: FileEdit) -> None:
    """Write the file atomically, keeping its permissions."""
    target = root / edited.path
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(edited.after)
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _commit(repo: str, paths: list[str], message: str) -> str:
    """git commit only these paths (other staged changes stay staged) and return the sha."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise UsageError(
                f"the files are written, but `git {args[0]}` failed: "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout.strip()

    git("rev-parse", "--is-inside-work-tree")
    git("add", "--", *paths)
    git("commit", "-q", "--only", "-m", message, "--", *paths)
    return git("rev-parse", "--short", "HEAD")
