"""The `brokers:` of server.yaml as values, with their defaults; URLs shown without secrets. Pure.

A broker's URL may hold a user and password (`amqp://user:secret@host/vhost`), so it is given
inline (`url`) or, better, in a variable of the server's environment (`url_env`), and it is
only ever shown through `redact`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from gitconf.brokers import spring_bus

__all__ = ["PREFIX", "BrokerSpec", "check", "check_settings", "from_settings", "redact"]

PREFIX = "brk_"  # the id of a broker's subscription: brk_<name>
CLOUDEVENTS_EXCHANGE = "gitconf"
DEFAULT_SUBJECT = "gitconf.config.changed"
# The routing key of a CloudEvent on AMQP: its type, so a queue can bind `io.gitconf.#`.
CLOUDEVENTS_ROUTING_KEY = "io.gitconf.config.changed"
SCHEMES = {"amqp": ("amqp", "amqps"), "nats": ("nats", "tls", "ws", "wss")}


class BrokerSpec(NamedTuple):
    """One entry of `brokers:`, defaults filled in."""

    position: int  # in brokers:, for messages
    name: str
    kind: str  # amqp | nats
    format: str  # spring-bus | cloudevents
    url: str | None
    url_env: str | None
    environments: tuple[str, ...]
    services: tuple[str, ...]
    exchange: str | None  # AMQP only
    subject: str | None  # NATS only

    @property
    def subscription_id(self) -> str:
        """The id of the outbox subscription that stands for this broker."""
        return PREFIX + self.name

    @property
    def where(self) -> str:
        """Where the broker is declared, for messages."""
        return f"server.yaml brokers[{self.position}] ({self.name!r})"

    @property
    def routing_key(self) -> str:
        """The AMQP routing key: the exchange's name for Spring Cloud Bus (what its own
        producers use, and consumers bind `#`), the event type for CloudEvents."""
        if self.format == "spring-bus":
            return self.exchange or spring_bus.EXCHANGE
        return CLOUDEVENTS_ROUTING_KEY

    @property
    def target(self) -> str:
        """The exchange or subject, as shown in /v1/status."""
        if self.kind == "amqp":
            return f"exchange {self.exchange!r}"
        return f"subject {self.subject!r}"

    def resolve_url(self, environ: Mapping[str, str]) -> str:
        """The broker's URL; ValueError saying what to fix if the variable is unset."""
        if self.url:
            return self.url
        value = environ.get(self.url_env or "")
        if not value:
            raise ValueError(
                f"{self.where}: url_env {self.url_env!r} is not set in the server's environment; "
                "set it to the broker's URL and restart gitconf serve"
            )
        check_url(self, value, f"{self.where}: the URL in {self.url_env}")
        return value

    def display_url(self, environ: Mapping[str, str]) -> str:
        """The URL without credentials, or the variable's name while it is unset."""
        try:
            return redact(self.resolve_url(environ))
        except ValueError:
            return f"${self.url_env}"


def check_settings(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with `brokers:` beyond its schema; each message says how to fix it."""
    problems = []
    for index, doc in enumerate(docs):
        kind = doc["kind"]
        wrong, right = ("subject", "an exchange") if kind == "amqp" else ("exchange", "a subject")
        if wrong in doc:
            problems.append(
                f"brokers[{index}]: {wrong} is not for kind {kind!r}, which publishes to "
                f"{right}; remove it"
            )
    return problems + check(from_settings(docs))


def from_settings(docs: Sequence[Mapping[str, Any]]) -> list[BrokerSpec]:
    """The specs of the settings' `brokers:` (already checked against the schema)."""
    specs = []
    for index, doc in enumerate(docs):
        kind, fmt = doc["kind"], doc["format"]
        exchange = subject = None
        if kind == "amqp":
            default = spring_bus.EXCHANGE if fmt == "spring-bus" else CLOUDEVENTS_EXCHANGE
            exchange = doc.get("exchange") or default
        else:
            subject = doc.get("subject") or DEFAULT_SUBJECT
        specs.append(
            BrokerSpec(
                position=index,
                name=doc["name"],
                kind=kind,
                format=fmt,
                url=doc.get("url"),
                url_env=doc.get("url_env"),
                environments=tuple(doc.get("environments") or ("*",)),
                services=tuple(doc.get("services") or ("*",)),
                exchange=exchange,
                subject=subject,
            )
        )
    return specs


def check(specs: Sequence[BrokerSpec]) -> list[str]:
    """What is wrong with the brokers beyond the schema: each message says how to fix it."""
    problems = []
    seen: dict[str, int] = {}
    for spec in specs:
        where = f"brokers[{spec.position}]"
        if spec.name in seen:
            problems.append(
                f"{where}: name {spec.name!r} is also brokers[{seen[spec.name]}]'s; "
                "give each broker its own name"
            )
        seen.setdefault(spec.name, spec.position)
        if spec.kind == "nats" and spec.format == "spring-bus":
            problems.append(
                f"{where}: format 'spring-bus' needs kind 'amqp' (Spring Cloud Bus listens on "
                "RabbitMQ); use format 'cloudevents' on NATS"
            )
        if spec.url:
            try:
                check_url(spec, spec.url, f"{where}.url")
            except ValueError as exc:
                problems.append(str(exc))
    return problems


def check_url(spec: BrokerSpec, url: str, where: str) -> None:
    """ValueError if url is not one of the kind's schemes (the URL itself is not shown)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    allowed = SCHEMES[spec.kind]
    if scheme not in allowed:
        shown = f"{scheme!r}" if scheme else "no scheme"
        raise ValueError(
            f"{where}: the URL of kind {spec.kind!r} starts with "
            f"{' or '.join(s + '://' for s in allowed)}, not {shown}"
        )


def redact(url: str) -> str:
    """url without its user and password (and without a query, which may hold keys)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<a URL that does not parse>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path}"
