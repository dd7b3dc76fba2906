"""The Spring Cloud Bus payload against what spring-cloud-bus's Jackson reader takes.

The contract, read in spring-cloud-bus's source (github.com/spring-cloud/spring-cloud-bus,
commit 798d2f3d49c4dbb710aa7706fe888f16673e8655 of 2026-07-20), module spring-cloud-bus:

- `src/main/java/org/springframework/cloud/bus/event/RemoteApplicationEvent.java`:
  `@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")` and
  `@JsonIgnoreProperties("source")` on the class; its properties are `originService`,
  `destinationService` and `id` (getters over fields Jackson fills on read; `id` is
  `UUID.randomUUID().toString()` when Spring makes one). `timestamp` comes from Spring's
  `ApplicationEvent.getTimestamp()` (epoch milliseconds).
- `.../event/RefreshRemoteApplicationEvent.java`: a subclass with no properties of its own,
  registered by `BusJacksonMessageConverter` (`.../jackson/BusJacksonAutoConfiguration.java`)
  under its simple class name, which `Id.NAME` uses as the type id.
- `.../event/PathDestinationFactory.java`: a destination with at most one `:` that does not
  end in `:**` gets `:**` appended ("all instances of the destination"); gitconf sends the
  `<service>:**` form that results.
- `.../BusConstants.java`: `DESTINATION = "springCloudBus"`, the exchange.
"""

from __future__ import annotations

import json
import uuid

from gitconf.brokers import spring_bus
from gitconf.notify.events import encode

EVENT_ID = "evt_5fd2a6f4fcb54c7fbc51b6068598f2fc"

# What gitconf publishes for a change to payments, byte for byte.
GOLDEN = (
    b'{"type":"RefreshRemoteApplicationEvent","timestamp":1767323045678,'
    b'"originService":"gitconf:host-4242-a1b2c3","destinationService":"payments:**",'
    b'"id":"5fd2a6f4-fcb5-4c7f-bc51-b6068598f2fc"}'
)


def event() -> dict[str, object]:
    return spring_bus.refresh_event(
        event_id=EVENT_ID,
        service="payments",
        origin="gitconf:host-4242-a1b2c3",
        timestamp_ms=1767323045678,
    )


def test_the_refresh_event_is_the_golden_json() -> None:
    assert encode(event()) == GOLDEN


def test_it_has_exactly_the_properties_jackson_reads_and_the_type_id_of_the_class() -> None:
    doc = json.loads(GOLDEN)
    # @JsonTypeInfo(use = NAME, property = "type"): the simple name of the Java class.
    assert doc["type"] == "RefreshRemoteApplicationEvent"
    # RemoteApplicationEvent's properties and ApplicationEvent's timestamp; no "source",
    # which @JsonIgnoreProperties drops, and nothing else for Jackson to choke on.
    assert set(doc) == {"type", "timestamp", "originService", "destinationService", "id"}
    assert isinstance(doc["timestamp"], int)
    assert str(uuid.UUID(doc["id"])) == doc["id"]  # the UUID form Spring's own ids have


def test_the_destination_is_every_instance_of_the_service() -> None:
    # PathDestinationFactory turns "payments" into "payments:**"; gitconf sends that form.
    assert spring_bus.destination("payments") == "payments:**"
    assert spring_bus.EXCHANGE == "springCloudBus"


def test_the_id_is_the_delivery_event_id_as_a_uuid_so_a_retry_carries_the_same_one() -> None:
    assert spring_bus.event_uuid(EVENT_ID) == "5fd2a6f4-fcb5-4c7f-bc51-b6068598f2fc"
    other = spring_bus.event_uuid("not-a-gitconf-id")
    assert other == spring_bus.event_uuid("not-a-gitconf-id") and uuid.UUID(other)


def test_the_message_is_the_stored_json_with_its_event_id() -> None:
    message = spring_bus.message(EVENT_ID, GOLDEN)
    assert (message.id, message.body, message.content_type) == (
        EVENT_ID,
        GOLDEN,
        "application/json",
    )
    assert message.attributes == ()
