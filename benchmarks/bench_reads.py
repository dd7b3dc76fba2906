"""Targets 4, 5 and 6: config reads against nginx serving the same bytes, 304s, server memory.

    python benchmarks/bench_reads.py [--quick] [--repo DIR] [--duration 4] [--rounds 3]

Starts a real `gitconf serve` (granian, one worker) on the synthetic repository (--quick: a
copy of sample-repo/), fetches one config, writes the same bytes to a file under the same
URL path for nginx (one worker process, `daemon off`, access_log off, a config generated in
a temporary folder, 127.0.0.1 on a free port), then runs `wrk -t1 -c32 -d4s` against:
nginx; gitconf (200); gitconf with If-None-Match (304, via a wrk Lua script); nginx with its
own ETag (304). Each is warmed up for a second first; --rounds repeats the sequence and the
median is reported. Targets: gitconf >= 0.6x nginx; gitconf's 304 >= its 200.

Also reports the server's memory holding the repository: VmRSS (and peak VmHWM) of the
`gitconf serve` process and its granian worker, after start and after the load.

Needs wrk and nginx: `apt-get install -y nginx-light wrk` (Debian/Ubuntu; or `nginx wrk`),
`dnf install nginx wrk`, `brew install nginx wrk`.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import requests
from common import (
    add_size_arguments,
    children,
    machine,
    rss_kib,
    synthetic_repo,
    wait_quiet,
    workdir,
)

from gitconf.testing import commit_all, git
from gitconf.testing.server import ServeProcess, free_port, wait_until

INSTALL = "apt-get install -y nginx-light wrk   (or: apt-get install -y nginx wrk)"
SAMPLE_REPO = Path(__file__).resolve().parents[1] / "sample-repo"

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/nginx-body;
    types {{ }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


class WrkResult(NamedTuple):
    """What one wrk run reported."""

    rps: float
    p50: str
    p99: str
    requests: int
    bad: int  # non-2xx/3xx responses plus socket errors


def run_wrk(
    url: str, seconds: float, script: Path | None = None, connections: int = 32
) -> WrkResult:
    """wrk -t1 -c<connections> (32) against url for seconds (bounded by a timeout)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "2s"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return WrkResult(
        float(rps.group(1)),
        p50.group(1) if p50 else "?",
        p99.group(1) if p99 else "?",
        int(total.group(1)) if total else 0,
        bad,
    )


def header_script(path: Path, name: str, value: str) -> Path:
    """A wrk Lua script that sends one more request header."""
    path.write_text(f"wrk.headers[{name!r}] = {value!r}\n")
    return path


@contextlib.contextmanager
def nginx(tmp: Path, root: Path) -> Iterator[str]:
    """nginx serving root on a free 127.0.0.1 port, stopped on exit; yields its base URL."""
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    # When run as root, the worker runs as nobody: it must be able to reach the files.
    for folder in [tmp, *(p for p in root.rglob("*") if p.is_dir()), root]:
        folder.chmod(0o755)
    log = open(tmp / "nginx.out", "wb")  # noqa: SIM115 - nginx writes to it while it runs
    proc = subprocess.Popen(
        ["nginx", "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: proc.poll() is None and requests.get(url, timeout=2).status_code < 500,
            10,
            what=f"nginx on {url}: {(tmp / 'nginx.out').read_text()}",
        )
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def sample_repository(tmp: Path) -> Path:
    """A Git repository holding a copy of sample-repo/."""
    repo = tmp / "repo"
    shutil.copytree(SAMPLE_REPO, repo)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "sample repository")
    return repo


def memory(server: ServeProcess) -> str:
    """VmRSS (VmHWM) of the serve process and its worker(s), in MiB."""
    assert server.proc is not None
    parent = server.proc.pid
    rows = [("serve (granian main)", parent)] + [("worker", pid) for pid in children(parent)]
    parts = []
    total = 0
    for name, pid in rows:
        rss, hwm = rss_kib(pid)
        total += rss
        parts.append(f"{name} pid {pid}: {rss / 1024:.0f} MiB (peak {hwm / 1024:.0f})")
    return "; ".join(parts) + f"; sum {total / 1024:.0f} MiB"


BARE_APP = """
BODY = open({path!r}, "rb").read()
HEADERS = {headers!r}


async def app(scope, proto):
    proto.response_bytes(200, HEADERS, BODY)
"""


