"""The `gitconf` command: validate, render, explain, diff, set, serve, demo and agent."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from gitconf import __version__
from gitconf.agent.command import agent
from gitconf.changes.command import set_cmd
from gitconf.core.compile import KEYLESS, SecretReading, compile_fileset
from gitconf.core.diff import diff_revisions, to_json_report, to_markdown, to_text
from gitconf.core.explain import explain_config
from gitconf.core.model import CompiledRevision, FileSet, iter_leaves
from gitconf.core.render import FORMATS, RenderError, render
from gitconf.demo import demo
from gitconf.errors import GitconfError, Problem
from gitconf.gcpause import collector_paused
from gitconf.git.folder import fileset_from_dir, is_url
from gitconf.secrets import key_file_paths, load_keyring
from gitconf.server.commands import serve

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INVALID = 1
EXIT_USAGE = 2


def _fail(message: str) -> None:
    click.echo(f"gitconf: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _errors_exit(func: F) -> F:
    """Turn gitconf's errors into one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GitconfError as exc:
            _fail(str(exc))
        except Exception as exc:  # a bug of gitconf's: still one line, and exit 2
            _fail(f"internal error: {exc.__class__.__name__}: {exc} (please report it)")

    return wrapper  # type: ignore[return-value]


def read_fileset(repo: str, ref: str | None) -> FileSet:
    """The files of --repo: the folder on disk without --ref, else the named commit."""
    if ref is None and not is_url(repo) and not repo.startswith("file://"):
        files = fileset_from_dir(repo)
    else:
        # pygit2 is imported only when Git is read: a plain `validate` does not pay for it.
        from gitconf.git.read import fileset_from_commit, open_repository, resolve

        with open_repository(repo) as git_repo:
            files = fileset_from_commit(git_repo, resolve(git_repo, ref or "HEAD"))
    if "gitconf.yaml" not in files.files:
        where = f"{repo} at {ref}" if ref else repo
        raise GitconfError(f"{where}: no gitconf.yaml; is this a gitconf config repository?")
    return files


def read_staged(repo: str) -> FileSet:
    """The files staged in the index of the work tree at repo."""
    if is_url(repo) or repo.startswith("file://"):
        raise GitconfError(f"--staged reads a local work tree's index; {repo} is a URL")
    from gitconf.git.read import fileset_from_index

    files = fileset_from_index(repo)
    if "gitconf.yaml" not in files.files:
        raise GitconfError(
            f"{repo}: no gitconf.yaml is staged; is this a gitconf config repository?"
        )
    return files


def secret_reading(age_key_files: tuple[str, ...]) -> SecretReading:
    """How the command reads SOPS files: with the age keys given (--age-key-file, or
    GITCONF_AGE_KEY_FILE), else key-less (structure and types only)."""
    paths = key_file_paths(list(age_key_files), os.environ)
    if not paths:
        return SecretReading(keyless=True)
    return SecretReading(load_keyring(paths))


def compile_or_report(
    files: FileSet, *, err: bool, reading: SecretReading = KEYLESS, show_skipped: bool = False
) -> CompiledRevision:
    """Compile the files, or print every problem (sorted) and exit 1."""
    with collector_paused():
        result = compile_fileset(files, secrets=reading)
    if show_skipped:
        for skipped in result.skipped:
            click.echo(f"skipped: {skipped.render()}", err=err)
    if result.revision is None:
        print_problems(result.problems, err=err)
        sys.exit(EXIT_INVALID)
    return result.revision


def _no_secrets_without_a_key(
    revision: CompiledRevision, config: Any, reading: SecretReading, what: str
) -> None:
    if reading.keyless and any(
        leaf.source in revision.secrets for _, leaf in iter_leaves(config.tree)
    ):
        raise GitconfError(
            f"{config.environment}/{config.service} holds values from SOPS-encrypted files: "
            f"{what} needs the age key (--age-key-file PATH, or GITCONF_AGE_KEY_FILE)"
        )


def print_problems(problems: list[Problem], *, err: bool) -> None:
    """One `path:line:col: message` line per problem."""
    for problem in problems:
        click.echo(problem.render(), err=err)
    click.echo(f"gitconf: {len(problems)} problem(s); nothing of this revision is served", err=True)


age_key_option = click.option(
    "--age-key-file",
    "age_key_files",
    multiple=True,
    metavar="PATH",
    help="An age identity file to decrypt SOPS files with (repeatable; or GITCONF_AGE_KEY_FILE). "
    "Without one, encrypted values are checked as far as their recorded types go.",
)

