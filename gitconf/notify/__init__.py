"""Webhook notifications: subscriptions, a durable signed outbox, and the delivery worker.

Pure parts (`signing`, `events`, `policy`) do no I/O; `targets` resolves names; `outbox` and
`subscriptions` own the tables; `worker` delivers; `notifier` turns publishes into rows;
`api` is the HTTP blueprint and `plugin.install` wires it all into a Server.
"""
