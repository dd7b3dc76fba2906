"""The agent's end to end: from a signed GitHub push hook to the rendered file rewritten and
the reload command run by `gitconf agent`.

    python benchmarks/bench_agent.py [--quick] [--repo DIR] [--rounds 10]

A real `gitconf serve` tracks a bare clone of the synthetic repository with a long poll
interval (600 s) and `hooks: {github: {secret: ...}}`, as in bench_push.py; a real
`gitconf agent` process renders one service overlay's config to a JSON file with
`wait: {min: 0, max: 0}` (no coalescing delay) and `reload_cmd: date +%s.%N >> <log>`. Each
round commits a `replicas:` change to that overlay in a work clone, `git push`es it, sends
the push hook and, from the moment the hook is sent, times (a) until the JSON file holds
the new value (polled every --interval seconds) and (b) until the reload command ran (the
wall-clock stamp it appended). Target: median of (b) under 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import synth
import yaml
from bench_push import SECRET, hook_body, report, send_hook
from common import add_size_arguments, machine, synthetic_repo, wait_quiet, workdir

from gitconf.testing import git
from gitconf.testing.server import ServeProcess


def replicas_in(path: Path) -> int | None:
    """The replicas value of the rendered file, None while it is missing or half-read."""
    try:
        value = json.loads(path.read_bytes()).get("replicas")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) else None


def stamps(path: Path) -> list[float]:
    """The wall-clock times the reload command wrote."""
    try:
        return [float(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return []


def wait_for(condition: object, timeout: float, interval: float) -> float | None:
    """time.time() when condition() first held, or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return time.time()
        time.sleep(interval)
    return None


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`gitconf agent --config config`, logging to log."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gitconf", "agent", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def main() -> None:
    """Set up origin, work clone, server and agent; run the rounds."""
    parser = argparse.ArgumentParser(description="push hook -> agent file rewritten and reloaded")
    add_size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.001, help="file poll interval, s")
    args = parser.parse_args()
    with workdir("agent") as name:
        tmp = Path(name)
        source = synthetic_repo(args, tmp)
        origin = tmp / "origin.git"
        git(tmp, "clone", "-q", "--bare", str(source), str(origin))
        work = tmp / "work"
        git(tmp, "clone", "-q", str(origin), str(work))
        settings = tmp / "server.yaml"
        settings.write_text(
            f"repo: {origin}\nhooks:\n  github:\n    secret: {SECRET}\nlog_level: warning\n"
        )
        print(f"# bench_agent on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {args.services} services x {args.environments} environments")
        target = synth.overlay_targets(work)[0]
        _, env, file_name = target.split("/")
        service = file_name.removesuffix(".yaml")
        rendered, reloads = tmp / "out" / f"{service}.json", tmp / "reloads.txt"
        agent_config = tmp / "agent.yaml"
        agent_config.write_text(
            yaml.safe_dump(
                {
                    "wait": {"min": 0, "max": 0},
                    "cache_dir": str(tmp / "agent-cache"),
                    "log_level": "warning",
                    "files": [
                        {
                            "environment": env,
                            "service": service,
                            "destination": str(rendered),
                            "reload_cmd": f"date +%s.%N >> {reloads}",
                        }
                    ],
                }
            )
        )
        server = ServeProcess(origin, tmp / "state", poll_interval=600, config=settings)
        started = time.perf_counter()
        server.start(timeout=600)
        print(f"gitconf serve ready in {time.perf_counter() - started:.1f}s")
        agent_config.write_text(f"server: {server.url}\n" + agent_config.read_text())
        agent = start_agent(agent_config, tmp / "agent.log")
        session = requests.Session()
        try:
            if wait_for(lambda: stamps(reloads), 60, 0.01) is None:
                raise SystemExit(f"the agent wrote nothing:\n{(tmp / 'agent.log').read_text()}")
            print(f"agent renders {env}/{service} to {rendered.name}")
            before = git(work, "rev-parse", "HEAD")
            rewritten: list[float] = []
            reloaded: list[float] = []
            pushes: list[float] = []
            print("round  push ms  hook->file ms  hook->reload ms")
            for round_ in range(args.rounds):
                seen = len(stamps(reloads))
                change = synth.change_one(work, round_, [target])
                pushed_at = time.perf_counter()
                git(work, "push", "-q", "origin", "main")
                pushes.append(time.perf_counter() - pushed_at)
                sent = time.time()
                reply = send_hook(session, server.url, hook_body(change.sha, before))
                if reply.status_code != 202:
                    raise SystemExit(f"the hook answered {reply.status_code}: {reply.text[:300]}")
                written = wait_for(
                    lambda change=change: replicas_in(rendered) == change.replicas,
                    30,
                    args.interval,
                )
                ran = wait_for(lambda seen=seen: len(stamps(reloads)) > seen, 30, args.interval)
                if written is None or ran is None:
                    log = (tmp / "agent.log").read_text()
                    raise SystemExit(f"round {round_ + 1}: no rewrite/reload within 30 s:\n{log}")
                rewritten.append(written - sent)
                reloaded.append(stamps(reloads)[seen] - sent)
                print(
                    f"{round_ + 1:>5} {pushes[-1] * 1000:8.1f} {rewritten[-1] * 1000:14.1f}"
                    f" {reloaded[-1] * 1000:16.1f}",
                    flush=True,
                )
                before = change.sha
            print(report("git push (work clone -> bare origin)", pushes))
            print(report("hook sent -> file rewritten by the agent", rewritten))
            print(report("hook sent -> reload_cmd run by the agent", reloaded, 250))
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                code = agent.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
                code = None
            print(f"agent stopped on SIGTERM with exit code {code}")
            server.stop()


if __name__ == "__main__":
    main()
