"""Benchmark: one revision that changes 1,000 configs, matched by 10 subscribers.

A real `gitconf serve` process (the delivery worker in it) and 10 receivers on 127.0.0.1 in
this process. A commit to base/_all.yaml changes every (environment, service) config: 10
environments x 100 services, so 10 subscribers matching `*` get 10,000 deliveries. Reports
deliveries per second and the time to the last one, and checks that each of the 10,000 was
delivered exactly once, every signature verified with the `standardwebhooks` library.

    python benchmarks/bench_notify.py [--environments 10] [--services 100] [--subscribers 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.notify.receiver

from gitconf.testing import commit_all, make_repo  # noqa: E402
from gitconf.testing.server import ServeProcess, wait_until  # noqa: E402
from tests.notify.receiver import Receiver, verify  # noqa: E402


def repo_files(environments: int, services: int) -> dict[str, str | bytes | None]:
    """A repository of environments x services configs, schemas not required."""
    envs = "".join(f"  env-{e:02d}: {{}}\n" for e in range(environments))
    files: dict[str, str | bytes | None] = {
        "gitconf.yaml": f"version: 1\nenvironments:\n{envs}validation:\n  require_schema: false\n",
        "base/_all.yaml": "generation: 0\nlog_level: info\n",
    }
    for s in range(services):
        files[f"base/svc-{s:03d}.yaml"] = f"name: svc-{s:03d}\ndb:\n  pool: {{max: {s + 1}}}\n"
    return files


def main() -> int:
    """Run the benchmark; 0 when nothing was lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=10)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    configs = args.environments * args.services
    expected = configs * args.subscribers

    with tempfile.TemporaryDirectory(prefix="gitconf-bench-") as tmp:
        work = Path(tmp)
        repo = make_repo(work / "config", repo_files(args.environments, args.services))
        settings = work / "server.yaml"
        settings.write_text(f"delivery: {{concurrency: {args.concurrency}}}\n")
        receivers = [Receiver().start() for _ in range(args.subscribers)]
        server = ServeProcess(repo, work / "state", config=settings, poll_interval=0.1)
        try:
            server.start(timeout=120)
            secrets = []
            for receiver in receivers:
                created = server.post("/v1/subscriptions", json={"url": receiver.url})
                created.raise_for_status()
                secrets.append(created.json()["secret"])

            started = time.perf_counter()
            sha = commit_all(repo, "change every config", {"base/_all.yaml": "generation: 1\n"})

            def published() -> bool:
                revision = server.get("/v1/config/env-00/svc-000").headers["X-Gitconf-Revision"]
                return bool(revision == sha)

            wait_until(published, timeout=120, interval=0.005, what="the publish")
            live = time.perf_counter()

            def first() -> bool:
                return any(r.count for r in receivers)

            wait_until(first, timeout=120, interval=0.001, what="the first delivery")
            first_at = time.perf_counter()

            def delivered() -> int:
                return sum(r.ok for r in receivers)

            wait_until(lambda: delivered() >= expected, timeout=600, interval=0.02, what="all")
            last_at = time.perf_counter()
            settle = time.monotonic() + 2  # anything more that arrives is a duplicate
            while time.monotonic() < settle:
                time.sleep(0.1)

            seen: Counter[tuple[int, str]] = Counter()
            ids: Counter[str] = Counter()
            for index, (receiver, secret) in enumerate(zip(receivers, secrets, strict=True)):
                for received in receiver.accepted():
                    event = verify(received, secret)
                    assert event["data"]["revision"] == sha
                    seen[(index, event["subject"])] += 1
                    ids[event["id"]] += 1
            lost = expected - len(seen)
            duplicated = sum(n - 1 for n in seen.values()) + sum(n - 1 for n in ids.values())
            attempts = sum(r.count for r in receivers)
        finally:
            server.stop()
            for receiver in receivers:
                receiver.stop()

    span = last_at - first_at
    print(
        f"configs changed:         {configs} ({args.environments} environments x {args.services} services)"
    )
    print(f"subscribers:             {args.subscribers} (delivery.concurrency {args.concurrency})")
    print(f"deliveries expected:     {expected}")
    print(f"commit -> published:     {live - started:.2f} s (poll, compile, publish)")
    print(f"published -> first:      {first_at - live:.2f} s (change set, outbox write)")
    print(f"first -> last delivery:  {span:.2f} s")
    print(f"commit -> last delivery: {last_at - started:.2f} s")
    print(f"deliveries per second:   {expected / span:.0f}")
    print(f"POSTs received:          {attempts}")
    print(f"lost={lost} duplicated={duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
