"""Target 2: the compile step after a one-file commit, against a full compile.

    python benchmarks/bench_incremental.py [--quick] [--repo DIR] [--rounds 5] [--runs 3]

In one process, through the server's real poll path: a Server from gitconf.bootstrap.build
(not started: no scheduler, no HTTP), one poll (clone, full compile, publish), then --rounds
times a commit that changes one service overlay and one poll. Each poll is broken down into
fetch, reading the commit's files, compile, snapshot, publish (prepare bodies, persist) and
publish listeners, by timing those functions where they are called.

Then the compile step alone: `compile_fileset(files)` without a cache (what `gitconf
validate` does) against `compile_fileset(files, cache)` with a cache warmed by the previous
commit, alternating between two commits one file apart. Target: incremental <= 5% of full.
The layer files read, merges and validations made by each compile are counted, to show
what was redone. Finally the bodies the server holds: configs, distinct ETags, distinct
byte objects (target 6 wants one copy per distinct body).
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import synth
from common import (
    add_size_arguments,
    machine,
    pct,
    rss_kib,
    summary,
    synthetic_repo,
    wait_quiet,
    workdir,
)

import gitconf.core.compile as compile_module
import gitconf.jobs.poll as poll_module
from gitconf.bootstrap import build
from gitconf.settings import load_settings
from gitconf.store.snapshots import SnapshotStore

# What a poll does, as (object, attribute, label); missing ones are skipped.
POLL_SPANS = [
    ("mirror", "fetch", "fetch"),
    ("compiler", "call", "compile (in the compile worker)"),
    (poll_module, "from_built", "prepare bodies"),
    ("publisher", "publish", "publish"),
    (SnapshotStore, "write", "  publish: persist to served.db"),
]
# Work a compile redoes, counted: (module attribute, label).
COUNTED = [
    ("_read", "layer files parsed"),
    ("load_schemas", "schema sets loaded"),
    ("merge", "layer merges"),
    ("located_errors", "configs validated"),
]


class Spans:
    """Seconds and calls per label, for functions wrapped in place."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.found: list[str] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        """Time every call of owner.name under label (nothing if there is no such attribute)."""
        original = getattr(owner, name, None)
        if original is None:
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        setattr(owner, name, timed)
        self.found.append(label)

    def wrap_listeners(self, listeners: list[Callable[..., None]], label: str) -> None:
        """Time the publish listeners (notifications' change sets and the like)."""
        for index, listener in enumerate(list(listeners)):
            holder = _Holder(listener)
            self.wrap(holder, "func", label)
            listeners[index] = holder.func

    def take(self) -> tuple[dict[str, float], Counter[str]]:
        """The figures since the last take, and reset."""
        seconds, calls = dict(self.seconds), Counter(self.calls)
        self.seconds.clear()
        self.calls.clear()
        return seconds, calls


class _Holder:
    def __init__(self, func: Callable[..., None]) -> None:
        self.func = func


def instrument(server: Any) -> Spans:
    """Wrap the poll path's steps and the compile's counted calls."""
    spans = Spans()
    for owner, name, label in POLL_SPANS:
        spans.wrap(getattr(server, owner) if isinstance(owner, str) else owner, name, label)
    spans.wrap_listeners(server.poll.on_published, "publish listeners")
    for name, label in COUNTED:
        spans.wrap(compile_module, name, "#" + label)
    return spans


def poll(server: Any, spans: Spans) -> tuple[float, dict[str, float], Counter[str]]:
    """One forced poll that must publish: its seconds and breakdown."""
    started = time.perf_counter()
    result = server.poller.run_once(forced=True)
    elapsed = time.perf_counter() - started
    if result != "published":
        raise SystemExit(f"the poll returned {result!r}: {server.poll.status.last_error}")
    seconds, calls = spans.take()
    return elapsed, seconds, calls


def show_poll(title: str, elapsed: float, seconds: dict[str, float], calls: Counter[str]) -> None:
    """One poll's breakdown."""
    top = [k for k in seconds if not k.startswith(("#", " "))]
    other = elapsed - sum(seconds[k] for k in top)
    print(f"{title}: {elapsed * 1000:9.1f} ms")
    order = [label for _, _, label in POLL_SPANS] + ["publish listeners"]
    for label in order:
        if label in seconds:
            value = seconds[label]
            print(f"    {label:<28} {value * 1000:9.1f} ms  {pct(value, elapsed):>6}")
    print(
        f"    {'other (store, status, ...)':<28} {other * 1000:9.1f} ms  {pct(other, elapsed):>6}"
    )
    counted = ", ".join(f"{calls['#' + label]} {label}" for _, label in COUNTED)
    print(f"    redone: {counted}")


def new_cache() -> Any:
    """An empty cache of whichever kind compile_fileset takes now."""
    kind = getattr(compile_module, "CompileCache", None)
    return kind() if kind is not None else {}


def compile_step(server: Any, spans: Spans, before: str, after: str, runs: int) -> None:
    """compile_fileset cold against warm, on two commits one file apart."""
    compile_fileset = compile_module.__dict__.get("compile_fileset")
    assert compile_fileset is not None
    _, files_before = server.mirror.fileset(before)
    _, files_after = server.mirror.fileset(after)
    cold: list[float] = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = compile_fileset(files_after)
        cold.append(time.perf_counter() - started)
        assert result.revision is not None, result.problems[:3]
    _, calls = spans.take()
    cache = new_cache()
    started = time.perf_counter()
    compile_fileset(files_before, cache)
    filling = time.perf_counter() - started
    spans.take()
    warm: list[float] = []
    warm_calls: list[Counter[str]] = []
    for index in range(2 * runs + 1):
        files = files_after if index % 2 == 0 else files_before
        started = time.perf_counter()
        result = compile_fileset(files, cache)
        warm.append(time.perf_counter() - started)
        assert result.revision is not None
        warm_calls.append(spans.take()[1])
    full = summary(cold)
    inc = summary(warm)
    print("compile_fileset alone (files already read from the mirror):")
    print(
        f"    full, no cache (as `gitconf validate`): best {full['best']:.2f}s  "
        f"median {full['median']:.2f}s  ({runs} run(s))"
    )
    print(f"    full, filling an empty cache:           {filling:.2f}s")
    print(
        f"    one file changed, warm cache:           best {inc['best'] * 1000:.1f} ms  "
        f"median {inc['median'] * 1000:.1f} ms  ({len(warm)} runs)"
    )
    print(
        f"    ratio incremental/full: best {pct(inc['best'], full['best'])}  "
        f"median {pct(inc['median'], full['median'])}  (target <= 5%: "
        f"{'meets' if inc['median'] <= 0.05 * full['median'] else 'misses'})"
    )
    print(
        "    redone per full compile: "
        + ", ".join(f"{calls['#' + label] // runs} {label}" for _, label in COUNTED)
    )
    typical = warm_calls[len(warm_calls) // 2]
    print(
        "    redone per incremental compile: "
        + ", ".join(f"{typical['#' + label]} {label}" for _, label in COUNTED)
    )


def bodies(server: Any) -> None:
    """How many response bodies the served revision holds, and how many distinct ones."""
    served = server.publisher.served
    table = getattr(served, "json", None)
    if not isinstance(table, dict):
        print("served bodies: the served revision has no `json` table to inspect")
        return
    values = list(table.values())
    datas = {id(getattr(b, "data", b)): len(getattr(b, "data", b)) for b in values}
    etags = {getattr(b, "etag", None) for b in values}
    print(
        f"served JSON bodies: {len(values)} configs, {len(etags)} distinct ETags, "
        f"{len(datas)} distinct byte objects, {sum(datas.values()) / 1e6:.1f} MB of bodies"
    )
    rss, hwm = rss_kib(os.getpid())
    print(
        f"this process (server objects + compile cache): VmRSS {rss / 1024:.0f} MiB, "
        f"VmHWM {hwm / 1024:.0f} MiB"
    )


def main() -> None:
    """Build, poll, change one file, poll again; then the compile step alone."""
    parser = argparse.ArgumentParser(description="incremental publish vs full compile")
    add_size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5, help="one-file commits polled")
    parser.add_argument("--runs", type=int, default=3, help="full compiles timed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with workdir("incremental") as tmp:
        repo = synthetic_repo(args, Path(tmp))
        print(f"# bench_incremental on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {repo} ({args.services} services x {args.environments} environments)")
        settings = load_settings({"repo": str(repo), "state_dir": f"{tmp}/state"}, environ={})
        server = build(settings, environ={})
        try:
            spans = instrument(server)
            found = dict.fromkeys(s.strip() for s in spans.found if s[0] != "#")
            print(f"timed steps found: {', '.join(found)}")
            elapsed, seconds, calls = poll(server, spans)
            show_poll("first poll (clone + full compile + publish)", elapsed, seconds, calls)
            full_compile = seconds.get("compile", 0.0)
            revisions = [server.publisher.served.revision]
            targets = synth.overlay_targets(repo)
            ticks: list[float] = []
            compiles: list[float] = []
            for round_ in range(args.rounds):
                change = synth.change_one(repo, round_, targets)
                elapsed, seconds, calls = poll(server, spans)
                ticks.append(elapsed)
                compiles.append(seconds.get("compile", 0.0))
                show_poll(f"poll after changing {change.path}", elapsed, seconds, calls)
                revisions.append(server.publisher.served.revision)
            median = statistics.median(compiles)
            print(
                f"poll path: compile step after a one-file commit, median {median * 1000:.1f} ms "
                f"= {pct(median, full_compile)} of the first poll's full compile "
                f"({full_compile:.2f}s); whole poll median {statistics.median(ticks) * 1000:.1f} ms"
            )
            bodies(server)
            if len(revisions) > 1:  # the last two commits are one file apart
                compile_step(server, spans, revisions[-2], revisions[-1], args.runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
