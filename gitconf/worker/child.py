"""The compile worker process: limits, priority, and the request loop.

Started by the server (`proxy.CompileWorker`) as `python -m gitconf.worker --fd N ...` with one
end of a socket pair. Each request is answered in turn; a compile runs under a CPU-time limit
(RLIMIT_CPU: SIGXCPU ends the process) and the whole process under an address-space limit
(RLIMIT_AS: an allocation past it raises MemoryError, and the process exits with
EXIT_MEMORY), so a hostile commit costs at most the limits and a restart.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from gitconf.errors import GitconfError
from gitconf.secrets import KeyFileError, load_keyring
from gitconf.worker.messages import (
    Adopt,
    ApplyChange,
    BaseLayers,
    ChangesBetween,
    Compile,
    DiffBetween,
    Explain,
    Failed,
    Revision,
    Started,
)
from gitconf.worker.service import CompileService

__all__ = ["EXIT_MEMORY", "main"]

log = logging.getLogger("gitconf.worker")

EXIT_MEMORY = 75


def _die_with_parent() -> None:
    """Ask Linux to end this process when the server that started it dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _idle_priority() -> str:
    """Run only when nothing else wants the CPU: SCHED_IDLE, else the lowest nice value.

    On a 2-core machine a busy loop at nice 19 still halved read throughput; one in the idle
    scheduling class barely changed it.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            return "normal"
        return "nice 19"


def _limit_memory(max_memory: int) -> None:
    if max_memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    # SIGXCPU's default action dumps core: a core file of a hostile compile helps nobody.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _CpuBudget:
    """RLIMIT_CPU set to the CPU time used so far plus the timeout, for one request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        if self.seconds > 0:
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            soft = int(_cpu_seconds() + self.seconds) + 1
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    def __exit__(self, *exc: object) -> None:
        if self.seconds > 0:
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def handle(service: CompileService, request: Any, send_started: Any) -> Any:
    """The reply to one request."""
    if isinstance(request, Compile):
        return service.compile(request.sha, request.base, send_started)
    if isinstance(request, Revision):
        return service.revision(request.sha, send_started)
    if isinstance(request, Adopt):
        return service.adopt(request.sha)
    if isinstance(request, Explain):
        return service.explain(request.sha, request.environment, request.service)
    if isinstance(request, BaseLayers):
        return service.base(request.sha, request.service)
    if isinstance(request, DiffBetween):
        return service.diff(request.old, request.new)
    if isinstance(request, ChangesBetween):
        return service.changes(request.old, request.new)
    if isinstance(request, ApplyChange):
        return service.change(request.sha, request.edits)
    return Failed(f"unknown request {type(request).__name__}")


def serve(conn: Connection, service: CompileService, timeout: float) -> int:
    """Answer requests until the server closes its end."""
    budget = _CpuBudget(timeout)
    while True:
        try:
            ident, request = conn.recv()
        except (EOFError, OSError):
            return 0

        def send_started(started: Started, ident: int = ident) -> None:
            conn.send((ident, started))

        try:
            with budget:
                reply = handle(service, request, send_started)
        except MemoryError:
            # Past compile.max_memory: a fresh process is the only sure way back.
            os._exit(EXIT_MEMORY)
        except GitconfError as exc:
            reply = Failed(str(exc))
        except Exception as exc:
            log.error("compile worker: %s", traceback.format_exc().rstrip())
            reply = Failed(f"{exc.__class__.__name__}: {exc}")
        try:
            conn.send((ident, reply))
        except MemoryError:
            os._exit(EXIT_MEMORY)
        except (BrokenPipeError, OSError):
            return 0


def main(argv: list[str]) -> int:
    """The worker process's entry point."""
    parser = argparse.ArgumentParser(prog="python -m gitconf.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--mirror", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--max-memory", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--age-key-file", action="append", default=[])
    args = parser.parse_args(argv)
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the server decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    priority = _idle_priority()
    _limit_memory(args.max_memory)
    log.debug("compile worker %d started (priority %s)", os.getpid(), priority)
    conn = Connection(args.fd)
    keyring = None
    if args.age_key_file:
        try:
            keyring = load_keyring(args.age_key_file)
        except KeyFileError as exc:
            # Without its keys every SOPS file fails its compile: say why in each rejection.
            log.error("compile worker: %s", exc)
    try:
        return serve(conn, CompileService(args.mirror, keyring), args.timeout)
    finally:
        conn.close()
