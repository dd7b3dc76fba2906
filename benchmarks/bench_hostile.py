"""Plain reads while a hostile commit compiles: a schema pattern that backtracks for ~30 s.

The compile runs in the compile worker (idle scheduling class, its own process), so reads
should keep their speed. Side by side in one run: wrk against a config read with the worker
idle, then the same while the worker compiles the hostile commit (checked to be still
compiling when wrk ends), then idle again. Target: during / idle >= 0.8.

    python benchmarks/bench_hostile.py [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reads import INSTALL, WrkResult, run_wrk, sample_repository
from common import machine, wait_quiet, workdir

from gitconf.testing import commit_all
from gitconf.testing.server import ServeProcess, wait_until

REDOS_SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}
}
"""


def compiling(server: ServeProcess) -> bool:
    """Whether the poll has seen a head it has not decided on yet (the worker is busy)."""
    status = server.get("/v1/status").json()
    return status["poll"]["branch_head"] != status["revision"] and not any(
        r["revision"] == status["poll"]["branch_head"] for r in status["rejected"]
    )


def main() -> None:
    """Reads idle, during a hostile compile, idle again; print req/s and the ratio."""
    parser = argparse.ArgumentParser(description="reads during a hostile compile")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--a", type=int, default=30, help="length of the backtracking input")
    parser.add_argument("--wait-quiet", type=float, default=60.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(f"wrk is not installed; install it with:\n  {INSTALL}")
        return
    with workdir("hostile") as name:
        tmp = Path(name)
        repo = sample_repository(tmp)
        config = tmp / "server.yaml"
        config.write_text("compile: {timeout: 40}\n")
        print(f"# bench_hostile on {machine()}")
        print(wait_quiet(args.wait_quiet))
        server = ServeProcess(repo, tmp / "state", poll_interval=0.5, config=config)
        server.start(timeout=120)
        url = server.url + "/v1/config/production/payments"
        idle: list[WrkResult] = []
        during: list[WrkResult] = []
        try:
            for round_ in range(args.rounds):
                run_wrk(url, 1.0)
                idle.append(run_wrk(url, args.duration))
                started = time.perf_counter()
                commit_all(
                    repo,
                    f"hostile {round_}",
                    {
                        "schemas/hostile.schema.json": REDOS_SCHEMA,
                        "base/hostile.yaml": f"name: {'a' * args.a}!\n",
                        # A new blob each round, so each compile is a new one.
                        "base/_all.yaml": (repo / "base" / "_all.yaml").read_text()
                        + f"# round {round_}\n",
                    },
                )
                wait_until(lambda: compiling(server), timeout=30, what="the compile to start")
                result = run_wrk(url, args.duration)
                still = compiling(server)
                during.append(result)
                print(
                    f"  round {round_ + 1}: idle {idle[-1].rps:>9,.0f} req/s (p99 {idle[-1].p99}); "
                    f"during the compile {result.rps:>9,.0f} req/s (p99 {result.p99}, "
                    f"{result.bad} bad); still compiling at the end: {still}",
                    flush=True,
                )
                if not still:
                    print("  (the compile ended before wrk did: raise --a)")
                wait_until(
                    lambda: not compiling(server), timeout=600, what="the hostile compile to end"
                )
                print(f"    rejected after {time.perf_counter() - started:.1f}s")
        finally:
            server.stop()
            print(f"server log tail:\n{server.log()[-1500:]}")
        ratios = [d.rps / i.rps for d, i in zip(during, idle, strict=True)]
        print(
            f"reads during a hostile compile / idle: median {statistics.median(ratios):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}x' for r in ratios)}); target >= 0.8x"
        )


if __name__ == "__main__":
    main()
