"""The bounded, expiring memory of Standard Webhooks ids."""

from __future__ import annotations

from gitconf.hooks.replay import ReplayCache


def test_an_id_is_refused_until_it_expires() -> None:
    cache = ReplayCache()
    assert cache.first_use("generic:msg_1", expires_at=400.0, now=100.0)
    assert not cache.first_use("generic:msg_1", expires_at=450.0, now=399.0)
    assert cache.first_use("generic:msg_2", expires_at=450.0, now=399.0)
    assert cache.first_use("generic:msg_1", expires_at=700.0, now=400.0)


def test_expired_ids_are_dropped() -> None:
    cache = ReplayCache()
    for i in range(100):
        cache.first_use(f"msg_{i}", expires_at=300.0 + i, now=float(i))
    cache.first_use("late", expires_at=1000.0, now=500.0)
    assert len(cache) == 1


def test_the_cache_is_bounded() -> None:
    cache = ReplayCache(limit=3)
    for i in range(10):
        assert cache.first_use(f"msg_{i}", expires_at=1000.0, now=0.0)
    assert len(cache) == 3
    assert not cache.first_use("msg_9", expires_at=1000.0, now=0.0)
