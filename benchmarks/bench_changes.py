"""The change API end to end: from `POST /v1/changes` sent to the new value served.

    python benchmarks/bench_changes.py [--quick] [--repo DIR] [--rounds 20]

A real `gitconf serve` tracks a bare clone of the synthetic repository (1,000 services x 5
environments by default) with a long poll interval (600 s): nothing but the change itself
makes it poll. Each round reads one service overlay's config (its X-Gitconf-Revision is the
change's base), POSTs a change of its `replicas:` and, from the moment the POST is sent,
times (a) the reply (the edit, the compile in the worker, the commit and the push to the
bare origin) and (b) until a GET of that config serves the new commit with the new value
(polled every --interval seconds). Rounds stride through the overlays so each touches
another file and environment. Target: median of (b) under 300 ms.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import requests
import synth
from bench_push import report
from common import add_size_arguments, machine, synthetic_repo, wait_quiet, workdir

from gitconf.testing import git
from gitconf.testing.server import ServeProcess


def wait_value(
    session: requests.Session, url: str, sha: str, replicas: int, interval: float, timeout: float
) -> float | None:
    """perf_counter when url serves commit sha with `replicas: <replicas>`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = session.get(url, timeout=10)
        seen = time.perf_counter()
        if reply.headers.get("X-Gitconf-Revision") == sha:
            value = reply.json().get("replicas")
            if value != replicas:
                raise SystemExit(f"{url} serves replicas {value}, expected {replicas}")
            return seen
        time.sleep(interval)
    return None


def main() -> None:
    """Set up origin and server; run the rounds."""
    parser = argparse.ArgumentParser(description="POST /v1/changes -> new value served")
    add_size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.001, help="GET poll interval, s")
    args = parser.parse_args()
    with workdir("changes") as name:
        tmp = Path(name)
        source = synthetic_repo(args, tmp, mutable=False)
        origin = tmp / "origin.git"
        git(tmp, "clone", "-q", "--bare", str(source), str(origin))
        targets = synth.overlay_targets(source)
        settings = tmp / "server.yaml"
        settings.write_text(f"repo: {origin}\nlog_level: warning\n")
        print(f"# bench_changes on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {args.services} services x {args.environments} environments")
        server = ServeProcess(origin, tmp / "state", poll_interval=600, config=settings)
        started = time.perf_counter()
        server.start(timeout=600)
        print(f"gitconf serve ready in {time.perf_counter() - started:.1f}s")
        session = requests.Session()
        replies: list[float] = []
        served: list[float] = []
        try:
            print("round  file                                      reply ms  served ms")
            for round_ in range(args.rounds):
                path = targets[(round_ * 7919) % len(targets)]
                _, env, file_name = path.split("/")
                service = file_name.removesuffix(".yaml")
                url = f"{server.url}/v1/config/{env}/{service}"
                current = session.get(url, timeout=10)
                base = current.headers["X-Gitconf-Revision"]
                replicas = int(current.json()["replicas"]) % 100 + 1
                body = {
                    "base": base,
                    "edits": [
                        {"environment": env, "service": service, "set": {"replicas": replicas}}
                    ],
                }
                sent = time.perf_counter()
                reply = session.post(f"{server.url}/v1/changes", json=body, timeout=120)
                answered = time.perf_counter()
                if reply.status_code != 201:
                    raise SystemExit(f"round {round_ + 1}: {reply.status_code} {reply.text[:500]}")
                sha = reply.json()["commit"]
                seen = wait_value(session, url, sha, replicas, args.interval, 30)
                if seen is None:
                    raise SystemExit(f"round {round_ + 1}: {sha[:12]} not served within 30 s")
                replies.append(answered - sent)
                served.append(seen - sent)
                print(
                    f"{round_ + 1:>5}  {path:<40} {replies[-1] * 1000:9.1f} {served[-1] * 1000:10.1f}",
                    flush=True,
                )
            print(report("POST /v1/changes -> 201 (edit, compile, commit, push)", replies))
            print(report("POST /v1/changes sent -> new value served", served, 300))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
