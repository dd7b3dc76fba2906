"""What a config client says and hears, without doing any I/O (shared by the sync and asyncio clients).

The URL of a config, the headers every request carries, the bytes of a long-poll request, the
parse of a whole HTTP/1.1 response read until the server closed the connection, and what a
response means: a new copy, "not modified", or a failure to fall back from.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import requests.utils

from gitconf import __version__

__all__ = [
    "SECRETS_HEADER",
    "USER_AGENT",
    "ClientError",
    "Endpoint",
    "Fetched",
    "ProtocolError",
    "Response",
    "ServerError",
    "default_instance",
    "encode_request",
    "interpret",
    "parse_response",
    "request_headers",
    "ssl_context",
]

USER_AGENT = f"gitconf-client/{__version__}"
# The header a server sends with a reply that carries secrets in plaintext (a token with the
# `secrets:` scope reading a config with encrypted values), its value the number of them. Such a
# reply is not written to the disk cache unless the client was made with cache_secrets=True.
SECRETS_HEADER = "X-Gitconf-Secrets"
MAX_RESPONSE = 64 * 1024 * 1024  # bytes: a config server answering more is broken or hostile


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 response this client can read."""


class ServerError(Exception):
    """The server answered with a status that a cached copy stands in for (5xx, 429)."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ClientError(Exception):
    """The server refused the request (4xx): a cached copy would hide a mistake to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Endpoint(NamedTuple):
    """Where a config is read: scheme, host, port and the path of `/v1/config/<env>/<service>`."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def of(cls, url: str, environment: str, service: str) -> Endpoint:
        """The endpoint of (environment, service) on the server at url; ValueError if url is bad."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"server URL {url!r} must be http:// or https:// and name a host, "
                "e.g. http://127.0.0.1:8080"
            )
        if parts.username or parts.password:
            raise ValueError(f"server URL {url!r} holds credentials: pass a token instead")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        base = parts.path.rstrip("/")
        path = f"{base}/v1/config/{quote(environment, safe='')}/{quote(service, safe='')}"
        return cls(parts.scheme, parts.hostname, port, path)

    @property
    def url(self) -> str:
        """The config's URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        netloc = host if self.port == default else f"{host}:{self.port}"
        return f"{self.scheme}://{netloc}{self.path}"

    def target(self, wait: float | None = None) -> str:
        """The request target: the path, with `?wait=` for a long poll."""
        return self.path if wait is None else f"{self.path}?wait={wait:g}"


def default_instance() -> str:
    """`<hostname>-<pid>`: what X-Gitconf-Instance says when no instance name is given."""
    return f"{socket.gethostname()}-{os.getpid()}"


def request_headers(token: str | None, instance: str, etag: str | None) -> dict[str, str]:
    """The headers of every config read."""
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gitconf-Instance": instance,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if etag:
        headers["If-None-Match"] = etag
    return headers


def encode_request(endpoint: Endpoint, target: str, headers: Mapping[str, str]) -> bytes:
    """A GET request, on a connection the server closes after answering."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default = 443 if endpoint.scheme == "https" else 80
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}" if endpoint.port == default else f"Host: {host}:{endpoint.port}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"a request header holds a line break: {line.split(':')[0]!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ssl_context(ca_bundle: str | None, verify: bool = True) -> ssl.SSLContext:
    """TLS settings: the CAs requests trusts (certifi's), or those of ca_bundle; verify=False
    turns verification off, for tests only."""
    context = ssl.create_default_context(cafile=ca_bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Response(NamedTuple):
    """A whole HTTP response: status, headers (names lower-cased) and the decoded body."""

    status: int
    headers: dict[str, str]
    body: bytes


def _head(data: bytes, start: int) -> tuple[int, dict[str, str], int]:
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise ProtocolError("the connection closed before the end of the response headers")
    status_line, *lines = data[start:end].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"malformed response header line {line[:80]!r}")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(code), headers, end + 4


def _dechunk(data: bytes, start: int) -> bytes:
    body = bytearray()
    at = start
    while True:
        eol = data.find(b"\r\n", at)
        if eol < 0:
            raise ProtocolError("the connection closed inside a chunk size line")
        size_text = data[at:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}")
        at = eol + 2
        if size == 0:
            return bytes(body)  # trailers, if any, carry nothing this client needs
        if len(data) < at + size + 2 or data[at + size : at + size + 2] != b"\r\n":
            raise ProtocolError("the connection closed inside a chunk")
        body += data[at : at + size]
        at += size + 2


def parse_response(data: bytes) -> Response:
    """The final response in the bytes a server sent before closing the connection.

    Interim 1xx responses are skipped; the body is framed by chunked transfer coding, by
    Content-Length, or by the end of the connection, as RFC 9112 section 6.3 orders them.
    """
    at = 0
    while True:
        status, headers, at = _head(data, at)
        if not 100 <= status < 200:
            break
    if status in (204, 304):
        return Response(status, headers, b"")
    coding = headers.get("transfer-encoding", "")
    if coding:
        if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {coding!r}")
        return Response(status, headers, _dechunk(data, at))
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {length!r}")
        if len(data) - at < int(length):
            raise ProtocolError(
                f"the connection closed after {len(data) - at} of {length} body bytes"
            )
        return Response(status, headers, data[at : at + int(length)])
    return Response(status, headers, data[at:])


class Fetched(NamedTuple):
    """A copy of a config as the server sent it."""

    config: Any
    etag: str | None
    revision: str | None
    secrets: int  # plaintext secrets in it, from the X-Gitconf-Secrets header (0: none)


def _error_message(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body)
        message = doc["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    return f"HTTP {status}: {message}"


def interpret(status: int, headers: Mapping[str, str], body: bytes) -> Fetched | None:
    """A 200 as a Fetched, a 304 as None; ServerError for 5xx/429, ClientError for other codes.

    headers: lower-cased names.
    """
    if status == 304:
        return None
    if status == 200:
        try:
            config = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"the 200 response is not JSON: {exc}") from None
        secrets = headers.get(SECRETS_HEADER.lower(), "0").strip()
        return Fetched(
            config,
            headers.get("etag"),
            headers.get("x-gitconf-revision"),
            int(secrets) if secrets.isdigit() else 1,  # unreadable: assume it has secrets
        )
    message = _error_message(status, body)
    if status >= 500 or status == 429:
        raise ServerError(status, message, headers.get("retry-after"))
    raise ClientError(status, message)
