"""`gitconf demo`: the sample repository in a fresh Git repository, served at once."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from gitconf.errors import GitconfError
from gitconf.package_data import data_dir
from gitconf.server.commands import run
from gitconf.settings import load_settings

__all__ = ["demo"]


def _git(cwd: Path, *args: str) -> None:
    try:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise GitconfError(
            "git is not installed; the demo makes a Git repository with it"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise GitconfError(f"git {args[0]} failed: {exc.stderr.strip()}") from None


def _make_repository(repo: Path, remote: Path) -> None:
    """sample-repo/ committed as the first commit of branch main in the work tree repo, and
    pushed to the bare remote that gitconf serves (and pushes the change API's commits to:
    Git pushes to a bare repository, never to a work tree's checked-out branch)."""
    shutil.copytree(data_dir("sample-repo"), repo)
    _git(repo, "init", "-q", "-b", "main")
    # So that the commits the banner suggests work on a machine with no git identity set.
    _git(repo, "config", "user.name", "gitconf demo")
    _git(repo, "config", "user.email", "demo@gitconf.invalid")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "gitconf demo: the sample repository")
    _git(repo.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "-q", "-u", "origin", "main")
    _git(repo, "config", "pull.rebase", "true")


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            found: int = sock.getsockname()[1]
            return found
    raise GitconfError("no free port on 127.0.0.1")


@click.command()
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--dir", "folder", default=None, help="Where to create the demo repository.")
@click.option("--poll-interval", type=float, default=2.0, show_default=True)
def demo(port: int, folder: str | None, poll_interval: float) -> None:
    """Copy the sample repository into a new Git repository and serve it."""
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="gitconf-demo-"))
    repo, remote = root / "config-repo", root / "config.git"
    if repo.exists() or remote.exists():
        click.echo(f"gitconf: {repo} exists; pass --dir to choose another folder", err=True)
        sys.exit(2)
    try:
        _make_repository(repo, remote)
    except GitconfError as exc:
        click.echo(f"gitconf: {exc}", err=True)
        sys.exit(2)
    chosen = _free_port(port)
    settings = load_settings(
        {
            "repo": str(remote),
            "listen": f"127.0.0.1:{chosen}",
            "poll_interval": poll_interval,
            "state_dir": str(root / "state"),
        },
        environ={},
    )
    url = f"http://127.0.0.1:{chosen}"
    banner = f"""
gitconf demo: serving {remote} (branch main) on {url}; your work clone is {repo}

Open the dashboard: {url}/ui/

Try:
  curl {url}/v1/config/production/payments
  curl '{url}/v1/config/production-eu/payments?format=yaml'
  curl {url}/v1/config/production-eu/payments/explain
  curl {url}/v1/status

Change a value and see it served within {poll_interval:g}s:
  cd {repo}
  sed -i 's/max: 30/max: 40/' environments/production-eu/payments.yaml
  git commit -am 'raise the EU pool' && git push
  curl {url}/v1/config/production-eu/payments

Break it and see the last good revision keep serving, with the error in /v1/status:
  sed -i 's/max: 40/max: lots/' environments/production-eu/payments.yaml
  git commit -am 'break payments' && git push
  curl {url}/v1/status

Or change a value through gitconf: it is validated first, then committed and pushed
(git pull in the work clone afterwards to see the commit):
  curl -X POST {url}/v1/changes -H 'Content-Type: application/json' -d '{{"base": "'"$(git -C {remote} rev-parse main)"'", "edits": [{{"environment": "production", "service": "payments", "set": {{"db.pool.max": 60}}}}]}}'

Ctrl-C stops the server.
"""
    run(settings, banner)
