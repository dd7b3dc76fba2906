"""Webhook target safety: which URLs and addresses gitconf will POST to.

Link-local and cloud-metadata addresses are always refused (they reach the host's instance
credentials); so are unspecified, multicast and broadcast ones. Loopback and private ranges
are allowed: internal services are the normal subscribers. The settings' `subscribers.deny`
CIDRs refuse more, and a non-empty `subscribers.allow` admits only its CIDRs.

Names are checked when a subscription is registered and again for every new connection, on
the address actually connected to, so a name that later resolves elsewhere (DNS rebinding)
is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from gitconf.errors import GitconfError

__all__ = [
    "TargetPolicy",
    "TargetRefused",
    "check_address",
    "check_url",
    "checked_session",
    "connected_host",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_REFUSED: tuple[tuple[str, str], ...] = (
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("100.100.100.200/32", "cloud metadata (Alibaba Cloud)"),
    ("fd00:ec2::254/128", "cloud metadata (AWS IPv6)"),
    # Local-use NAT64 (RFC 8215): where the IPv4 address sits in it depends on the prefix length
    # the operator chose, so gitconf cannot tell whether it reaches the metadata service.
    ("64:ff9b:1::/48", "local-use NAT64, whose IPv4 address cannot be checked"),
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("255.255.255.255/32", "broadcast"),
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})


class TargetRefused(GitconfError):
    """A webhook target that gitconf will not send to; the message says why."""


class TargetPolicy(NamedTuple):
    """The refused networks (with why) and the optional allow list."""

    refused: tuple[tuple[Network, str], ...]
    allow: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, subscribers: Mapping[str, Any]) -> TargetPolicy:
        """The policy of the settings' `subscribers:` mapping; GitconfError on a bad CIDR."""
        refused = [(ipaddress.ip_network(net), why) for net, why in ALWAYS_REFUSED]
        refused += [(n, "denied by subscribers.deny") for n in _networks(subscribers, "deny")]
        return cls(tuple(refused), tuple(_networks(subscribers, "allow")))


def _networks(subscribers: Mapping[str, Any], key: str) -> Iterable[Network]:
    for text in subscribers.get(key) or ():
        try:
            yield ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise GitconfError(
                f"subscribers.{key}: {text!r} is not a CIDR such as 10.0.0.0/8 or fd00::/8"
            ) from None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765's SIIT
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, translated, 6to4, Teredo, NAT64,
    compatible), else ip.

    Each of these forms can reach an IPv4 host such as the metadata service at
    169.254.169.254, so the refusals are checked against the IPv4 address inside.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def check_address(address: str, policy: TargetPolicy) -> None:
    """TargetRefused if gitconf may not connect to this IP address."""
    ip: Address = _embedded_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))
    for network, why in policy.refused:
        if ip.version == network.version and ip in network:
            raise TargetRefused(f"address {address} is refused: {why} ({network})")
    if policy.allow and not any(ip.version == n.version and ip in n for n in policy.allow):
        raise TargetRefused(f"address {address} is not in subscribers.allow")


def check_url(url: str, policy: TargetPolicy, *, resolve: bool = True) -> None:
    """TargetRefused unless url is http(s) and its host (resolved unless told not to) is allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"{url!r}: only http and https URLs are accepted")
    host = connected_host(url, parts.hostname)
    if host.rstrip(".").lower() in METADATA_NAMES:
        raise TargetRefused(f"host {host!r} is a cloud metadata service")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        check_address(host, policy)
        return
    if resolve:
        for address in resolve_host(host, port or (443 if parts.scheme == "https" else 80)):
            check_address(address, policy)


def connected_host(url: str, split_host: str | None) -> str:
    """The host the delivery connects to, once urlsplit and urllib3 agree on what it is.

    The check reads the URL with urlsplit and the delivery with urllib3, and the two read some
    URLs differently: `http://169.254.169.254\\@127.0.0.1/` is 127.0.0.1 to urlsplit and
    169.254.169.254 to urllib3. So control characters anywhere and backslashes in the
    authority are refused, and so is any URL whose two hosts differ.
    """
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise TargetRefused(f"{url!r} holds a control character; a URL has none")
    authority = url.partition("://")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    if "\\" in authority:
        raise TargetRefused(
            f"{url!r} has a backslash before its path, which URL parsers read differently; "
            "write the host plainly (a backslash in a user name or password as %5C)"
        )
    if not split_host:
        raise TargetRefused(f"{url!r} has no host")
    try:
        connected = parse_url(url).host or ""
    except urllib3.exceptions.LocationParseError as exc:
        raise TargetRefused(f"{url!r} is not a valid URL: {exc}") from None
    connected = connected.removeprefix("[").removesuffix("]")
    plain = unquote(split_host)  # urllib3 decodes escapes (`%25` before an IPv6 zone id)
    if connected.lower() not in {plain.lower(), _idna(plain)}:
        raise TargetRefused(
            f"{url!r} names host {split_host!r} to one URL parser and {connected!r} to "
            "another; write the host plainly"
        )
    return connected


def _idna(host: str) -> str:
    """The host in the ASCII form of international names, as urllib3 sends it."""
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host.lower()


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to; TargetRefused if it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"host {host!r} does not resolve: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connection_class(base: type[HTTPConnection], policy: TargetPolicy) -> type[HTTPConnection]:
    class Checked(base):  # type: ignore[valid-type,misc]
        """Resolves, checks every address, then connects to a checked one."""

        def _new_conn(self) -> socket.socket:
            name: str = self._dns_host  # type: ignore[has-type]
            addresses = [name]
            try:
                ipaddress.ip_address(name.split("%", 1)[0])
            except ValueError:
                addresses = resolve_host(name, self.port)
            for address in addresses:
                check_address(address, policy)
            error: Exception | None = None
            for address in addresses:
                self._dns_host = address
                try:
                    sock: socket.socket = super()._new_conn()
                    return sock
                except urllib3.exceptions.NewConnectionError as exc:
                    error = exc
                finally:
                    self._dns_host = name
            assert error is not None
            raise error

    return Checked


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: TargetPolicy, **kwargs: Any) -> None:
        self._policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self._policy

        class Http(HTTPConnectionPool):
            ConnectionCls = _connection_class(HTTPConnection, policy)

        class Https(HTTPSConnectionPool):
            ConnectionCls = _connection_class(HTTPSConnection, policy)  # type: ignore[assignment]

        self.poolmanager.pool_classes_by_scheme = {"http": Http, "https": Https}


def checked_session(policy: TargetPolicy) -> requests.Session:
    """A requests Session that checks the address of every connection it opens.

    Proxies and .netrc from the environment are ignored: a webhook goes straight to its target.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _CheckedAdapter(policy, pool_connections=1, pool_maxsize=2, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
