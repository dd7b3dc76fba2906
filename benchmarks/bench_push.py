"""Target 3: push to live. From a signed GitHub push hook to the new config served, and to a
subscriber's webhook received.

    python benchmarks/bench_push.py [--quick] [--repo DIR] [--rounds 15]

A real `gitconf serve` tracks a bare clone of the synthetic repository with a long poll
interval (600 s) and `hooks: {github: {secret: ...}}` in its server.yaml; a receiver
(http.server, threaded, 127.0.0.1) is registered with POST /v1/subscriptions for every
config. Each round commits a one-file change in a work clone (`replicas:` of one service
overlay), `git push`es it, then sends the push hook (X-GitHub-Event: push,
X-Hub-Signature-256: sha256=<hex HMAC of the body>) and, from the moment the hook is sent,
times (a) until GET /v1/config/<env>/<service> answers with the new X-Gitconf-Revision and
value (polled every --interval seconds) and (b) until the receiver gets the
io.gitconf.config.changed event of that revision. Targets: medians <= 150 ms and <= 250 ms.

If the hook endpoint is missing (404), the script says so and measures instead from the
start of `git push` to served with the server polling every 0.05 s, labelled as such.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import synth
from common import add_size_arguments, machine, summary, synthetic_repo, wait_quiet, workdir

from gitconf.testing import git
from gitconf.testing.server import ServeProcess

SECRET = "bench-push-secret-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1 that notes when each event arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.perf_counter()
                self.send_response(204)
                self.end_headers()
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"unreadable": body[:200].decode(errors="replace")}
                with receiver.changed:
                    receiver.events.append((arrived, doc))
                    receiver.changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/config"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, revision: str, subject: str, timeout: float) -> float | None:
        """When the event of revision for subject arrived (perf_counter), or None."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for arrived, doc in self.events:
                    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
                    if data.get("revision") == revision and doc.get("subject") == subject:
                        return arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def hook_body(sha: str, before: str) -> bytes:
    """A GitHub push event body, trimmed to what a push carries that matters here."""
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": sha,
            "created": False,
            "deleted": False,
            "repository": {"full_name": "bench/synthetic", "default_branch": "main"},
            "pusher": {"name": "bench"},
            "head_commit": {"id": sha, "message": "bench"},
        }
    ).encode()


def send_hook(session: requests.Session, url: str, body: bytes) -> requests.Response:
    """POST a signed GitHub push hook."""
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return session.post(
        url + "/v1/hooks/github",
        data=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
        },
        timeout=10,
    )


def wait_served(
    session: requests.Session, url: str, change: synth.Change, interval: float, timeout: float
) -> float | None:
    """perf_counter when GET of the changed config shows the new revision and value."""
    path = f"{url}/v1/config/{change.environment}/{change.service}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = session.get(path, timeout=10)
        seen = time.perf_counter()
        if reply.headers.get("X-Gitconf-Revision") == change.sha:
            value = reply.json().get("replicas")
            if value != change.replicas:
                raise SystemExit(f"{path} serves replicas {value}, expected {change.replicas}")
            return seen
        time.sleep(interval)
    return None


def subscribe(server: ServeProcess, receiver: Receiver) -> tuple[str | None, str]:
    """Register the receiver for every config; (id, what happened)."""
    reply = server.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "name": "bench", "environments": ["*"], "services": ["*"]},
    )
    if reply.status_code == 201:
        return reply.json().get("id"), "registered"
    return None, f"POST /v1/subscriptions answered {reply.status_code}: {reply.text[:200]}"


def probe_hook(server: ServeProcess, session: requests.Session) -> tuple[bool, str]:
    """Whether the GitHub hook endpoint is there (a signed push of another branch: 200)."""
    body = json.dumps({"ref": "refs/heads/bench-probe", "before": "0" * 40, "after": "1" * 40})
    reply = send_hook(session, server.url, body.encode())
    if reply.status_code == 404:
        return False, f"POST /v1/hooks/github answered 404: {reply.text[:300]}"
    return True, f"POST /v1/hooks/github (other branch) answered {reply.status_code}"


def histograms(server: ServeProcess) -> dict[str, tuple[float, float]]:
    """(sum, count) of the server's *_seconds histograms, from /metrics."""
    found: dict[str, list[float]] = {}
    reply = server.get("/metrics")
    if reply.status_code != 200:
        return {}
    for line in reply.text.splitlines():
        for suffix, index in (("_seconds_sum ", 0), ("_seconds_count ", 1)):
            if line.startswith("gitconf_") and suffix in line:
                name = line.split(suffix)[0]
                found.setdefault(name, [0.0, 0.0])[index] = float(line.split()[-1])
    return {name: (total, count) for name, (total, count) in found.items()}