repo_option = click.option(
    "--repo",
    default=".",
    show_default=True,
    metavar="PATH|URL",
    help="The config repository: a folder (read from disk without --ref) or a Git URL.",
)
ref_option = click.option(
    "--ref", default=None, metavar="REF", help="Read this branch, tag or commit from Git."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitconf")
def main() -> None:
    """gitconf: configuration from Git, validated, merged and served."""


@main.command()
@repo_option
@ref_option
@click.option(
    "--staged",
    is_flag=True,
    help="Read the files staged in Git's index (what `git commit` would record), not the disk.",
)
@age_key_option
@_errors_exit
def validate(repo: str, ref: str | None, staged: bool, age_key_files: tuple[str, ...]) -> None:
    """Check every file, schema and merged config; print each problem as path:line:col."""
    if staged:
        if ref is not None:
            raise GitconfError("--staged reads the index and --ref a commit: give one of them")
        files = read_staged(repo)
    else:
        files = read_fileset(repo, ref)
    reading = secret_reading(age_key_files)
    revision = compile_or_report(files, err=False, reading=reading, show_skipped=True)
    skipped = ""
    if reading.keyless and revision.secrets:
        skipped = "; encrypted values checked for their types only (no age key)"
    click.echo(
        f"ok: {len(revision.services)} service(s) x {len(revision.environments)} environment(s) "
        f"valid ({files.label}){skipped}"
    )


def _config(revision: CompiledRevision, env: str, service: str) -> Any:
    if env not in revision.environments:
        raise GitconfError(
            f"unknown environment {env!r}; known: {', '.join(revision.environments)}"
        )
    if service not in revision.services:
        raise GitconfError(f"unknown service {service!r}; known: {', '.join(revision.services)}")
    return revision.configs[(env, service)]


@main.command(name="render")
@click.argument("env")
@click.argument("service")
@repo_option
@ref_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@age_key_option
@_errors_exit
def render_cmd(
    env: str, service: str, repo: str, ref: str | None, fmt: str, age_key_files: tuple[str, ...]
) -> None:
    """Print the merged config of SERVICE in ENV (secrets in plaintext: it needs the key)."""
    reading = secret_reading(age_key_files)
    revision = compile_or_report(read_fileset(repo, ref), err=True, reading=reading)
    config = _config(revision, env, service)
    _no_secrets_without_a_key(revision, config, reading, "rendering it")
    try:
        rendered = render(config.value, fmt)
    except RenderError as exc:
        raise RenderError(f"{env}/{service} cannot be rendered as {fmt}: {exc}") from None
    click.echo(rendered.decode(), nl=False)


@main.command()
@click.argument("env")
@click.argument("service")
@click.argument("key", required=False)
@repo_option
@ref_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@age_key_option
@_errors_exit
def explain(
    env: str,
    service: str,
    key: str | None,
    repo: str,
    ref: str | None,
    fmt: str,
    age_key_files: tuple[str, ...],
) -> None:
    """Show where each value of SERVICE in ENV was set (KEY: dotted, e.g. db.pool.max).

    A secret shows where it was set, never its value."""
    revision = compile_or_report(
        read_fileset(repo, ref), err=True, reading=secret_reading(age_key_files)
    )
    config = _config(revision, env, service)
    entries = explain_config(config, key, secrets=revision.secrets)
    if key and not entries:
        raise GitconfError(f"{env}/{service} has no key {key!r}")
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    click.echo(f"# {env}/{service}: layers {' -> '.join(config.layers)}")
    for entry in entries:
        click.echo(f"{entry['key']} = {json.dumps(entry['value'], ensure_ascii=False)}")
        click.echo(f"    set at    {entry['source']}")
        for overridden in reversed(entry["overrides"]):
            click.echo(f"    overrides {overridden}")


@main.command()
@click.argument("base")
@click.argument("head", required=False)
@repo_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@age_key_option
@_errors_exit
def diff(base: str, head: str | None, repo: str, fmt: str, age_key_files: tuple[str, ...]) -> None:
    """Effective config changes from BASE to HEAD (refs; HEAD omitted: the files on disk).

    A secret that changed shows as "<secret changed>", never its value."""
    reading = secret_reading(age_key_files)
    old = compile_or_report(read_fileset(repo, base), err=True, reading=reading)
    new = compile_or_report(read_fileset(repo, head), err=True, reading=reading)
    changes = diff_revisions(old, new)
    if fmt == "markdown":
        click.echo(to_markdown(changes, base, head or "working tree"), nl=False)
    elif fmt == "json":
        click.echo(to_json_report(changes), nl=False)
    else:
        click.echo(to_text(changes), nl=False)


main.add_command(serve)
main.add_command(demo)
main.add_command(agent)
main.add_command(set_cmd)


@main.command(name="hook-script")
def hook_script() -> None:
    """Print a post-receive hook that tells gitconf about pushes to a self-hosted bare repo."""
    from importlib.resources import files

    click.echo(files("gitconf.hooks").joinpath("post-receive").read_text(), nl=False)


# Commands that compile a whole repository and exit: tearing down the millions of objects
# of a large compile at interpreter exit took about 0.25 s of a 1.5 s validate (mypy's
# hard exit does the same for the same reason). `serve` and `demo` exit normally.
_HARD_EXIT = {"validate", "render", "explain", "diff", "set"}


def entry() -> None:
    """The console script: run the CLI; after a compile command, exit without the teardown."""
    try:
        main()
    except SystemExit as exc:
        if (
            len(sys.argv) < 2
            or sys.argv[1] not in _HARD_EXIT
            or not isinstance(exc.code, int | None)
        ):
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code or 0)
