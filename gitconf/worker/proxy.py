"""The server's side of the compile worker: start it, ask it, and restart it when it dies.

One request at a time goes to the worker (a lock); a caller that must not wait long (a read
asking for an explain) gives up after its own deadline. A worker that ends while answering,
by SIGXCPU (past compile.timeout), by exiting with EXIT_MEMORY (past compile.max_memory) or
otherwise, is reported as WorkerDied with the reason, and the next request starts a new one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gitconf.errors import Problem
from gitconf.worker.child import EXIT_MEMORY
from gitconf.worker.messages import Started

__all__ = ["CompileWorker", "WorkerBusy", "WorkerDied", "limit_problem"]

log = logging.getLogger(__name__)

# A compile that is not using CPU (starved at idle priority, or stuck) is given this many
# times its CPU budget in wall-clock time before the worker is ended.
WALL_FACTOR = 20.0
MIN_WALL = 120.0


class WorkerBusy(Exception):
    """The worker is busy with another request past the caller's deadline."""


class WorkerDied(Exception):
    """The worker ended while answering: why, and the largest files of the commit."""

    def __init__(self, reason: str, limit: str | None, largest: list[tuple[str, int]]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit  # "timeout", "memory", or None when the cause is not a limit
        self.largest = largest


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def limit_problem(died: WorkerDied, timeout: float, max_memory: int) -> Problem:
    """The problem that rejects a commit whose compile exceeded a limit."""
    files = ", ".join(f"{path} ({_size(size)})" for path, size in died.largest)
    largest = f"; the largest files were {files}" if files else ""
    if died.limit == "timeout":
        message = f"compiling this revision took more than {timeout:g} s of CPU time{largest}"
        hint = (
            "look for schema patterns that backtrack (such as ^(a+)+$) and for large files, "
            "or raise compile.timeout in the server settings"
        )
    else:
        message = f"compiling this revision needed more than {_size(max_memory)} of memory{largest}"
        hint = (
            "look for anchors aliased many times and for large files, "
            "or raise compile.max_memory in the server settings"
        )
    return Problem(None, message, hint=hint)


class CompileWorker:
    """A long-lived compile worker process over the server's mirror."""

    def __init__(
        self,
        mirror_path: Path | str,
        *,
        timeout: float = 60.0,
        max_memory: int = 2 * 1024**3,
        log_level: str = "info",
        age_key_files: list[str] | None = None,
    ) -> None:
        self.mirror_path = str(mirror_path)
        self.timeout = timeout
        self.max_memory = max_memory
        self.log_level = log_level
        self.age_key_files = list(age_key_files or ())
        self.restarts = 0
        self.last_death: str | None = None
        # How the worker is started: `python -m gitconf.worker`, unless a test wraps it.
        self.command = [sys.executable, "-m", "gitconf.worker"]
        # Requests sent, by kind (what a test or /metrics may count).
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ident = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether close() was called: the server is stopping."""
        return self._closed

    @property
    def pid(self) -> int | None:
        """The worker's process id, if one runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def call(self, request: Any, *, wait: float | None = None) -> Any:
        """The worker's reply to request; WorkerBusy after wait seconds for a busy worker,
        WorkerDied if it ended while answering."""
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            raise WorkerBusy("the compile worker is busy with another compile")
        try:
            if self._closed:
                raise WorkerDied("the server is stopping", None, [])
            conn = self._ensure()
            self.sent[type(request).__name__] += 1
            self._ident += 1
            ident = self._ident
            try:
                conn.send((ident, request))
            except (OSError, ValueError) as exc:
                raise self._died(f"cannot reach the compile worker: {exc}", []) from None
            return self._receive(conn, ident)
        finally:
            self._lock.release()

    def _receive(self, conn: Connection, ident: int) -> Any:
        largest: list[tuple[str, int]] = []
        deadline = time.monotonic() + max(MIN_WALL, self.timeout * WALL_FACTOR)
        while True:
            remaining = deadline - time.monotonic()
            try:
                ready = remaining > 0 and conn.poll(remaining)
            except (OSError, EOFError):
                ready = True  # recv says what happened
            if not ready:
                self._kill()
                raise self._died(
                    f"the compile worker did not answer within {deadline:.0f} s", largest
                )
            try:
                got, reply = conn.recv()
            except (EOFError, OSError):
                raise self._died("", largest) from None
            if got != ident:
                continue  # an answer to a request whose caller gave up: cannot happen today
            if isinstance(reply, Started):
                largest = reply.largest
                continue
            return reply

    def _died(self, reason: str, largest: list[tuple[str, int]]) -> WorkerDied:
        """Reap the worker and say why it ended."""
        proc, self._proc = self._proc, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        code = None
        if proc is not None:
            try:
                code = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        limit = None
        if self._closed:
            reason = "the server is stopping"
        elif code == -signal.SIGXCPU:
            limit, reason = "timeout", f"past compile.timeout ({self.timeout:g} s of CPU time)"
        elif code == EXIT_MEMORY:
            limit, reason = "memory", f"past compile.max_memory ({_size(self.max_memory)})"
        elif code == -signal.SIGKILL and not reason:
            limit, reason = "memory", "killed (SIGKILL), most likely by the kernel out of memory"
        elif not reason:
            reason = (
                f"ended by signal {signal.Signals(-code).name}"
                if code is not None and code < 0
                else f"exited with code {code}"
            )
        self.restarts += 1
        self.last_death = reason
        log.warning("the compile worker ended: %s; a new one starts with the next compile", reason)
        return WorkerDied(reason, limit, largest)

    def _ensure(self) -> Connection:
        if self._conn is not None and self._proc is not None and self._proc.poll() is None:
            return self._conn
        if self._proc is not None:
            self._died("", [])
        ours, theirs = socket.socketpair()
        args = [
            *self.command,
            "--fd", str(theirs.fileno()),
            "--mirror", self.mirror_path,
            "--timeout", repr(self.timeout),
            "--max-memory", str(self.max_memory),
            "--log-level", self.log_level,
            *(arg for path in self.age_key_files for arg in ("--age-key-file", path)),
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                args, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        return self._conn

    def restart(self) -> None:
        """End the worker now (after the request in progress); the next request starts one."""
        with self._lock:
            if self._proc is not None:
                self._kill()
                self._died("restarted", [])

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        """End the worker (a compile in progress is abandoned)."""
        self._closed = True
        self._kill()
        with self._lock:
            proc, self._proc = self._proc, None
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
