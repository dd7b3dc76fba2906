"""Diagnosis for issue 13's memory targets: where the serving process's memory goes, and what
grows over commits that change every config.

    PYTHONPATH=. python benchmarks/mem_publish.py --repo /tmp/synth-4000 [--commits 4]

In one process, through the server's real poll path, as bench_incremental.py: a Server from
gitconf.bootstrap.build (not started: no HTTP host, no scheduler; the compile worker is its
usual process of its own), one poll (clone, full compile, publish), then --commits commits to
base/_all.yaml (each changes every config), each polled. tracemalloc traces this process from
before the first poll; the script prints the largest allocations by line after the first
poll, and the growth by line from the first commit to the last, with the RSS of this process
and of the compile worker after each poll and the size of the /v1/watch history; at the end,
the RSS without tracemalloc and after glibc's malloc_trim(0) (memory freed but kept by the C
allocator). PYTHONPATH=. makes this checkout's gitconf the one imported.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import synth
from common import descendants, rss_kib, wait_quiet, workdir

from gitconf.bootstrap import build
from gitconf.settings import load_settings
from gitconf.testing import commit_all

_ENDPOINT = re.compile(r"(otlp_endpoint: http://otel-collector\.observability\.internal):(\d+)")


def poll(server: Any) -> float:
    """One forced poll that must publish; its seconds."""
    started = time.perf_counter()
    result = server.poller.run_once(forced=True)
    if result != "published":
        raise SystemExit(f"the poll returned {result!r}: {server.poll.status.last_error}")
    return time.perf_counter() - started


def rss(server: Any) -> str:
    """VmRSS of this process and of the compile worker."""
    import os

    parts = [f"this process {rss_kib(os.getpid())[0] / 1024:.0f} MiB"]
    parts += [
        f"compile worker {rss_kib(pid)[0] / 1024:.0f} MiB" for pid in descendants(os.getpid())
    ]
    watch = server.watch
    events = sum(len(batch.events) for batch in watch.history)
    size = sum(len(e.data) for batch in watch.history for e in batch.events)
    parts.append(
        f"/v1/watch history {len(watch.history)} publishes, {events:,} events, "
        f"{size / 1e6:.1f} MB of event bytes"
    )
    return "; ".join(parts)


def top(snapshot: tracemalloc.Snapshot, count: int) -> str:
    """The largest allocations by line."""
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    rows = [f"  traced {total / 1e6:.1f} MB in all; largest by line:"]
    for stat in stats[:count]:
        frame = stat.traceback[0]
        rows.append(
            f"    {stat.size / 1e6:8.1f} MB {stat.count:>9,} blocks  {frame.filename}:{frame.lineno}"
        )
    return "\n".join(rows)


def growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int) -> str:
    """What grew most, by line, from before to after."""
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    rows = [f"  traced growth {total / 1e6:+.1f} MB in all; most by line:"]
    for stat in stats[:count]:
        frame = stat.traceback[0]
        rows.append(
            f"    {stat.size_diff / 1e6:+8.1f} MB {stat.count_diff:>+9,} blocks  "
            f"{frame.filename}:{frame.lineno}"
        )
    return "\n".join(rows)


def main() -> None:
    """Build, poll, commit and poll; tracemalloc summaries."""
    parser = argparse.ArgumentParser(description="the serving process's memory over publishes")
    parser.add_argument("--repo", type=Path, required=True, help="a synthetic repository")
    parser.add_argument("--commits", type=int, default=4)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames kept")
    parser.add_argument("--wait-quiet", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args()
    print(wait_quiet(args.wait_quiet))
    with workdir("mem") as name:
        tmp = Path(name)
        repo = synth.clone(args.repo.resolve(), tmp / "repo")
        settings = load_settings(
            {"repo": str(repo), "state_dir": f"{tmp}/state", "log_level": "warning"}, environ={}
        )
        tracemalloc.start(args.frames)
        server = build(settings, environ={})
        server.publisher.start()
        try:
            took = poll(server)
            gc.collect()
            first = tracemalloc.take_snapshot()
            print(f"first poll (clone, full compile, publish) {took:.1f} s; {rss(server)}")
            print(top(first, args.top))
            snapshots = []
            for round_ in range(args.commits):
                path = repo / "base" / "_all.yaml"
                text = _ENDPOINT.sub(rf"\g<1>:{6000 + round_}", path.read_text())
                commit_all(repo, f"every config {round_}", {"base/_all.yaml": text})
                took = poll(server)
                gc.collect()
                snapshots.append(tracemalloc.take_snapshot())
                print(
                    f"commit {round_ + 1} to base/_all.yaml polled in {took:.1f} s; {rss(server)}"
                )
            if len(snapshots) > 1:
                print(f"from the first commit to commit {len(snapshots)}:")
                print(growth(snapshots[0], snapshots[-1], args.top))
            print("from the first poll to the last commit:")
            print(growth(first, snapshots[-1], args.top))
            # How much of the RSS is memory Python freed but the C allocator keeps: without
            # the snapshots and tracemalloc's own traces, then after glibc's malloc_trim.
            del first, snapshots
            tracemalloc.stop()
            gc.collect()
            print(f"without tracemalloc: {rss(server)}")
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError) as exc:
                print(f"no malloc_trim here: {exc}")
            else:
                print(f"after malloc_trim(0): {rss(server)}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
