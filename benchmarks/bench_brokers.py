"""Issue 18: from a signed GitHub push hook to the message consumed from each broker.

    python benchmarks/bench_brokers.py [--quick] [--repo DIR] [--rounds 20]
        [--amqp-url amqp://guest:guest@127.0.0.1:5672/] [--nats-url nats://127.0.0.1:4222]

A real `gitconf serve` tracks a bare clone of the synthetic repository with a long poll
interval (600 s) and `hooks: {github: {secret: ...}}`, as in bench_push.py, and has three
brokers: Spring Cloud Bus on RabbitMQ (a topic exchange of its own, which a consumer binds
with `#` as a Spring app's queue is), CloudEvents on RabbitMQ (another exchange, bound the
same way) and CloudEvents on NATS JetStream (a stream of its own that captures the subject,
read by a push consumer). Each broker is limited to the one service overlay the rounds
change, so each round makes one message per broker. Each round commits a `replicas:` change
in a work clone, `git push`es it, sends the push hook and, from the moment the hook is
sent, times until each consumer has taken that round's message off its broker (arrival in
the consumer's callback). Target: median under 150 ms for each broker.

The URLs default to GITCONF_TEST_AMQP_URL and GITCONF_TEST_NATS_URL, else the local
servers. Exchanges and the stream are named with a uuid and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import pika
import requests
import synth
import yaml
from bench_push import SECRET, hook_body, report, send_hook
from common import add_size_arguments, machine, synthetic_repo, wait_quiet, workdir
from nats.aio.msg import Msg

from gitconf.testing import git
from gitconf.testing.server import ServeProcess, wait_until


class RabbitListener:
    """A queue bound with `#` to a topic exchange, consumed on a thread of its own."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.arrived: list[tuple[float, str | None, bytes]] = []
        self.changed = threading.Condition()
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = self.connection.channel()
        # As Spring Cloud Stream's binder declares springCloudBus: durable topic.
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange, "#")
        channel.basic_consume(queue, self._on_message, auto_ack=True)
        self.channel = channel
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_message(self, _channel: Any, _method: Any, props: Any, body: bytes) -> None:
        with self.changed:
            self.arrived.append((time.perf_counter(), props.message_id, body))
            self.changed.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.connection.process_data_events(time_limit=0.05)

    def wait_count(self, count: int, timeout: float) -> float | None:
        """perf_counter when the count-th message arrived, or None."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.arrived) >= count, timeout):
                return None
            return self.arrived[count - 1][0]

    def close(self) -> None:
        """Stop consuming and delete the exchange."""
        self._stop.set()
        self.thread.join(5)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


class JetStreamListener:
    """A stream of its own capturing a subject of its own, read by a push consumer."""

    def __init__(self, url: str) -> None:
        self.subject = f"gitconf.bench.{uuid.uuid4().hex[:12]}"
        self.stream = f"GITCONF_BENCH_{uuid.uuid4().hex[:12]}"
        self.arrived: list[tuple[float, dict[str, Any]]] = []
        self.changed = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nc = self._run(nats.connect(url))
        self.js = self.nc.jetstream()
        self._run(self.js.add_stream(name=self.stream, subjects=[self.subject]))
        self._run(self.js.subscribe(self.subject, cb=self._on_message, ordered_consumer=True))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _on_message(self, msg: Msg) -> None:
        arrived = time.perf_counter()
        with self.changed:
            self.arrived.append((arrived, json.loads(msg.data)))
            self.changed.notify_all()

    def wait_revision(self, revision: str, timeout: float) -> float | None:
        """perf_counter when the event of revision arrived, or None."""
        with self.changed:
            found: list[float] = []

            def seen() -> bool:
                found[:] = [t for t, data in self.arrived if data.get("revision") == revision]
                return bool(found)

            if not self.changed.wait_for(seen, timeout):
                return None
            return found[0]

    async def _shutdown(self) -> None:
        await self.js.delete_stream(self.stream)
        await self.nc.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:  # the consumer's own (flow control, heartbeats)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Delete the stream, disconnect."""
        self._run(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def main() -> None:
    """Set up origin, work clone, consumers and server; run the rounds."""
    parser = argparse.ArgumentParser(description="push hook -> message consumed from a broker")
    add_size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("GITCONF_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument(
        "--nats-url", default=os.environ.get("GITCONF_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args()
    with workdir("brokers") as name:
        tmp = Path(name)
        source = synthetic_repo(args, tmp)
        origin = tmp / "origin.git"
        git(tmp, "clone", "-q", "--bare", str(source), str(origin))
        work = tmp / "work"
        git(tmp, "clone", "-q", str(origin), str(work))
        print(f"# bench_brokers on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {args.services} services x {args.environments} environments")
        target = synth.overlay_targets(work)[0]
        _, env, file_name = target.split("/")
        service = file_name.removesuffix(".yaml")
        bus = RabbitListener(args.amqp_url, f"gitconf-bench-bus-{uuid.uuid4().hex[:12]}")
        events = RabbitListener(args.amqp_url, f"gitconf-bench-ce-{uuid.uuid4().hex[:12]}")
        stream = JetStreamListener(args.nats_url)
        only = {"environments": [env], "services": [service]}
        settings = {
            "repo": str(origin),
            "hooks": {"github": {"secret": SECRET}},
            "log_level": "warning",
            "brokers": [
                {"name": "bus", "kind": "amqp", "format": "spring-bus", "url_env": "BENCH_AMQP_URL",
                 "exchange": bus.exchange, "services": [service]},
                {"name": "amqp-events", "kind": "amqp", "format": "cloudevents",
                 "url_env": "BENCH_AMQP_URL", "exchange": events.exchange, **only},
                {"name": "nats-events", "kind": "nats", "format": "cloudevents",
                 "url": args.nats_url, "subject": stream.subject, **only},
            ],
        }  # fmt: skip
        config = tmp / "server.yaml"
        config.write_text(yaml.safe_dump(settings))
        server = ServeProcess(
            origin,
            tmp / "state",
            poll_interval=600,
            config=config,
            env={"BENCH_AMQP_URL": args.amqp_url},
        )
        started = time.perf_counter()
        server.start(timeout=600)
        print(f"gitconf serve ready in {time.perf_counter() - started:.1f}s")
        print(f"brokers limited to {env}/{service}: spring-bus, cloudevents on AMQP and NATS")
        session = requests.Session()
        times: dict[str, list[float]] = {"bus": [], "amqp": [], "nats": []}
        try:
            before = git(work, "rev-parse", "HEAD")
            print("round  hook->spring-bus ms  hook->amqp cloudevent ms  hook->jetstream ms")
            for round_ in range(args.rounds):
                change = synth.change_one(work, round_, [target])
                git(work, "push", "-q", "origin", "main")
                sent = time.perf_counter()
                reply = send_hook(session, server.url, hook_body(change.sha, before))
                if reply.status_code != 202:
                    raise SystemExit(f"the hook answered {reply.status_code}: {reply.text[:300]}")
                arrived = {
                    "bus": bus.wait_count(round_ + 1, 30),
                    "amqp": events.wait_count(round_ + 1, 30),
                    "nats": stream.wait_revision(change.sha, 30),
                }
                missing = [k for k, v in arrived.items() if v is None]
                if missing:
                    raise SystemExit(f"round {round_ + 1}: nothing from {missing} within 30 s")
                for key, value in arrived.items():
                    assert value is not None
                    times[key].append(value - sent)
                print(
                    f"{round_ + 1:>5} {times['bus'][-1] * 1000:20.1f}"
                    f" {times['amqp'][-1] * 1000:25.1f} {times['nats'][-1] * 1000:19.1f}",
                    flush=True,
                )
                before = change.sha
            body = json.loads(bus.arrived[-1][2])
            print(f"last spring-bus event: {json.dumps(body)}")
            print(
                report(
                    "hook sent -> RefreshRemoteApplicationEvent consumed (RabbitMQ)",
                    times["bus"],
                    150,
                )
            )
            print(report("hook sent -> CloudEvent consumed (RabbitMQ)", times["amqp"], 150))
            print(report("hook sent -> CloudEvent consumed (NATS JetStream)", times["nats"], 150))
            brokers = wait_until(
                lambda: [
                    b
                    for b in server.get("/v1/status").json()["notifications"]["brokers"]
                    if b["delivered"] == args.rounds
                ],
                10,
                what="/v1/status counting the deliveries",
            )
            for doc in brokers:
                print(f"{doc['name']}: delivered {doc['delivered']}, pending {doc['pending']}")
        finally:
            server.stop()
            bus.close()
            events.close()
            stream.close()


if __name__ == "__main__":
    main()
