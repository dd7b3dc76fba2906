"""Durable state in SQLAlchemy Core: the revision log (and, with notifications, the outbox)."""
