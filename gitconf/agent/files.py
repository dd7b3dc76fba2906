"""Putting one rendered file in place: only when its bytes change, checked first, then reloaded.

The new bytes are staged beside the destination (same folder, so the rename is atomic) with
the file's mode; `check_cmd` runs on the staged file and a failure keeps the old file; then
the rename, and `reload_cmd`. Commands run with `/bin/sh -c`, `{{path}}` replaced by the
quoted path, in their own process group, killed whole when `command_timeout` passes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import stat
import subprocess
from pathlib import Path
from typing import Literal, NamedTuple

from gitconf.agent.config import FileSpec
from gitconf.client.cache import install, stage

__all__ = ["CommandResult", "Written", "put_file", "run_command"]

log = logging.getLogger("gitconf.agent")

_PATH = re.compile(r"\{\{\s*path\s*\}\}")
DEFAULT_MODE = 0o644
_OUTPUT_SHOWN = 2000  # characters of a failing command's output put in the log


class CommandResult(NamedTuple):
    """How a command ended: ok, and what to log."""

    ok: bool
    summary: str
    output: str


def run_command(template: str, path: Path, timeout: float) -> CommandResult:
    """Run template with {{path}} replaced; killed (with its children) after timeout seconds."""
    command = _PATH.sub(lambda _: shlex.quote(str(path)), template)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return CommandResult(False, f"{command!r} timed out after {timeout:g} s", _tail(out))
    if proc.returncode != 0:
        return CommandResult(False, f"{command!r} exited with {proc.returncode}", _tail(out))
    return CommandResult(True, f"{command!r} succeeded", _tail(out))


def _tail(out: bytes) -> str:
    text = out.decode("utf-8", "replace").strip()
    return text if len(text) <= _OUTPUT_SHOWN else "…" + text[-_OUTPUT_SHOWN:]


Status = Literal["unchanged", "written", "check_failed", "reload_failed"]


class Written(NamedTuple):
    """What put_file did."""

    status: Status
    message: str


def _mode(spec: FileSpec) -> int:
    if spec.perms is not None:
        return spec.perms
    try:
        return stat.S_IMODE(spec.destination.stat().st_mode)
    except FileNotFoundError:
        return DEFAULT_MODE


def put_file(spec: FileSpec, data: bytes) -> Written:
    """Write data to spec.destination if it differs: check, atomic rename, reload."""
    path = spec.destination
    mode = _mode(spec)
    try:
        current: bytes | None = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current == data:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
            return Written("unchanged", f"{path}: unchanged; mode set to {mode:04o}")
        return Written("unchanged", f"{path}: unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = stage(path, data, mode)
    if spec.check_cmd:
        checked = run_command(spec.check_cmd, staged, spec.command_timeout)
        if not checked.ok:
            with contextlib.suppress(OSError):
                staged.unlink()
            return Written(
                "check_failed",
                f"{path}: check_cmd failed, the old file stays: {checked.summary}"
                + (f"; output: {checked.output}" if checked.output else ""),
            )
    install(staged, path)
    if spec.reload_cmd:
        reloaded = run_command(spec.reload_cmd, path, spec.command_timeout)
        if not reloaded.ok:
            return Written(
                "reload_failed",
                f"{path}: written ({len(data)} bytes, mode {mode:04o}) but reload_cmd failed: "
                f"{reloaded.summary}" + (f"; output: {reloaded.output}" if reloaded.output else ""),
            )
        return Written(
            "written",
            f"{path}: written ({len(data)} bytes, mode {mode:04o}); reloaded: {reloaded.summary}",
        )
    return Written("written", f"{path}: written ({len(data)} bytes, mode {mode:04o})")
