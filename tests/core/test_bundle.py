"""resource_uri joins a `$ref` to its base exactly as referencing does (urljoin, urldefrag)."""

from __future__ import annotations

from urllib.parse import urldefrag, urljoin

import pytest

from gitconf.core.bundle import resource_uri

BASES = [
    *("file:///schemas/a.schema.json", "file:///schemas/_common/defs.json", "file:///"),
    *("file:///x", "file:///schemas/a;p", "file:///s/a.json#/x/y", "file:///s/a.json?x/y"),
    *("file:///s/a;b/c", "file:///s//a", "file:///s/./a/../b", "file:///s/x/", "urn:x:y"),
    *("https://ex.com/s/a.json?q=1", "https://ex.com", "http://ex.com/a/b/"),
]
REFS = [
    *("_common/defs.json#/$defs/a", "../x.json", "/abs.json#y", "//other/x", "x", "./x#"),
    *("https://o.com/a#b", "?q", "#/a", "a/b/../c.json", ".", "..", "x?y#z", "file:z", ";p"),
    *("", "g;x", "#", "../../../../a", "a:b", "./a:b", "%2e%2e/x", "g#s/../x"),
]


@pytest.mark.parametrize("base", BASES)
def test_resource_uri_is_referencings_join(base: str) -> None:
    for ref in REFS:
        expected = (base, ref[1:]) if ref.startswith("#") else tuple(urldefrag(urljoin(base, ref)))
        assert resource_uri(base, ref) == expected, (base, ref)
