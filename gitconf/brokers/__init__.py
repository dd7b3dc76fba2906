"""Brokers: config changes published to RabbitMQ (AMQP 0-9-1) and NATS.

Pure parts (`message`, `spring_bus`, `cloudevents`, `spec`) do no I/O; `amqp` (pika) and
`nats` (nats-py) are the transports, each an optional extra, imported only when a broker of
that kind is configured. The outbox delivers to them like to a webhook subscriber
(`gitconf.notify.brokers`).
"""
