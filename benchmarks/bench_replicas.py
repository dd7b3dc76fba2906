"""Benchmark: the notification fan-out of bench_notify.py, delivered by N replicas.

N real `gitconf serve` processes on one bare repository and one PostgreSQL database, and
--subscribers receivers on 127.0.0.1 in this process, registered through the first replica.
A commit to base/_all.yaml changes every (environment, service) config; it is pushed to the
bare repository and a signed GitHub push hook goes to the first replica, which makes every
replica poll (PostgreSQL NOTIFY). Each replica writes the change set (the outbox's unique key
keeps one row per change) and its delivery worker claims and sends rows. Reports deliveries
per second, the time to the last delivery, which replica sent how many, and checks that each
delivery arrived exactly once, by (subscription, environment, service, revision) and by
webhook-id, every signature verified with the `standardwebhooks` library.

    python benchmarks/bench_replicas.py --replicas 3 [--database-url URL] [--quick]

Without --database-url it creates a fresh database on --admin-url (a local PostgreSQL) and
drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
import yaml
from common import machine, wait_quiet, workdir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.notify.receiver

from bench_notify import repo_files  # noqa: E402

from gitconf.testing import commit_all, git, make_repo, signed_github_push  # noqa: E402
from gitconf.testing.pg import fresh_database  # noqa: E402
from gitconf.testing.server import ServeProcess, wait_until  # noqa: E402
from tests.notify.receiver import Receiver, verify  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOOK_SECRET = "bench-replicas-hook-secret"
DELIVERED = re.compile(r'^gitconf_webhook_deliveries_total\{outcome="delivered"\} (\S+)$', re.M)


def github_hook(replica: ServeProcess, sha: str) -> int:
    """A signed GitHub push hook for main at sha; the status code."""
    body, headers = signed_github_push(HOOK_SECRET, sha)
    return replica.post("/v1/hooks/github", data=body, headers=headers).status_code


def delivered_metric(replica: ServeProcess) -> int:
    """The replica's own count of delivered webhooks (/metrics)."""
    found = DELIVERED.search(replica.get("/metrics").text)
    return int(float(found.group(1))) if found else 0


