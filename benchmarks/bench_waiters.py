"""Issue 13: long polls held by one server, a publish's fan-out, past max_waiters, vs etcd.

    python benchmarks/bench_waiters.py [--waiters 10000] [--over 2000] [--rounds 3]
                                       [--no-sse] [--no-etcd] [--py-spy PATH]

One real `gitconf serve` (max_waiters 10,000, the default) on a small repository: 2
environments x 4 services, 8 configs. An asyncio client in this process (raw sockets, HTTP/1.1,
one connection each) opens --waiters long polls, `GET /v1/config/<env>/<svc>?wait=120` with
If-None-Match, spread round-robin over the 8 configs, and waits until /metrics says
gitconf_long_polls_waiting is that many. Then:

- memory: VmRSS of the serving processes (granian main + its worker) before and after, per
  waiter (target <= 10 KiB each);
- plain reads while they wait: wrk -t1 -c32 against gitconf and against nginx serving the same
  bytes (--rounds rounds; the ratio within a round, then the median; target >= 0.8x). The same
  without waiters first, for reference;
- a commit changing 4 of the 8 configs and a signed GitHub push hook: for every waiter whose
  config changed, the time from sending the hook to its 200 (p50/p99/max); the others must
  still be waiting. Each answered waiter long-polls again with its new ETag, as a client does;
- a commit changing every config (base/_all.yaml) and a hook: hook -> each of the N waiters'
  200 (target: p99 <= 0.5 s), and first answer -> each (the fan-out alone);
- unless --no-sse: the same N as GET /v1/watch event streams (one config each), memory per
  stream and hook -> each stream's event.

A second server with max_waiters --over (2,000) gets --over + 100 long polls: the extra ones
must get 503 at once, while /readyz, a plain read, /metrics and /v1/status still answer.

Unless --no-etcd: etcd (Debian's etcd-server, /usr/bin/etcd) on 127.0.0.1 with a temporary
data dir, N watchers of one key through its JSON gateway (POST /v3/watch, one HTTP stream
each, same client), one put, and the time to each watcher's event; the ratio of gitconf's
all-N p99 to etcd's. --py-spy samples the serving worker during the all-N fan-out.

RLIMIT_NOFILE is raised to its hard limit first (the servers started after inherit it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import rawhttp
import requests
from bench_push import SECRET, hook_body, send_hook
from bench_reads import WrkResult, bare_granian, nginx, run_wrk
from common import (
    children,
    cpu_seconds,
    descendants,
    distribution,
    machine,
    py_spy,
    quantile,
    rss_kib,
    top_frames,
    wait_quiet,
    workdir,
)

from gitconf.testing import commit_all, make_repo
from gitconf.testing.server import ServeProcess, free_port, wait_until

ENVIRONMENTS = ("dev", "prod")
SERVICES = ("svc-0", "svc-1", "svc-2", "svc-3")
CHANGED_FIRST = ("svc-0", "svc-1")  # the first commit changes these services' configs
CONNECTS = 256  # connections being opened at once (the accept queue is 4,096 at most)
FANOUT_TIMEOUT = 90.0
PAD = 40  # settings keys per config
PROFILE = Path("/tmp/gitconf-bench-fanout.txt")  # --py-spy's samples of the all-N fan-out


def base_file(name: str, index: int, revision: int) -> str:
    """A service's base config: about 1.9 KB of JSON, like the synthetic repository's."""
    pad = "".join(
        f"  key_{k:02d}: value-{name}-{k:02d}-{revision}-abcdefghij\n" for k in range(PAD)
    )
    return f"name: {name}\nrevision: {revision}\ndb:\n  pool: {{max: {index}}}\nsettings:\n{pad}"


def repo_files() -> dict[str, str | bytes | None]:
    """A small repository: 2 environments x 4 services, no schemas required."""
    envs = "".join(f"  {env}: {{}}\n" for env in ENVIRONMENTS)
    files: dict[str, str | bytes | None] = {
        "gitconf.yaml": f"version: 1\nenvironments:\n{envs}validation:\n  require_schema: false\n",
        "base/_all.yaml": "generation: 0\nlog_level: info\n",
    }
    for index, name in enumerate(SERVICES):
        files[f"base/{name}.yaml"] = base_file(name, index, 0)
    return files


class Stop:
    """The revision whose answer ends the long polls (set once it is committed)."""

    revision: str | None = None


class LongPoll:
    """One client holding a long poll on one config, re-polling after each 200."""

    def __init__(self, env: str, service: str, etag: str) -> None:
        self.key = (env, service)
        self.etag = etag
        self.answers: dict[str, float] = {}  # revision -> when its 200 arrived
        self.refused: tuple[int, float] | None = None  # (status, seconds after sending)
        self.error: str | None = None

    async def run(self, port: int, gate: asyncio.Semaphore, wait: int, stop: Stop) -> None:
        host = f"127.0.0.1:{port}"
        path = f"/v1/config/{self.key[0]}/{self.key[1]}?wait={wait}"
        writer = None
        try:
            reader, writer = await rawhttp.connect(port, gate)
            while True:
                sent = time.perf_counter()
                writer.write(rawhttp.request_bytes("GET", host, path, {"If-None-Match": self.etag}))
                reply = await rawhttp.read_response(reader)
                if reply.status == 304:  # the wait ended: poll again
                    continue
                if reply.status != 200:
                    self.refused = (reply.status, reply.at - sent)
                    return
                revision = reply.headers.get("x-gitconf-revision", "")
                self.answers[revision] = reply.at
                self.etag = reply.headers["etag"]
                if revision == stop.revision:
                    return
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error = repr(exc)
        finally:
            if writer is not None:
                writer.close()


class Stream:
    """One client of GET /v1/watch for one config, or of etcd's watch gateway for one key."""

    def __init__(self) -> None:
        self.opened = False
        self.event_at: float | None = None
        self.error: str | None = None

    async def run(
        self, port: int, gate: asyncio.Semaphore, request: bytes, opened: bytes, event: bytes
    ) -> None:
        writer = None
        try:
            reader, writer = await rawhttp.connect(port, gate)
            writer.write(request)
            head = await rawhttp.read_response(reader, head_only=True)
            if head.status != 200:
                self.error = f"status {head.status}"
                return
            buffer = bytearray()
            await rawhttp.read_until(reader, opened, buffer)
            del buffer[:]
            self.opened = True
            self.event_at = await rawhttp.read_until(reader, event, buffer)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error = repr(exc)
        finally:
            if writer is not None:
                writer.close()


