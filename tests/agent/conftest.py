"""A real `gitconf agent` process, and a real server for it to read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitconf.testing import make_repo
from gitconf.testing.server import ServeProcess
from tests.conftest import BASE_FILES

FAST = {"wait": {"min": 0, "max": 0}, "backoff": {"first": 0.05, "max": 0.3}, "long_poll": 5}


class AgentProcess:
    """`python -m gitconf agent --config <file>` with its log in a file."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITCONF_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gitconf", "agent", "--config", str(self.config), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    def run_once(self, timeout: float = 30) -> int:
        """--once, to its end: the exit code."""
        self.start("--once")
        assert self.proc is not None
        return self.proc.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM; the exit code, which must come within timeout seconds."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def write_agent_config(path: Path, server: str, files: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"server": server, **FAST, **extra, "files": files}))
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, ServeProcess]]:
    repo = make_repo(tmp_path / "config", dict(BASE_FILES))
    with ServeProcess(repo, tmp_path / "state", poll_interval=0.2) as server:
        yield repo, server


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    made: list[AgentProcess] = []
    yield made
    for agent in made:
        agent.kill()
