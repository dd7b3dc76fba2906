"""A real `gitconf serve` process on 127.0.0.1 for end-to-end tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception as exc:  # e.g. connection refused while the server starts
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or condition}: {last_error}"
    )


class ServeProcess:
    """`gitconf serve` in its own process group, with its log captured to a file."""

    def __init__(
        self,
        repo: Path | str,
        state_dir: Path,
        *,
        port: int | None = None,
        poll_interval: float = 0.2,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        config: Path | None = None,
    ) -> None:
        self.repo = str(repo)
        self.state_dir = state_dir
        self.port = port or free_port()
        self.poll_interval = poll_interval
        self.extra_args = extra_args or []
        self.env = env or {}
        self.config = config
        self.log_path = state_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 20.0) -> ServeProcess:
        """Start the server; by default wait until /readyz answers 200."""
        args = [
            sys.executable, "-m", "gitconf", "serve",
            "--repo", self.repo,
            "--listen", f"127.0.0.1:{self.port}",
            "--state-dir", str(self.state_dir),
            "--poll-interval", str(self.poll_interval),
            *self.extra_args,
        ]  # fmt: skip
        if self.config is not None:
            args += ["--config", str(self.config)]
        env = {**os.environ, **self.env}
        for key in [k for k in env if k.startswith("GITCONF_") and k not in self.env]:
            del env[key]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it while it runs
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        if wait_ready:
            wait_until(self.ready, timeout, what=f"{self.url}/readyz\n{self.log()}")
        else:
            wait_until(self.alive, timeout, what=f"{self.url}/healthz\n{self.log()}")
        return self

    def alive(self) -> bool:
        """Whether /healthz answers."""
        self._check_running()
        return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def ready(self) -> bool:
        """Whether /readyz answers 200."""
        self._check_running()
        return requests.get(f"{self.url}/readyz", timeout=2).status_code == 200

    def _check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gitconf serve exited with {self.proc.returncode}:\n{self.log()}")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path of the server."""
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to a path of the server."""
        kwargs.setdefault("timeout", 10)
        return requests.post(self.url + path, **kwargs)

    def log(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait for a graceful exit; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no cleanup."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
