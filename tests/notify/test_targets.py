"""Which webhook targets are refused: at registration, and again on every connection."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from gitconf.errors import GitconfError
from gitconf.notify.targets import (
    TargetPolicy,
    TargetRefused,
    check_url,
    checked_session,
    connected_host,
)
from tests.notify.receiver import Receiver

DEFAULT = TargetPolicy.from_settings({})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "has no host"),
        ("http://169.254.169.254/latest/meta-data", "link-local (169.254.0.0/16)"),
        ("http://169.254.170.2/v2/credentials", "link-local"),
        ("http://[fe80::1]/hook", "link-local (fe80::/10)"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64
        ("http://[2002:a9fe:a9fe::1]/", "link-local"),  # 6to4
        ("http://[::169.254.169.254]/", "link-local"),  # IPv4-compatible
        ("http://[::ffff:0:a9fe:a9fe]/", "link-local"),  # IPv4-translated (SIIT)
        ("http://[::ffff:0:169.254.169.254]/", "link-local"),
        ("http://[::ffff:0:6464:64c8]/", "cloud metadata (Alibaba Cloud)"),
        # Local-use NAT64: the IPv4 address sits where the operator's prefix length puts it.
        ("http://[64:ff9b:1::a9fe:a9fe]/", "local-use NAT64"),  # a /96 prefix
        ("http://[64:ff9b:1:a9fe:a9:fe00::]/", "local-use NAT64"),  # a /48 prefix
        ("http://[64:ff9b:1:ffff::]/", "local-use NAT64"),
        ("http://100.100.100.200/", "cloud metadata (Alibaba Cloud)"),
        ("http://[fd00:ec2::254]/", "cloud metadata (AWS IPv6)"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://does-not-exist.invalid/hook", "does not resolve"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
    ],
)
def test_refused_targets(url: str, message: str) -> None:
    with pytest.raises(TargetRefused, match=re.escape(message)):
        check_url(url, DEFAULT)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # urlsplit reads 127.0.0.1 here; urllib3, which delivers, connects to 169.254.169.254.
        ("http://169.254.169.254\\@127.0.0.1/", "backslash before its path"),
        ("http://127.0.0.1\\@169.254.169.254/", "backslash before its path"),
        ("http://169.254.169.254\\:80@127.0.0.1/", "backslash before its path"),
        ("http://user\\@127.0.0.1/", "backslash before its path"),
        ("http://127.0.0.1\\/", "backslash before its path"),
        ("http://127.0.0.1/\n", "control character"),
        ("http://127.0.0.1\t/", "control character"),
        ("http://169.254.169.254\r@127.0.0.1/", "control character"),
        ("http://127.0.0.1\x00.example/", "control character"),
        ("http://127.0.0.1\x7f/", "control character"),
        # The two parsers disagree on these hosts too.
        ("http://ex%2541mple.com/", "to one URL parser"),
    ],
)
def test_urls_the_parsers_read_differently_are_refused(url: str, message: str) -> None:
    with pytest.raises(TargetRefused, match=re.escape(message)):
        check_url(url, DEFAULT)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://user:p%5Cw@127.0.0.1:9000/hook", "127.0.0.1"),
        ("http://127.0.0.1/a\\b", "127.0.0.1"),  # a backslash in the path names no host
        ("http://LOCALHOST/", "localhost"),
        ("http://[::1]:8080/", "::1"),
        ("http://[FE80::1%25eth0]/", "fe80::1%eth0"),
        ("http://bücher.example/", "xn--bcher-kva.example"),
        ("http://a@b@localhost/", "localhost"),
    ],
)
def test_the_host_checked_is_the_host_urllib3_connects_to(url: str, host: str) -> None:
    assert connected_host(url, urlsplit(url).hostname) == host


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]:8080/",
        "https://10.1.2.3/hook",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
    ],
)
def test_loopback_and_private_targets_are_allowed_by_default(url: str) -> None:
    check_url(url, DEFAULT)


def test_deny_and_allow_lists() -> None:
    policy = TargetPolicy.from_settings(
        {"deny": ["10.0.0.0/8"], "allow": ["10.0.0.0/8", "127.0.0.1/32"]}
    )
    with pytest.raises(TargetRefused, match=re.escape("denied by subscribers.deny")):
        check_url("http://10.2.3.4/", policy)
    check_url("http://127.0.0.1/", policy)
    with pytest.raises(TargetRefused, match=re.escape("not in subscribers.allow")):
        check_url("http://192.168.1.1/", policy)
    wide = TargetPolicy.from_settings({"allow": ["0.0.0.0/0"]})
    with pytest.raises(TargetRefused, match="link-local"):
        check_url("http://169.254.169.254/", wide)


def test_a_bad_cidr_in_the_settings_is_named() -> None:
    with pytest.raises(GitconfError, match=re.escape("subscribers.deny: 'ten/8' is not a CIDR")):
        TargetPolicy.from_settings({"deny": ["ten/8"]})


def test_the_session_checks_the_address_it_connects_to() -> None:
    with Receiver() as receiver:
        port = receiver.server.server_port
        assert (
            checked_session(DEFAULT).post(f"http://localhost:{port}/", timeout=5).status_code == 204
        )
        denied = checked_session(TargetPolicy.from_settings({"deny": ["127.0.0.0/8", "::1/128"]}))
        with pytest.raises(TargetRefused, match=re.escape("denied by subscribers.deny")):
            denied.post(f"http://localhost:{port}/", timeout=5)
        count = receiver.count
    assert count == 1, "the refused request never reached the receiver"


def test_the_session_refuses_link_local_before_connecting() -> None:
    with pytest.raises(TargetRefused, match="link-local"):
        checked_session(DEFAULT).post("http://169.254.169.254/latest", timeout=5)


def test_the_session_ignores_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with Receiver() as receiver:
        response = checked_session(DEFAULT).post(receiver.url, timeout=5)
    assert response.status_code == 204
    assert isinstance(response, requests.Response)


def test_a_url_urllib3_reads_elsewhere_is_refused_at_registration(client: Any) -> None:
    # Registered, it failed only at connect time, and the delivery retried it for a day.
    response = client.post("/v1/subscriptions", json={"url": "http://169.254.169.254\\@127.0.0.1/"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("target_refused", "url")
    assert "backslash before its path" in error["message"]
    assert client.get("/v1/subscriptions").get_json()["subscriptions"] == []
