"""What keeps a web page the user visits from driving gitconf: the Host and Origin rules.

Pure over a WSGI environ (no Flask), so the Flask app, the fast read path and the granian host
apply the same rules:
- Without tokens (the demo, a laptop) anyone who reaches the server may do anything, which is
  why it listens on loopback only. A page loaded from `attacker.example` whose name is then
  made to resolve to 127.0.0.1 (DNS rebinding) reaches it too, but with `Host:
  attacker.example`: so only loopback Host values are answered then (421 otherwise).
- A request with an `Origin` that is not the server's own was sent by another site's page: it
  is refused on every state-changing method, tokens or not, since such a page can send a
  "simple" cross-site POST (`text/plain`, no preflight) that the server would otherwise act on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from gitconf.server.errors import ApiError

__all__ = ["STATE_CHANGING", "Guard", "is_loopback_host", "origin_of"]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _split_host(host: str) -> tuple[str, str] | None:
    """(name, port) of a Host value (`name`, `name:port`, `[v6]`, `[v6]:port`); None if malformed."""
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        return inner, rest[1:]
    name, colon, port = host.rpartition(":")
    if not colon:
        return host, ""
    if ":" in name or not port.isdigit():
        return None
    return name, port


def is_loopback_host(host: str) -> bool:
    """Whether a Host value names this machine: `localhost`, 127.0.0.0/8 or [::1], any port."""
    parts = _split_host(host)
    if parts is None:
        return False
    name = parts[0]
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    # IPv6 only in brackets, IPv4 never in them: what a browser sends for a URL's host.
    return address.is_loopback and (address.version == 6) == host.startswith("[")


def origin_of(url: str) -> str | None:
    """The origin (scheme://host[:port], lower case, default port left out) of a URL or an
    Origin value; None when it has no http(s) scheme and host."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        return None
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return None
    parts = _split_host(authority.lower())
    if parts is None or not parts[0]:
        return None
    name, port = parts
    if ":" in name:
        name = f"[{name}]"
    if port and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{name}:{port}"
    return f"{scheme}://{name}"


class Guard(NamedTuple):
    """The Host and Origin rules of one server."""

    loopback_only: bool  # no tokens: only loopback Host values are answered
    origins: frozenset[str] = frozenset()  # the server's own origins besides the request's

    @classmethod
    def of(cls, tokens: bool, own_urls: Iterable[str | None] = ()) -> Guard:
        """The guard of a server with (or without) tokens, reached at own_urls (public_url)."""
        origins = frozenset(o for o in (origin_of(u) for u in own_urls if u) if o)
        return cls(not tokens, origins)

    def misdirected(self, host: str) -> ApiError | None:
        """The 421 for a Host this server does not answer; None when it does."""
        if not self.loopback_only or is_loopback_host(host):
            return None
        return ApiError(
            421,
            "misdirected_request",
            f"Host {host!r} is not a loopback name or address: with no tokens configured, "
            "gitconf answers only requests for localhost, 127.0.0.1 or [::1], so that a web "
            "page cannot reach it under a name of its own (DNS rebinding). To serve other "
            "host names, configure tokens: in server.yaml (see the README's Auth section)",
        )

    def cross_origin(self, environ: Mapping[str, Any]) -> ApiError | None:
        """The 403 for a state-changing request sent by another site's page; None otherwise."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is None or environ.get("REQUEST_METHOD") not in STATE_CHANGING:
            return None
        own = self.own_origin(environ)
        found = origin_of(origin)
        if found is not None and (found == own or found in self.origins):
            return None
        return ApiError(
            403,
            "cross_origin",
            f"refused a {environ.get('REQUEST_METHOD')} from a web page of another origin "
            f"(Origin: {origin!r}; this server is {own!r}): gitconf takes changes from "
            "clients and scripts, which send no Origin header, or from its own pages. If "
            "clients reach this server under another name, set public_url to it",
        )

    @staticmethod
    def own_origin(environ: Mapping[str, Any]) -> str:
        """scheme://Host of a request: the origin of a page this server served."""
        scheme = str(environ.get("wsgi.url_scheme") or "http")
        host = environ.get("HTTP_HOST")
        if not host:
            name, port = str(environ.get("SERVER_NAME", "")), str(environ.get("SERVER_PORT", ""))
            host = f"{name}:{port}" if port else name
        return origin_of(f"{scheme}://{host}") or f"{scheme}://{host}"

    def refusal(self, environ: Mapping[str, Any]) -> ApiError | None:
        """The error a request is refused with by these rules (Host first); None if it passes."""
        host = environ.get("HTTP_HOST")
        if host is not None:
            refused = self.misdirected(host)
            if refused is not None:
                return refused
        return self.cross_origin(environ)