def server_side(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> str:
    """Mean seconds per observation of each histogram between two /metrics readings."""
    parts = []
    for name, (total, count) in after.items():
        total0, count0 = before.get(name, (0.0, 0.0))
        if count > count0:
            parts.append(
                f"{name} {(total - total0) / (count - count0) * 1000:.1f} ms x {count - count0:g}"
            )
    return "server-side means over the rounds (/metrics): " + ("; ".join(parts) or "none")


def ms(value: float | None) -> str:
    """Milliseconds, or a dash."""
    return f"{value * 1000:8.1f}" if value is not None else "       -"


def report(name: str, values: list[float], target_ms: float | None = None) -> str:
    """Median, p90 and best of a list of seconds."""
    if not values:
        return f"{name}: no measurements"
    stats = summary(values)
    line = (
        f"{name}: median {stats['median'] * 1000:.1f} ms, p90 {stats['p90'] * 1000:.1f} ms, "
        f"best {stats['best'] * 1000:.1f} ms ({len(values)} rounds)"
    )
    if target_ms is not None:
        verdict = "meets" if stats["median"] * 1000 <= target_ms else "misses"
        line += f" (target median <= {target_ms:g} ms: {verdict})"
    return line


def rounds_with_hook(
    server: ServeProcess, work: Path, rounds: int, interval: float, receiver: Receiver | None
) -> None:
    """Commit, push, hook; time hook -> served and hook -> webhook received."""
    session = requests.Session()
    targets = synth.overlay_targets(work)
    before = git(work, "rev-parse", "HEAD")
    served: list[float] = []
    received: list[float] = []
    acks: list[float] = []
    pushes: list[float] = []
    metrics_before = histograms(server)
    print("round  push ms   hook ack ms  hook->served ms  hook->webhook ms  file")
    for round_ in range(rounds):
        change = synth.change_one(work, round_, targets)
        started = time.perf_counter()
        git(work, "push", "-q", "origin", "main")
        pushed = time.perf_counter()
        sent = time.perf_counter()
        reply = send_hook(session, server.url, hook_body(change.sha, before))
        acked = time.perf_counter()
        if reply.status_code != 202:
            raise SystemExit(f"the hook answered {reply.status_code}: {reply.text[:300]}")
        seen = wait_served(session, server.url, change, interval, 120)
        if seen is None:
            raise SystemExit(
                f"{change.sha[:12]} was not served within 120 s:\n{server.log()[-2000:]}"
            )
        arrived = None
        if receiver is not None:
            subject = f"{change.environment}/{change.service}"
            arrived = receiver.wait_for(change.sha, subject, 30)
        pushes.append(pushed - started)
        acks.append(acked - sent)
        served.append(seen - sent)
        if arrived is not None:
            received.append(arrived - sent)
        print(
            f"{round_ + 1:>5} {ms(pushed - started)} {ms(acked - sent)}      {ms(seen - sent)}"
            f"         {ms(arrived - sent if arrived else None)}  {change.path}",
            flush=True,
        )
        before = change.sha
    print(server_side(metrics_before, histograms(server)))
    print(report("git push (work clone -> bare origin)", pushes))
    print(report("hook sent -> 202 received", acks))
    print(report("push to live: hook sent -> new config served", served, 150))
    if receiver is not None:
        missing = rounds - len(received)
        print(report("hook sent -> subscriber webhook received", received, 250))
        if missing:
            print(f"  {missing} round(s) had no webhook within 30 s")


def rounds_polling(server: ServeProcess, work: Path, rounds: int, interval: float) -> None:
    """The fallback: time from the start of `git push` to served, the server polling."""
    session = requests.Session()
    targets = synth.overlay_targets(work)
    served: list[float] = []
    print("round  push ms  push->served ms  file")
    for round_ in range(rounds):
        change = synth.change_one(work, round_, targets)
        started = time.perf_counter()
        git(work, "push", "-q", "origin", "main")
        pushed = time.perf_counter()
        seen = wait_served(session, server.url, change, interval, 120)
        if seen is None:
            raise SystemExit(f"{change.sha[:12]} was not served within 120 s")
        served.append(seen - started)
        print(f"{round_ + 1:>5} {ms(pushed - started)} {ms(seen - started)}  {change.path}")
    print(
        report("FALLBACK (no hook endpoint): git push start -> served, poll_interval 0.05", served)
    )


def main() -> None:
    """Set up origin, work clone and server; run the rounds."""
    parser = argparse.ArgumentParser(description="push to live, with a GitHub push hook")
    add_size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--interval", type=float, default=0.002, help="GET poll interval, s")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 5)
    with workdir("push") as name:
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
        print(f"# bench_push on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(
            f"repository: {args.services} services x {args.environments} environments; origin {origin}"
        )
        server = ServeProcess(origin, tmp / "state", poll_interval=600, config=settings)
        started = time.perf_counter()
        server.start(timeout=600)
        print(f"gitconf serve ready in {time.perf_counter() - started:.1f}s")
        receiver = Receiver()
        try:
            has_hook, what = probe_hook(server, requests.Session())
            print(what)
            if has_hook:
                sub_id, how = subscribe(server, receiver)
                print(f"subscriber: {how}" + (f" (id {sub_id})" if sub_id else ""))
                if sub_id is None:
                    print("hook -> webhook received could not be measured yet")
                rounds_with_hook(
                    server, work, args.rounds, args.interval, receiver if sub_id else None
                )
                if sub_id:
                    deliveries = server.get(f"/v1/subscriptions/{sub_id}/deliveries")
                    print(f"GET /v1/subscriptions/{sub_id}/deliveries: {deliveries.status_code}")
            else:
                server.stop()
                print("measuring the fallback instead: git push -> served, poll_interval 0.05")
                server = ServeProcess(origin, tmp / "state2", poll_interval=0.05)
                server.start(timeout=600)
                rounds_polling(server, work, args.rounds, args.interval)
        finally:
            receiver.close()
            code = server.stop()
            if code not in (0, None):
                print(f"gitconf serve exited with {code}; its log:\n{server.log()[-3000:]}")


if __name__ == "__main__":
    main()