async def until(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Wait for condition (polled); the seconds it took. SystemExit after timeout."""
    started = time.perf_counter()
    while True:
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            if await condition():
                return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def metric(port: int, name: str) -> float:
    """The value of an unlabelled metric in /metrics (-1 if absent)."""
    reply = await rawhttp.get(port, "/metrics")
    for line in reply.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


async def histogram_sum(port: int, name: str) -> tuple[float, float]:
    """(sum, count) of a histogram in /metrics."""
    reply = await rawhttp.get(port, "/metrics")
    found = {"_sum": 0.0, "_count": 0.0}
    for line in reply.body.decode().splitlines():
        for suffix in found:
            if line.startswith(name + suffix + " "):
                found[suffix] = float(line.split()[1])
    return found["_sum"], found["_count"]


def serving_pids(server: ServeProcess) -> tuple[int, int, list[int]]:
    """(granian main, granian worker, the worker's children: the compile worker)."""
    assert server.proc is not None
    main = server.proc.pid
    workers = children(main)
    if len(workers) != 1:
        raise SystemExit(f"expected one granian worker under pid {main}, found {workers}")
    return main, workers[0], descendants(workers[0])


def serving_rss(server: ServeProcess) -> int:
    """VmRSS of granian main + worker, KiB."""
    main, worker, _ = serving_pids(server)
    return rss_kib(main)[0] + rss_kib(worker)[0]


async def hook(server: ServeProcess, sha: str, before: str) -> float:
    """Send a signed push hook; perf_counter just before it was sent."""

    def send() -> float:
        session = requests.Session()
        body = hook_body(sha, before)
        sent = time.perf_counter()
        reply = send_hook(session, server.url, body)
        if reply.status_code != 202:
            raise SystemExit(f"the hook answered {reply.status_code}: {reply.text[:300]}")
        return sent

    return await asyncio.to_thread(send)


def wrk_pair(targets: dict[str, str], rounds: int, seconds: float) -> dict[str, list[WrkResult]]:
    """wrk -t1 -c32 on each target in turn, rounds times (1 s warm-up each)."""
    results: dict[str, list[WrkResult]] = {label: [] for label in targets}
    for round_ in range(rounds):
        for label, url in targets.items():
            run_wrk(url, 1.0)
            result = run_wrk(url, seconds)
            results[label].append(result)
            print(
                f"  round {round_ + 1}: {label:<28} {result.rps:>9,.0f} req/s  p50 {result.p50:>8}"
                f"  p99 {result.p99:>8}  ({result.bad} bad)",
                flush=True,
            )
    return results


def ratio(results: dict[str, list[WrkResult]], top: str, bottom: str) -> tuple[float, str]:
    """Median of the per-round ratios, and the rounds."""
    each = [a.rps / b.rps for a, b in zip(results[top], results[bottom], strict=True)]
    return statistics.median(each), ", ".join(f"{r:.2f}" for r in each)


class Cpu:
    """CPU time a server process and this client use from now on."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.server = cpu_seconds(pid)
        self.client = time.process_time()
        self.wall = time.perf_counter()

    def used(self) -> str:
        """What each used since, against the wall-clock time."""
        server = cpu_seconds(self.pid) - self.server
        client = time.process_time() - self.client
        wall = time.perf_counter() - self.wall
        return f"server pid {self.pid} {server:.2f} s, this client {client:.2f} s, in {wall:.2f} s"


def verdict(ok: bool) -> str:
    """meets / MISSES."""
    return "meets" if ok else "MISSES"


class Run:
    """The server, repository and client state of the main run."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.repo = make_repo(tmp / "config", repo_files())
        self.head = commit_all(self.repo, "nothing yet")
        self.gate = asyncio.Semaphore(CONNECTS)
        self.figures: dict[str, str] = {}

    def server(self, max_waiters: int, name: str) -> ServeProcess:
        settings = self.tmp / f"{name}.yaml"
        settings.write_text(
            f"hooks:\n  github:\n    secret: {SECRET}\nlog_level: warning\n"
            f"max_waiters: {max_waiters}\nmax_wait: 300\n"
        )
        return ServeProcess(
            self.repo, self.tmp / f"state-{name}", poll_interval=600, config=settings
        )

    def commit(self, files: dict[str, str | bytes | None], message: str) -> tuple[str, str]:
        before, self.head = self.head, commit_all(self.repo, message, files)
        return self.head, before

    async def etags(self, port: int) -> dict[tuple[str, str], str]:
        found = {}
        for env in ENVIRONMENTS:
            for service in SERVICES:
                reply = await rawhttp.get(port, f"/v1/config/{env}/{service}")
                found[env, service] = reply.headers["etag"]
        return found

    # -- the main server ----------------------------------------------------------------

    async def main_server(self) -> None:
        args = self.args
        server = self.server(10_000, "main")
        started = time.perf_counter()
        server.start(timeout=120)
        print(f"gitconf serve ready in {time.perf_counter() - started:.1f} s (max_waiters 10,000)")
        try:
            await self.long_polls(server)
            if not args.no_sse:
                await self.streams(server)
        finally:
            code = server.stop(timeout=60)
            if code not in (0, None):
                print(f"gitconf serve exited with {code}; its log:\n{server.log()[-3000:]}")

    async def long_polls(self, server: ServeProcess) -> None:
        args = self.args
        port = server.port
        n = args.waiters
        etags = await self.etags(port)
        keys = list(etags)
        path = f"/v1/config/{ENVIRONMENTS[1]}/{SERVICES[3]}"
        reply = await rawhttp.get(port, path)
        body = reply.body
        same = [
            (k, v)
            for k, v in reply.headers.items()
            # rawhttp.get asked for Connection: close, which the bare app must not answer
            if k not in ("date", "server", "content-length", "connection")
        ]
        root = self.tmp / "www"
        (root / path.lstrip("/")).parent.mkdir(parents=True)
        (root / path.lstrip("/")).write_bytes(body)
        stop = Stop()
        polls = [LongPoll(*keys[i % len(keys)], etags[keys[i % len(keys)]]) for i in range(n)]
        tasks: list[asyncio.Task[None]] = []
        try:
            with nginx(self.tmp, root) as base:
                targets = {"nginx": base + path, "gitconf, no waiters": server.url + path}
                print(f"plain reads of {path} ({len(body)} bytes), no waiters yet:")
                with bare_granian(self.tmp, body, same) as bare:
                    targets["bare RSGI app, same bytes"] = bare + path
                    idle = await asyncio.to_thread(wrk_pair, targets, args.rounds, args.duration)
                    del targets["bare RSGI app, same bytes"]
                rss_before = serving_rss(server)
                opened = time.perf_counter()
                tasks += [
                    asyncio.create_task(p.run(port, self.gate, args.wait, stop)) for p in polls
                ]
                took = await until(
                    lambda: self._waiting(port, n), 180, f"{n} long polls waiting", 0.25
                )
                errors = [p.error or p.refused for p in polls if p.error or p.refused]
                print(
                    f"{n:,} long polls waiting after {took:.1f} s "
                    f"({len(errors)} failed{': ' + str(errors[:3]) if errors else ''})"
                )
                rss_after = serving_rss(server)
                per = (rss_after - rss_before) / n
                self.figures["KiB per long poll"] = f"{per:.1f} KiB ({verdict(per <= 10)} <= 10)"
                print(
                    f"serving RSS (granian main + worker): {rss_before / 1024:.0f} MiB before, "
                    f"{rss_after / 1024:.0f} MiB with {n:,} waiting: {per:.1f} KiB per waiter "
                    f"(target <= 10 KiB: {verdict(per <= 10)}); {self._compile_worker(server)}"
                )
                print(f"plain reads while {n:,} long polls wait:")
                label = f"gitconf, {n:,} waiting"
                targets = {"nginx": base + path, label: server.url + path}
                busy = await asyncio.to_thread(wrk_pair, targets, args.rounds, args.duration)
            idle_ratio, idle_rounds = ratio(idle, "gitconf, no waiters", "nginx")
            bare_ratio, bare_rounds = ratio(idle, "bare RSGI app, same bytes", "nginx")
            print(
                f"ratio bare RSGI app under granian/nginx: {bare_ratio:.2f}x (rounds {bare_rounds})"
                " (the ceiling of a Python app on granian)"
            )
            self.figures["bare RSGI app vs nginx"] = f"{bare_ratio:.2f}x ({bare_rounds})"
            busy_ratio, busy_rounds = ratio(busy, label, "nginx")
            print(f"ratio gitconf/nginx, no waiters: {idle_ratio:.2f}x (rounds {idle_rounds})")
            print(
                f"ratio gitconf/nginx while {n:,} wait: {busy_ratio:.2f}x (rounds {busy_rounds}) "
                f"(target >= 0.8x: {verdict(busy_ratio >= 0.8)})"
            )
            self.figures["reads while N wait vs nginx"] = f"{busy_ratio:.2f}x ({busy_rounds})"
            self.figures["reads, no waiters, vs nginx"] = f"{idle_ratio:.2f}x ({idle_rounds})"
            if time.perf_counter() - opened > args.wait - 10:
                print(f"note: more than --wait {args.wait} s passed; some waits ended (304, again)")
            await self._fanout_some(server, polls)
            await self._fanout_all(server, polls, stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await until(lambda: self._waiting(port, 0), 30, "the long polls to end")

    async def _waiting(self, port: int, n: int) -> bool:
        return await metric(port, "gitconf_long_polls_waiting") == n

    def _compile_worker(self, server: ServeProcess) -> str:
        _, _, below = serving_pids(server)
        return "compile worker " + (
            ", ".join(f"pid {p} {rss_kib(p)[0] / 1024:.0f} MiB" for p in below) or "not running"
        )

    async def _fanout_some(self, server: ServeProcess, polls: list[LongPoll]) -> None:
        n = len(polls)
        files: dict[str, str | bytes | None] = {
            f"base/{name}.yaml": base_file(name, 9, 1) for name in CHANGED_FIRST
        }
        sha, before = self.commit(files, "change 2 of 4 services")
        changed = [p for p in polls if p.key[1] in CHANGED_FIRST]
        others = [p for p in polls if p.key[1] not in CHANGED_FIRST]
        sent = await hook(server, sha, before)

        async def answered() -> bool:
            return all(sha in p.answers or p.error for p in changed)

        await until(answered, FANOUT_TIMEOUT, "the changed configs' long polls", 0.02)
        await until(lambda: self._waiting(server.port, n), 60, "the long polls to wait again")
        times = [p.answers[sha] - sent for p in changed if sha in p.answers]
        woken = [p for p in others if sha in p.answers or p.refused or p.error]
        print(
            f"commit changing 4 of the 8 configs: hook -> 200 for the "
            f"{len(changed):,} waiters whose config changed: {distribution(times)}; first "
            f"answer {min(times) * 1000:.0f} ms after the hook; the other {len(others):,}: "
            f"{len(others) - len(woken):,} still waiting, {len(woken)} answered or failed"
        )
        self.figures["hook -> 200, changed half"] = distribution(times)
        self.figures["unchanged still waiting"] = f"{len(others) - len(woken):,} of {len(others):,}"

    async def _fanout_all(self, server: ServeProcess, polls: list[LongPoll], stop: Stop) -> None:
        args = self.args
        compile0 = await histogram_sum(server.port, "gitconf_compile_seconds")
        fetch0 = await histogram_sum(server.port, "gitconf_fetch_seconds")
        sha, before = self.commit({"base/_all.yaml": "generation: 1\nlog_level: info\n"}, "all")
        stop.revision = sha
        _, worker, _ = serving_pids(server)
        with py_spy(args.py_spy, worker, PROFILE, 6):
            cpu = Cpu(worker)
            sent = await hook(server, sha, before)

            async def answered() -> bool:
                return all(sha in p.answers or p.error for p in polls)

            await until(answered, FANOUT_TIMEOUT, f"all {len(polls):,} long polls", 0.02)
            used = cpu.used()
        compile1 = await histogram_sum(server.port, "gitconf_compile_seconds")
        fetch1 = await histogram_sum(server.port, "gitconf_fetch_seconds")
        times = [p.answers[sha] - sent for p in polls if sha in p.answers]
        first = min(times)
        spread = [t - first for t in times]
        p99 = quantile(times, 0.99)
        errors = [p.error for p in polls if p.error]
        print(
            f"commit changing every config: hook -> 200 for all {len(times):,} waiters: "
            f"{distribution(times)} (target p99 <= 500 ms: {verdict(p99 <= 0.5)}); "
            f"{len(errors)} failed"
        )
        print(
            f"  of which hook -> first answer {first * 1000:.0f} ms (server: fetch "
            f"{(fetch1[0] - fetch0[0]) * 1000:.0f} ms, compile {(compile1[0] - compile0[0]) * 1000:.0f}"
            f" ms), first answer -> each: {distribution(spread)}"
        )
        print(f"  CPU from the hook to the last answer: {used}")
        if args.py_spy:
            print(top_frames(PROFILE))
        self.figures["hook -> 200, all N"] = distribution(times)
        self.figures["first answer -> each, all N"] = distribution(spread)
        self.gitconf_p99 = p99
        self.gitconf_spread_p99 = quantile(spread, 0.99)

    async def streams(self, server: ServeProcess) -> None:
        n = self.args.waiters
        port = server.port
        keys = [(env, service) for env in ENVIRONMENTS for service in SERVICES]
        rss_before = serving_rss(server)
        streams = [Stream() for _ in range(n)]
        requests_ = [
            rawhttp.request_bytes(
                "GET",
                f"127.0.0.1:{port}",
                f"/v1/watch?environments={keys[i % 8][0]}&services={keys[i % 8][1]}",
            )
            for i in range(n)
        ]
        tasks = [
            asyncio.create_task(s.run(port, self.gate, r, b"retry:", b"event: config.changed"))
            for s, r in zip(streams, requests_, strict=True)
        ]
        try:

            async def open_() -> bool:
                return await metric(port, "gitconf_watch_streams") == n and all(
                    s.opened or s.error for s in streams
                )

            took = await until(open_, 180, f"{n} watch streams", 0.25)
            rss_after = serving_rss(server)
            per = (rss_after - rss_before) / n
            failed = [s.error for s in streams if s.error]
            print(
                f"{n:,} GET /v1/watch streams open after {took:.1f} s ({len(failed)} failed); "
                f"serving RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB: "
                f"{per:.1f} KiB per stream"
            )
            sha, before = self.commit({"base/_all.yaml": "generation: 2\nlog_level: info\n"}, "sse")
            cpu = Cpu(serving_pids(server)[1])
            sent = await hook(server, sha, before)

            async def seen() -> bool:
                return all(s.event_at or s.error for s in streams)

            await until(seen, FANOUT_TIMEOUT, f"all {n:,} streams' events", 0.02)
            used = cpu.used()
            times = [s.event_at - sent for s in streams if s.event_at]
            spread = [t - min(times) for t in times]
            print(
                f"commit changing every config: hook -> event on each of {len(times):,} streams: "
                f"{distribution(times)}; first event -> each: {distribution(spread)}; CPU {used}"
            )
            self.figures["KiB per watch stream"] = f"{per:.1f} KiB"
            self.figures["hook -> SSE event, all N"] = distribution(times)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- past max_waiters ---------------------------------------------------------------

    async def over_limit(self) -> None:
        limit = self.args.over
        extra = 100
        server = self.server(limit, "over")
        server.start(timeout=120)
        port = server.port
        try:
            etags = await self.etags(port)
            keys = list(etags)
            stop = Stop()
            polls = [
                LongPoll(*keys[i % len(keys)], etags[keys[i % len(keys)]])
                for i in range(limit + extra)
            ]
            tasks = [
                asyncio.create_task(p.run(port, self.gate, self.args.wait, stop)) for p in polls
            ]
            try:

                async def settled() -> bool:
                    refused = sum(1 for p in polls if p.refused)
                    return refused >= extra and await self._waiting(port, limit)

                took = await until(settled, 120, f"{limit} waiting and {extra} refused", 0.25)
                refused = [p.refused for p in polls if p.refused]
                statuses = sorted({status for status, _ in refused})
                slowest = max(seconds for _, seconds in refused)
                print(
                    f"max_waiters {limit:,}, {limit + extra:,} long polls opened: {limit:,} waiting, "
                    f"{len(refused)} refused with {statuses} (slowest refusal {slowest * 1000:.0f} "
                    f"ms after its request) in {took:.1f} s"
                )
                checks = []
                for label, path in (
                    ("/readyz", "/readyz"),
                    ("plain read", f"/v1/config/{ENVIRONMENTS[0]}/{SERVICES[0]}"),
                    ("/metrics", "/metrics"),
                    ("/v1/status", "/v1/status"),
                ):
                    asked = time.perf_counter()
                    reply = await rawhttp.get(port, path, timeout=5)
                    checks.append(f"{label} {reply.status} in {(reply.at - asked) * 1000:.1f} ms")
                print("  while they wait: " + "; ".join(checks))
                self.figures[f"past max_waiters ({limit:,})"] = (
                    f"{len(refused)}/{extra} got {statuses}, slowest {slowest * 1000:.0f} ms; "
                    + "; ".join(checks)
                )
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            server.stop(timeout=60)

    # -- what granian itself takes per held request ------------------------------------

    async def bare_hold(self) -> None:
        """KiB per request held by a bare RSGI app under granian (each awaits its client's
        disconnect): what any app on this server pays, to read gitconf's own cost against."""
        n = self.args.waiters
        with bare_holder(self.tmp, n) as (port, proc):
            pids = [proc.pid, *descendants(proc.pid)]

            def rss() -> int:
                return sum(rss_kib(pid)[0] for pid in pids)

            async def held(count: int) -> bool:
                return (await rawhttp.get(port, "/count")).body == str(count).encode()

            before = rss()
            request = rawhttp.request_bytes("GET", f"127.0.0.1:{port}", "/hold")
            holders = [Stream() for _ in range(n)]
            tasks = [
                asyncio.create_task(h.run(port, self.gate, request, b"never", b"never"))
                for h in holders
            ]
            try:
                took = await until(lambda: held(n), 180, f"{n} requests held", 0.25)
                per = (rss() - before) / n
                print(
                    f"bare RSGI app under granian holding {n:,} requests (after {took:.1f} s): "
                    f"RSS {before / 1024:.0f} -> {rss() / 1024:.0f} MiB, {per:.1f} KiB per request"
                )
                self.figures["bare RSGI app, KiB per held request"] = f"{per:.1f} KiB"
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- etcd ---------------------------------------------------------------------------

    async def etcd_reference(self) -> None:
        n = self.args.waiters
        with etcd(self.tmp) as (port, proc):
            key = base64.b64encode(b"/gitconf/bench").decode()
            await rawhttp.post(
                port, "/v3/kv/put", json.dumps({"key": key, "value": "MA=="}).encode()
            )
            rss_before = rss_kib(proc.pid)[0]
            body = json.dumps({"create_request": {"key": key}}).encode()
            request = rawhttp.request_bytes(
                "POST", f"127.0.0.1:{port}", "/v3/watch", {"Content-Type": "application/json"}, body
            )
            watchers = [Stream() for _ in range(n)]
            tasks = [
                asyncio.create_task(w.run(port, self.gate, request, b'"created":true', b'"events"'))
                for w in watchers
            ]
            try:

                async def created() -> bool:
                    return all(w.opened or w.error for w in watchers)

                took = await until(created, 180, f"{n} etcd watchers", 0.25)
                rss_after = rss_kib(proc.pid)[0]
                failed = [w.error for w in watchers if w.error]
                print(
                    f"etcd: {n:,} watchers of one key created in {took:.1f} s ({len(failed)} "
                    f"failed); etcd RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB: "
                    f"{(rss_after - rss_before) / n:.1f} KiB per watcher"
                )
                value = base64.b64encode(b"1").decode()
                put = json.dumps({"key": key, "value": value}).encode()
                cpu = Cpu(proc.pid)
                sent = time.perf_counter()
                await rawhttp.post(port, "/v3/kv/put", put)

                async def seen() -> bool:
                    return all(w.event_at or w.error for w in watchers)

                await until(seen, FANOUT_TIMEOUT, f"all {n:,} etcd events", 0.02)
                used = cpu.used()
                times = [w.event_at - sent for w in watchers if w.event_at]
                spread = [t - min(times) for t in times]
                p99 = quantile(times, 0.99)
                print(
                    f"etcd: put -> event on each of {len(times):,} watchers: {distribution(times)}; "
                    f"first -> each: {distribution(spread)}; CPU {used}"
                )
                self.figures["etcd put -> event, all N"] = distribution(times)
                self.figures["etcd KiB per watcher"] = f"{(rss_after - rss_before) / n:.1f} KiB"
                gitconf = getattr(self, "gitconf_p99", None)
                if gitconf is not None:
                    self.figures["gitconf p99 / etcd p99"] = (
                        f"{gitconf / p99:.2f}x (hook -> 200 against put -> event); fan-out alone "
                        f"{self.gitconf_spread_p99 / quantile(spread, 0.99):.2f}x"
                    )
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


HOLD_APP = """
held = 0


async def app(scope, proto):
    global held
    if scope.path == "/count":
        proto.response_bytes(200, [("content-type", "text/plain")], str(held).encode())
        return
    held += 1
    try:
        await proto.client_disconnect()
    finally:
        held -= 1
"""


@contextlib.contextmanager
def bare_holder(tmp: Path, n: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A bare RSGI app under granian (one worker, gitconf's loop) that holds every request
    but /count until its client goes; (port, process)."""
    from gitconf.server.commands import event_loop

    (tmp / "hold_app.py").write_text(HOLD_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "rsgi", "--workers", "1",
         "--loop", event_loop().value, "--host", "127.0.0.1", "--port", str(port),
         "--backlog", str(min(n, 65535)), "--backpressure", str(n + 1024),
         "--working-dir", str(tmp), "hold_app:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/count", timeout=1).ok, 20)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def etcd(tmp: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """etcd on free 127.0.0.1 ports with a data dir in tmp; (client port, process). Stopped on
    exit."""
    client, peer = free_port(), free_port()
    log = open(tmp / "etcd.log", "wb")  # noqa: SIM115 - etcd writes to it while it runs
    proc = subprocess.Popen(
        ["etcd", "--name", "bench", "--data-dir", str(tmp / "etcd"),
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
         "--logger", "zap", "--log-level", "warn"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        wait_until(
            lambda: (
                proc.poll() is None
                and requests.get(f"http://127.0.0.1:{client}/health", timeout=2).ok
            ),
            30,
            what=f"etcd: {(tmp / 'etcd.log').read_text()[-2000:]}",
        )
        yield client, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def run_all(args: argparse.Namespace, tmp: Path) -> dict[str, str]:
    """Every part in turn; the figures."""
    run = Run(args, tmp)
    await run.main_server()
    await run.over_limit()
    await run.bare_hold()
    if not args.no_etcd:
        await run.etcd_reference()
    return run.figures


def main() -> None:
    """Parse the arguments, raise the file limit, run everything, print the figures."""
    parser = argparse.ArgumentParser(description="long polls, fan-out and max_waiters vs etcd")
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--over", type=int, default=2_000, help="max_waiters of the second run")
    parser.add_argument("--wait", type=int, default=120, help="?wait= seconds")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--no-sse", action="store_true", help="skip the /v1/watch streams")
    parser.add_argument("--no-etcd", action="store_true", help="skip the etcd reference")
    parser.add_argument("--py-spy", default=None, metavar="PATH", help="py-spy binary")
    parser.add_argument("--wait-quiet", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args()
    for tool in ("wrk", "nginx") + (() if args.no_etcd else ("etcd",)):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed (apt-get install -y wrk nginx-light etcd-server)"
            )
    limit = rawhttp.raise_nofile(2 * args.waiters + 1024)
    if limit < args.waiters + 512:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}: too low for {args.waiters} connections")
    print(f"# bench_waiters on {machine()}")
    print(wait_quiet(args.wait_quiet))
    print(f"RLIMIT_NOFILE {limit}; {args.waiters:,} clients; ?wait={args.wait}")
    try:
        import uvloop
    except ImportError:
        runner: Callable[..., dict[str, str]] = asyncio.run
    else:
        runner = uvloop.run
    with workdir("waiters") as name:
        figures = runner(run_all(args, Path(name)))
    print("\nfigures:")
    for label, value in figures.items():
        print(f"  {label}: {value}")


if __name__ == "__main__":
    main()
