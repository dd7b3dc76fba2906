"""BodyCache: bodies built once per key, ETags from the bytes, least recently used dropped."""

from __future__ import annotations

from gitconf.spring.cache import BodyCache


def test_a_body_is_built_once_per_key() -> None:
    cache = BodyCache()
    builds: list[str] = []

    def build() -> bytes:
        builds.append("x")
        return b"{}"

    first = cache.get(("r1", "a"), "application/json", build)
    assert cache.get(("r1", "a"), "application/json", build) is first
    assert builds == ["x"]
    assert first.content_type == "application/json"
    assert first.etag.startswith('"') and first.etag.endswith('"')


def test_equal_bytes_have_equal_etags_across_revisions() -> None:
    cache = BodyCache()
    a = cache.get(("r1", "a"), "text/plain", lambda: b"same")
    b = cache.get(("r2", "a"), "text/plain", lambda: b"same")
    c = cache.get(("r2", "b"), "text/plain", lambda: b"other")
    assert a.etag == b.etag != c.etag


def test_the_least_recently_used_body_is_dropped() -> None:
    cache = BodyCache(size=2)
    cache.get("a", "t", lambda: b"a")
    cache.get("b", "t", lambda: b"b")
    cache.get("a", "t", lambda: b"a")  # a is now the most recent
    cache.get("c", "t", lambda: b"c")
    rebuilt: list[str] = []
    cache.get("a", "t", lambda: rebuilt.append("a") or b"a")
    cache.get("b", "t", lambda: rebuilt.append("b") or b"b")
    assert rebuilt == ["b"]
