"""BodyCache: bodies built once per key, ETags from the bytes, least recently used dropped
past a budget of bytes."""

from __future__ import annotations

from gitconf.spring.cache import MAX_BYTES, BodyCache


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


def test_the_least_recently_used_body_is_dropped_past_the_bytes() -> None:
    cache = BodyCache(max_bytes=8)
    cache.get("a", "t", lambda: b"aaaa")
    cache.get("b", "t", lambda: b"bbbb")
    cache.get("a", "t", lambda: b"aaaa")  # a is now the most recent
    cache.get("c", "t", lambda: b"cc")  # 10 bytes: b goes
    assert cache.total_bytes == 6
    rebuilt: list[str] = []
    cache.get("a", "t", lambda: rebuilt.append("a") or b"aaaa")
    cache.get("b", "t", lambda: rebuilt.append("b") or b"bbbb")  # c goes, then b is kept
    assert rebuilt == ["b"]
    assert cache.total_bytes == 8


def test_many_small_keys_cannot_hold_more_than_the_bytes() -> None:
    # The entry count was the only bound: 256 bodies of whatever size.
    cache = BodyCache()
    body = b"x" * (1024 * 1024)
    for i in range(2 * MAX_BYTES // len(body)):
        cache.get(("r1", i), "t", lambda: body)
    rebuilt: list[int] = []
    cache.get(("r1", 0), "t", lambda: rebuilt.append(0) or body)
    assert rebuilt == [0]
    assert MAX_BYTES - len(body) < cache.total_bytes <= MAX_BYTES


def test_a_body_larger_than_the_bytes_is_served_but_not_kept() -> None:
    cache = BodyCache(max_bytes=4)
    cache.get("a", "t", lambda: b"aaa")
    big = cache.get("big", "t", lambda: b"b" * 5)
    assert big.data == b"bbbbb"
    assert cache.total_bytes == 3  # a stays
    rebuilt: list[str] = []
    cache.get("a", "t", lambda: rebuilt.append("a") or b"aaa")
    assert rebuilt == []
