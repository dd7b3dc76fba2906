"""Helpers shared by the benchmark scripts: sizes, the synthetic repository, stats, machine."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import synth

__all__ = [
    "add_size_arguments",
    "children",
    "cpu_seconds",
    "descendants",
    "distribution",
    "machine",
    "pct",
    "py_spy",
    "quantile",
    "rss_kib",
    "summary",
    "synthetic_repo",
    "top_frames",
    "wait_quiet",
    "workdir",
]

QUICK_SERVICES = 30


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """--services/--environments/--seed/--repo/--quick, the same in every script."""
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repo", type=Path, default=None, help="an existing synthetic repository (not changed)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a small repository ({QUICK_SERVICES} services)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (shared machines); 0: don't",
    )


def synthetic_repo(args: argparse.Namespace, workdir: Path, *, mutable: bool = True) -> Path:
    """The synthetic repository: --repo (cloned first if the caller commits), or a new one."""
    if args.quick:
        args.services = QUICK_SERVICES
    target = workdir / "repo"
    if args.repo is not None:
        if not mutable:
            return Path(args.repo).resolve()
        return synth.clone(args.repo.resolve(), target)
    return synth.generate(target, args.services, args.environments, args.seed)


def workdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for one run."""
    return tempfile.TemporaryDirectory(prefix=f"gitconf-bench-{prefix}-")


def summary(values: list[float]) -> dict[str, float]:
    """Best, median and p90 of timings."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"best": ordered[0], "median": statistics.median(ordered), "p90": p90}


def pct(part: float, whole: float) -> str:
    """part / whole as a percentage."""
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def children(pid: int) -> list[int]:
    """The direct children of a process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below pid (children, their children, ...), parents first."""
    found: list[int] = []
    queue = [pid]
    while queue:
        try:
            below = children(queue.pop(0))
        except OSError:  # it ended meanwhile
            continue
        found += below
        queue += below
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank), q in [0, 1]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def distribution(values: list[float]) -> str:
    """p50 / p99 / max of seconds, in ms, and how many."""
    if not values:
        return "no values"
    return (
        f"p50 {quantile(values, 0.5) * 1000:.0f} ms, p99 {quantile(values, 0.99) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms (n={len(values):,})"
    )


@contextlib.contextmanager
def py_spy(
    binary: str | None, pid: int, out: Path, seconds: float, rate: int = 1000
) -> Iterator[None]:
    """Sample pid with py-spy (collapsed stacks to out) while the block runs, at most seconds.

    py-spy is a profiling tool, not a project dependency: give the path of one installed
    anywhere (`pip install py-spy` in a virtualenv of its own). None: no profile.
    """
    if binary is None:
        yield
        return
    proc = subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--rate", str(rate), "--duration", f"{seconds:.0f}",
         "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes what it has sampled, and exits
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# Where a granian worker's main thread sits while its event loop runs native code (uvloop's
# loop, granian's Rust) or waits: py-spy cannot tell those apart from Python.
LOOP_FRAMES = ("MPServer._spawn_rsgi_worker", "MPServer._spawn_asgi_worker")


def top_frames(collapsed: Path, count: int = 12, idle: tuple[str, ...] = LOOP_FRAMES) -> str:
    """The functions py-spy saw most, by own samples and by inclusive samples (gitconf's).

    Samples whose innermost frame starts with one of idle (the event loop in native code, or
    waiting) are counted apart and left out of the shares.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = skipped = 0
    try:
        lines = collapsed.read_text().splitlines()
    except OSError as exc:
        return f"no py-spy profile ({exc.strerror})"
    for line in lines:
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        n = int(samples)
        frames = stack.split(";")
        if not frames[-1] or frames[-1].startswith(idle):
            skipped += n
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            if "gitconf" in frame:
                inclusive[frame] += n
    if not total:
        return "py-spy saw no samples"
    rows = [
        f"py-spy: {total} samples in Python ({collapsed}); {skipped} more in the event loop's "
        "native code or idle, left out",
        "  own time:",
    ]
    rows += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    rows.append("  inclusive (gitconf frames):")
    rows += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(count)]
    return "\n".join(rows)


def machine() -> str:
    """One line naming the machine: CPU model, nproc, Python, kernel."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{model}, nproc={len(os.sched_getaffinity(0))}, Python {platform.python_version()}, "
        f"Linux {platform.release()}, {git}"
    )


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def cpu_busy(seconds: float = 1.0) -> float:
    """The share of all CPUs busy over the next seconds."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_quiet(limit: float, threshold: float = 0.2) -> str:
    """Wait (up to limit seconds) until the CPUs are mostly idle; say how busy they were."""
    deadline = time.monotonic() + limit
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy(2.0)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"CPU busy before start {100 * busy:.0f}% (load average {load})"