def outbox_states(database_url: str) -> dict[str, int]:
    """How many deliveries are in each state, read from the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT state, count(*) FROM deliveries GROUP BY state"))
            return {state: n for state, n in rows}
    finally:
        engine.dispose()


def run(args: argparse.Namespace, database_url: str) -> dict[str, float | int | list[int]]:
    """Start the replicas, publish one revision, wait for every delivery; the figures."""
    configs = args.environments * args.services
    expected = configs * args.subscribers
    with workdir("replicas") as tmp:
        work = make_repo(Path(tmp) / "work", repo_files(args.environments, args.services))
        bare = Path(tmp) / "config.git"
        git(Path(tmp), "clone", "-q", "--bare", str(work), str(bare))
        git(work, "remote", "add", "origin", str(bare))
        settings = {
            "database_url": database_url,
            "hooks": {"github": {"secret": HOOK_SECRET}},
            "delivery": {"concurrency": args.concurrency},
        }
        receivers = [Receiver().start() for _ in range(args.subscribers)]
        replicas: list[ServeProcess] = []
        try:
            for i in range(args.replicas):  # one at a time: the first one creates the tables
                config = Path(tmp) / f"r{i}.yaml"
                config.write_text(yaml.safe_dump(settings))
                replica = ServeProcess(bare, Path(tmp) / f"r{i}", poll_interval=600, config=config)
                replicas.append(replica)
                replica.start(timeout=120)
            secrets = []
            for receiver in receivers:
                created = replicas[0].post("/v1/subscriptions", json={"url": receiver.url})
                created.raise_for_status()
                secrets.append(created.json()["secret"])

            sha = commit_all(work, "change every config", {"base/_all.yaml": "generation: 1\n"})
            git(work, "push", "-q", "origin", "main")
            started = time.perf_counter()
            status = github_hook(replicas[-1], sha)
            assert status == 202, f"the hook answered {status}"

            def serves(replica: ServeProcess) -> bool:
                got = replica.get("/v1/config/env-00/svc-000").headers["X-Gitconf-Revision"]
                return bool(got == sha)

            live: list[float] = []
            for replica in replicas:
                wait_until(lambda r=replica: serves(r), 120, 0.005, what=f"{replica.url} live")
                live.append(time.perf_counter() - started)
            wait_until(lambda: any(r.count for r in receivers), 120, 0.001, what="a delivery")
            first_at = time.perf_counter()

            def delivered() -> int:
                return sum(r.ok for r in receivers)

            wait_until(lambda: delivered() >= expected, args.timeout, 0.02, what="all")
            last_at = time.perf_counter()
            settle = time.monotonic() + args.settle  # anything more is a duplicate
            while time.monotonic() < settle:
                time.sleep(0.1)

            seen: Counter[tuple[int, str, str, str]] = Counter()
            ids: Counter[str] = Counter()
            for index, (receiver, secret) in enumerate(zip(receivers, secrets, strict=True)):
                for received in receiver.accepted():
                    event = verify(received, secret)
                    data = event["data"]
                    assert data["revision"] == sha
                    seen[(index, data["environment"], data["service"], data["revision"])] += 1
                    ids[event["id"]] += 1
            per_replica = [delivered_metric(r) for r in replicas]
            states = outbox_states(database_url)
        finally:
            for replica in replicas:
                replica.stop()
                if args.logs is not None:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(replica.log_path, args.logs / replica.log_path.name)
            for receiver in receivers:
                receiver.stop()
    return {
        "configs": configs,
        "expected": expected,
        "live_first": live[0],
        "live_all": max(live),
        "first": first_at - started,
        "last": last_at - started,
        "span": last_at - first_at,
        "per_second": expected / (last_at - first_at),
        "lost": expected - len(seen),
        "dup_key": sum(n - 1 for n in seen.values()),
        "dup_id": sum(n - 1 for n in ids.values()),
        "posts": sum(r.count for r in receivers),
        "per_replica": per_replica,
        "rows": sum(states.values()),
        "rows_delivered": states.get("delivered", 0),
    }


def main() -> int:
    """Run the benchmark; 0 when nothing was lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="an existing, empty database")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="where to create a fresh one")
    parser.add_argument("--environments", type=int, default=10)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=10, help="delivery.concurrency")
    parser.add_argument("--timeout", type=float, default=600.0, help="for all deliveries")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to catch duplicates")
    parser.add_argument("--logs", type=Path, default=None, help="copy the replicas' logs here")
    parser.add_argument("--quick", action="store_true", help="2 x 10 configs, 3 subscribers")
    parser.add_argument("--wait-quiet", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args()
    if args.quick:
        args.environments, args.services, args.subscribers = 2, 10, 3

    print(machine())
    print(wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else "not waiting for idle")
    if args.database_url:
        result = run(args, args.database_url)
    else:
        with fresh_database(args.admin_url, "gitconf_bench_") as url:
            result = run(args, url)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())

    print(f"replicas:                {args.replicas} (one PostgreSQL, one bare repository)")
    print(
        f"configs changed:         {result['configs']} "
        f"({args.environments} environments x {args.services} services)"
    )
    print(f"subscribers:             {args.subscribers} (delivery.concurrency {args.concurrency})")
    print(f"deliveries expected:     {result['expected']}")
    print(f"hook -> first replica live: {result['live_first']:.2f} s")
    print(f"hook -> all replicas live:  {result['live_all']:.2f} s")
    print(f"hook -> first delivery:  {result['first']:.2f} s")
    print(f"first -> last delivery:  {result['span']:.2f} s")
    print(f"hook -> last delivery:   {result['last']:.2f} s")
    print(f"deliveries per second:   {result['per_second']:.0f}")
    print(f"delivered by replica:    {result['per_replica']} (each one's /metrics)")
    print(f"POSTs received:          {result['posts']}")
    print(f"outbox rows:             {result['rows']} ({result['rows_delivered']} delivered)")
    print(f"load average after:      {load}")
    lost, dup_key, dup_id = result["lost"], result["dup_key"], result["dup_id"]
    print(f"lost={lost} duplicated={dup_key} (by key) {dup_id} (by webhook-id)")
    ok = lost == 0 and dup_key == 0 and dup_id == 0 and result["rows"] == result["expected"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
