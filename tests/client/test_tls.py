"""TLS: verified by default, trusted through ca_bundle, for get() and the watch's own socket."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitconf.client import AsyncConfigClient, Change, ConfigClient, ConfigUnavailable
from gitconf.testing import commit_all
from gitconf.testing.server import wait_until
from tests.client.conftest import Relay, Served


@pytest.fixture
def tls_relay(shared: Served, tmp_path: Path) -> Iterator[tuple[Relay, str]]:
    """An HTTPS relay in front of the server, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=gitconf test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    relay = Relay(shared.server.port, tls=context)
    yield relay, str(cert)
    relay.close()


def test_an_unknown_ca_is_refused_by_default(tls_relay: tuple[Relay, str]) -> None:
    relay, _ = tls_relay
    client = ConfigClient(relay.url, "production", "payments")
    with client, pytest.raises(ConfigUnavailable) as caught:
        client.get()
    assert "certificate verify failed" in str(caught.value).lower()

    async def scenario() -> None:
        async with AsyncConfigClient(relay.url, "production", "payments") as aclient:
            with pytest.raises(ConfigUnavailable) as caught:
                await aclient.get()
        assert "certificate verify failed" in str(caught.value).lower()

    asyncio.run(scenario())


def test_ca_bundle_trusts_an_internal_ca(shared: Served, tls_relay: tuple[Relay, str]) -> None:
    relay, ca = tls_relay
    changes: list[Change] = []
    with ConfigClient(relay.url, "production-eu", "search", ca_bundle=ca) as client:
        assert client.get() == {"region": "eu-west-1", "shards": ["s1", "s2"]}
        client.watch(changes.append, wait=5)
        wait_until(lambda: any("wait=5" in r["request-line"] for r in relay.requests()))
        overlay = {"environments/production-eu/search.yaml": "shards: [eu1]\n"}
        sha = commit_all(shared.repo, "eu shards", overlay)
        wait_until(lambda: changes, what="the change over TLS")
        assert changes[0].revision == sha and changes[0].changed == ("shards",)

    async def scenario() -> None:
        async with AsyncConfigClient(relay.url, "production-eu", "search", ca_bundle=ca) as aclient:
            assert (await aclient.get())["shards"] == ["eu1"]

    asyncio.run(scenario())
