"""What a broker transport sends, its error, and the interface every transport has."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from gitconf.errors import GitconfError

__all__ = ["Broker", "BrokerUnavailable", "Message"]


class Message(NamedTuple):
    """One message: its id (the delivery's event id), body, content type and attributes.

    `attributes` are CloudEvents context attributes (binary mode) that each transport maps to
    its own headers; empty for a Spring Cloud Bus event, whose body says it all.
    """

    id: str
    body: bytes
    content_type: str = "application/json"
    attributes: tuple[tuple[str, str], ...] = ()


class BrokerUnavailable(GitconfError):
    """The broker did not take a message (down, refused, no confirm in time): retry later.

    The message says which broker and what happened, and never holds its credentials.
    """


class Broker(Protocol):
    """A connection to one broker, made on first use and again after a failure."""

    def send(self, message: Message) -> None:
        """Publish and wait for the broker's confirm; BrokerUnavailable if it did not take it."""
        ...

    def close(self) -> None:
        """Close the connection and stop the transport's thread."""
        ...
