"""CloudEvents in binary mode on brokers: an event's attributes as NATS or AMQP headers. Pure.

In binary mode the body is the event's `data` alone, encoded as its `datacontenttype` says
(JSON), and every other attribute travels beside it:

- NATS (the NATS protocol binding, binary content mode, on NATS 2.2+ headers): a header
  `ce-<attribute>` per attribute, `datacontenttype` included, its value percent-encoded
  (space, `"`, `%` and every character outside printable ASCII). `Content-Type` is set too,
  for consumers that read that; it is not `application/cloudevents…`, which would mean
  structured mode.
- AMQP (the AMQP protocol binding's application properties, which AMQP 0-9-1 carries as
  message headers): `cloudEvents:<attribute>` with the attribute's canonical string, and
  `datacontenttype` as the message's `content_type` property.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gitconf.brokers.message import Message

__all__ = ["amqp_headers", "message", "nats_headers", "percent_encode"]

NATS_PREFIX = "ce-"
AMQP_PREFIX = "cloudEvents:"
_LEFT_OUT = ("data", "data_base64", "datacontenttype")


def message(event: Mapping[str, Any]) -> Message:
    """A structured (JSON) CloudEvent as a binary-mode message: attributes beside the data."""
    attributes = tuple(
        (name, _canonical(value))
        for name, value in event.items()
        if name not in _LEFT_OUT and value is not None
    )
    body = json.dumps(event.get("data"), separators=(",", ":"), ensure_ascii=False).encode()
    content_type = str(event.get("datacontenttype") or "application/json")
    return Message(str(event["id"]), body, content_type, attributes)


def _canonical(value: Any) -> str:
    """An attribute's canonical string: booleans as true/false, the rest as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def percent_encode(value: str) -> str:
    """A NATS header value: space, `"`, `%` and all but printable ASCII as UTF-8 %XX bytes."""
    out = []
    for char in value:
        if "\x21" <= char <= "\x7e" and char not in '"%':
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def nats_headers(message: Message) -> dict[str, str]:
    """The NATS headers of a binary-mode message (without gitconf's Nats-Msg-Id)."""
    if not message.attributes:  # not a CloudEvent: its content type alone
        return {"Content-Type": message.content_type}
    headers = {NATS_PREFIX + name: percent_encode(value) for name, value in message.attributes}
    headers[NATS_PREFIX + "datacontenttype"] = percent_encode(message.content_type)
    headers["Content-Type"] = message.content_type
    return headers


def amqp_headers(message: Message) -> dict[str, str]:
    """The AMQP headers (application properties) of a binary-mode message."""
    return {AMQP_PREFIX + name: value for name, value in message.attributes}