@contextlib.contextmanager
def bare_granian(tmp: Path, body: bytes, headers: list[tuple[str, str]]) -> Iterator[str]:
    """The same bytes from a bare RSGI app under granian, on the event loop gitconf uses:
    the ceiling of a Python app on this server, to read gitconf's own cost against."""
    from gitconf.server.commands import event_loop

    (tmp / "bare-body").write_bytes(body)
    (tmp / "bare_app.py").write_text(BARE_APP.format(path=str(tmp / "bare-body"), headers=headers))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "rsgi", "--workers", "1",
         "--loop", event_loop().value, "--host", "127.0.0.1", "--port", str(port),
         "--working-dir", str(tmp), "bare_app:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(url + "/", timeout=1).ok, 20)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def main() -> None:
    """Serve, copy one body to nginx, load both with wrk, print req/s and ratios."""
    parser = argparse.ArgumentParser(description="gitconf reads vs nginx, with wrk")
    add_size_arguments(parser)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of the whole sequence")
    parser.add_argument("--env", default=None)
    parser.add_argument("--service", default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(f"wrk is not installed; install it (and nginx) with:\n  {INSTALL}")
        return
    has_nginx = shutil.which("nginx") is not None
    if not has_nginx:
        print(f"nginx is not installed, so no ratio; install it with:\n  {INSTALL}")
    if args.quick:
        args.rounds = 1
    with workdir("reads") as name:
        tmp = Path(name)
        if args.quick and args.repo is None:
            repo = sample_repository(tmp)
            env, service = args.env or "production", args.service or "payments"
        else:
            repo = synthetic_repo(args, tmp, mutable=False)
            env, service = args.env or "production", args.service or "svc-0001"
        print(f"# bench_reads on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {repo}")
        started = time.perf_counter()
        server = ServeProcess(repo, tmp / "state", poll_interval=600)
        server.start(timeout=600)
        print(
            f"gitconf serve ready (clone + full compile + publish) in {time.perf_counter() - started:.1f}s"
        )
        try:
            print(f"memory after start: {memory(server)}")
            path = f"/v1/config/{env}/{service}"
            reply = server.get(path)
            reply.raise_for_status()
            body, etag = reply.content, reply.headers["ETag"]
            revalidated = server.get(path, headers={"If-None-Match": etag})
            assert revalidated.status_code == 304, revalidated.status_code
            print(
                f"GET {path}: {len(body)} bytes, ETag {etag}, "
                f"headers {sorted(reply.headers)}; with If-None-Match: 304"
            )
            scripts = {"gitconf 304": header_script(tmp / "inm.lua", "If-None-Match", etag)}
            targets = {"gitconf 200": (server.url + path, None)}
            targets["gitconf 304"] = (server.url + path, scripts["gitconf 304"])
            with contextlib.ExitStack() as stack:
                same_headers = [
                    (k, v)
                    for k, v in reply.headers.items()
                    if k.lower() not in ("date", "server", "content-length")
                ]
                bare = stack.enter_context(bare_granian(tmp, body, same_headers))
                targets["bare granian 200"] = (bare + path, None)
                if has_nginx:
                    root = tmp / "www"
                    (root / path.lstrip("/")).parent.mkdir(parents=True)
                    (root / path.lstrip("/")).write_bytes(body)
                    base = stack.enter_context(nginx(tmp, root))
                    served = requests.get(base + path, timeout=5)
                    assert served.content == body, "nginx serves other bytes"
                    nginx_etag = served.headers["ETag"]
                    script = header_script(tmp / "inm-nginx.lua", "If-None-Match", nginx_etag)
                    assert (
                        requests.get(
                            base + path, headers={"If-None-Match": nginx_etag}, timeout=5
                        ).status_code
                        == 304
                    )
                    targets = {
                        "nginx 200": (base + path, None),
                        **targets,
                        "nginx 304": (base + path, script),
                    }
                results: dict[str, list[WrkResult]] = {name: [] for name in targets}
                for round_ in range(args.rounds):
                    for label, (url, script) in targets.items():
                        run_wrk(url, 1.0, script)  # warm-up
                        result = run_wrk(url, args.duration, script)
                        results[label].append(result)
                        print(
                            f"  round {round_ + 1}: {label:<16} {result.rps:>10,.0f} req/s  "
                            f"p50 {result.p50:>8}  p99 {result.p99:>8}  "
                            f"({result.requests:,} requests, {result.bad} bad)",
                            flush=True,
                        )
            rps = {label: statistics.median(r.rps for r in runs) for label, runs in results.items()}
            print(f"wrk -t1 -c32 -d{args.duration:g}s, median of {args.rounds} round(s):")
            for label, value in rps.items():
                print(f"    {label:<16} {value:>10,.0f} req/s")
            # Ratios are taken within a round (same noise), then the median across rounds.
            ratios = [
                ("gitconf/nginx (200)", "gitconf 200", "nginx 200", 0.6),
                ("gitconf/nginx (304)", "gitconf 304", "nginx 304", None),
                ("gitconf 304/200", "gitconf 304", "gitconf 200", 1.0),
                ("gitconf/bare granian (200)", "gitconf 200", "bare granian 200", None),
                ("bare granian/nginx (200)", "bare granian 200", "nginx 200", None),
            ]
            for name, top, bottom, target in ratios:
                if top not in results or bottom not in results:
                    continue
                each = [a.rps / b.rps for a, b in zip(results[top], results[bottom], strict=True)]
                ratio = statistics.median(each)
                line = f"ratio {name}: {ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in each)})"
                if target is not None:
                    line += f" (target >= {target}x: {'meets' if ratio >= target else 'misses'})"
                print(line)
            print(f"memory after the load: {memory(server)}")
        finally:
            code = server.stop()
            if code not in (0, None):
                print(f"gitconf serve exited with {code}; its log:\n{server.log()[-3000:]}")


if __name__ == "__main__":
    sys.exit(main())
