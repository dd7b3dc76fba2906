"""Durable state in SQLAlchemy Core, every table and every query: revisions, snapshots, the outbox
and its deliveries, subscriptions, heartbeats, pins, rollouts, the audit log."""
