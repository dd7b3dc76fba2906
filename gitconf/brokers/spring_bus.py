"""Spring Cloud Bus's `RefreshRemoteApplicationEvent`, as its Jackson reader takes it. Pure.

spring-cloud-bus reads bus messages with Jackson into `RemoteApplicationEvent` subclasses,
which carry `@JsonTypeInfo(use = NAME, property = "type")`: the `type` property names the
class by its simple name. The other properties are its getters: `originService`,
`destinationService`, `id`, and `timestamp` (epoch milliseconds, from Spring's
`ApplicationEvent`). `source` is ignored on read (`@JsonIgnoreProperties("source")`), so
gitconf leaves it out, as Spring's own writer does.

A Spring app's bus id is `<spring.application.name>:<port or index>:<random>`, with its
active profiles after the name when it has some; a destination `<service>:**` matches every
instance of the service, whatever its profile (environment), so one event per changed
service refreshes all of them.
"""

from __future__ import annotations

import uuid
from typing import Any

from gitconf.brokers.message import Message

__all__ = ["CONTENT_TYPE", "EVENT_TYPE", "EXCHANGE", "destination", "message", "refresh_event"]

EXCHANGE = "springCloudBus"  # spring-cloud-bus's BusConstants.DESTINATION
EVENT_TYPE = "RefreshRemoteApplicationEvent"
CONTENT_TYPE = "application/json"  # what the bus's Jackson converter reads


def destination(service: str) -> str:
    """The bus destination of every instance of a service."""
    return f"{service}:**"


def event_uuid(event_id: str) -> str:
    """The UUID form of a delivery's event id (`evt_` + 32 hex digits), for the event's `id`."""
    try:
        return str(uuid.UUID(hex=event_id.removeprefix("evt_")))
    except ValueError:  # not one of gitconf's ids: still the same UUID for the same id
        return str(uuid.uuid5(uuid.NAMESPACE_URL, event_id))


def refresh_event(*, event_id: str, service: str, origin: str, timestamp_ms: int) -> dict[str, Any]:
    """The event that makes every instance of service refresh its `@RefreshScope` beans."""
    return {
        "type": EVENT_TYPE,
        "timestamp": timestamp_ms,
        "originService": origin,
        "destinationService": destination(service),
        "id": event_uuid(event_id),
    }


def message(event_id: str, body: bytes) -> Message:
    """The stored event as a message: JSON, no other attributes."""
    return Message(event_id, body, CONTENT_TYPE)
