"""`gitconf serve` and `gitconf demo`."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from gitconf.errors import GitconfError
from gitconf.server.auth import Auth
from gitconf.settings import SCALAR_OPTIONS, Settings, load_settings

__all__ = ["run", "serve"]

log = logging.getLogger("gitconf")


def _die_with_parent() -> None:
    """Ask Linux to stop this worker if the supervising process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every run of the poll job at INFO: noise at a 2 s interval.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # A poll that waits for a long compile makes the interval job skip runs: expected, not news.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


# Open requests granian holds besides the long polls and streams (max_waiters of them):
# past max_waiters those get 503 at once, and reads, hooks and /readyz are still answered.
HEADROOM = 2048


def event_loop() -> Any:
    """granian's event loop for the worker: uvloop where it is installed (the reads measured
    faster on it), else asyncio's own."""
    from granian.constants import Loops

    try:
        import uvloop  # noqa: F401
    except ImportError:
        return Loops.asyncio
    return Loops.uvloop


def run(settings: Settings, banner: str | None = None) -> None:
    """Serve with granian's RSGI interface: one worker process holding the poller, the store
    and the app (gitconf.server.rsgi).

    Granian's HTTP handling is Rust, which is what lets reads approach nginx's speed. One
    worker process, because the poller and the served revision live in it. Plain config
    reads, long polls and /v1/watch are answered on the worker's event loop; the rest of the
    API on gitconf's request threads.
    """
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server as Granian

    # Imported before granian starts its worker, which inherits it: a restart does not wait
    # for these imports a second time (they took about half a second there).
    import gitconf.bootstrap  # noqa: F401

    def load_app() -> Any:
        _die_with_parent()
        _configure_logging(settings.log_level)
        from gitconf.bootstrap import build

        server = build(settings)
        server.start()
        # granian calls the app's __rsgi_del__ once requests in flight have ended (long polls
        # and streams are ended on SIGTERM/SIGINT): the poller and workers stop then.
        return server.rsgi(on_stop=server.stop)

    _configure_logging(settings.log_level)
    if banner:
        click.echo(banner)
    granian = Granian(
        "gitconf",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,
        workers=1,
        runtime_threads=settings.io_threads,
        loop=event_loop(),
        websockets=False,
        # granian's default read buffer is 400 KiB per connection: 16 KiB holds any request
        # head gitconf accepts, and makes each of 10,000 waiting long polls ~12 KiB smaller.
        http1_settings=HTTP1Settings(max_buffer_size=16 * 1024),
        backlog=max(1024, min(settings.max_waiters, 65535)),
        backpressure=settings.max_waiters + settings.threads * 2 + HEADROOM,
        log_level=settings.log_level,  # type: ignore[arg-type]
        workers_kill_timeout=30,
    )
    granian.serve(target_loader=load_app, wrap_loader=False)


def _flag_options(func: Any) -> Any:
    for name in reversed(list(SCALAR_OPTIONS)):
        kind = SCALAR_OPTIONS[name]
        flag = "--" + name.replace("_", "-")
        if kind is bool:  # --reuse-port / --no-reuse-port; unset (None) leaves it to the file
            flag = f"{flag}/--no-{flag[2:]}"
            func = click.option(flag, name, default=None, help=f"Setting {name}.")(func)
            continue
        func = click.option(flag, name, type=kind, default=None, help=f"Setting {name}.")(func)
    return func


def _check_port_free(settings: Settings) -> None:
    """GitconfError if another server listens on the port, unless reuse_port asks to share it.

    Granian binds with SO_REUSEPORT, so a second server on a port in use would start without a
    word and take part of the first one's connections. A bind without SO_REUSEPORT fails when
    anything listens there (SO_REUSEADDR only lets it past the TIME_WAIT of a restart).
    """
    if settings.reuse_port:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                message = f"listen: cannot listen on {settings.listen}: {exc.strerror}"
                raise GitconfError(message) from None
            raise GitconfError(
                f"listen: {settings.listen} is already in use (another gitconf serve?); stop "
                "what listens there or choose another port, or set reuse_port: true "
                "(--reuse-port) to share it on purpose"
            ) from None


@click.command()
@_flag_options
@click.option("--config", "config", default=None, help="A server.yaml settings file.")
def serve(config: str | None, **flags: Any) -> None:
    """Track a Git repository and serve its validated configs over HTTP."""
    try:
        settings = load_settings(flags, config_file=config)
        # What the worker would otherwise find only after granian is listening: say it here,
        # as one line and exit 2, like any other bad setting.
        Auth(settings.tokens, os.environ)
        # A key file that cannot be read: say so now, not as rejected commits.
        keys = settings.age_key_files(os.environ)
        if keys:
            from gitconf.secrets import load_keyring

            load_keyring(keys)
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        _check_port_free(settings)
    except GitconfError as exc:
        click.echo(f"gitconf: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"gitconf: state_dir: cannot use {settings.state_dir}: {exc.strerror}", err=True)
        sys.exit(2)
    run(settings)
