"""The client's pure parts: the response parser (differential against http.client), the
backoff policy, change detection and the secrets rule of the cache."""

from __future__ import annotations

import http.client
import io
import json
import socket
from pathlib import Path

import pytest

from gitconf.client.cache import DiskCache
from gitconf.client.protocol import (
    Endpoint,
    ProtocolError,
    Response,
    encode_request,
    parse_response,
    request_headers,
)
from gitconf.client.state import Holder
from tests.client.conftest import Served

SYNTHETIC = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'4;ext=1\r\n{"a"\r\n5\r\n: 1}\n\r\n0\r\nX-Trailer: t\r\n\r\n',
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the end",
    b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nVary: Accept\r\nVary: Authorization\r\n\r\n',
    b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 5\r\n\r\nbusy!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA",
]


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def stdlib_parse(data: bytes) -> Response:
    """What http.client reads from the same bytes: the reference for parse_response."""
    response = http.client.HTTPResponse(_Bytes(data))  # type: ignore[arg-type]
    response.begin()  # skips a 100 Continue, as parse_response does
    headers: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Response(response.status, headers, response.read())


def raw_exchange(port: int, target: str, headers: dict[str, str]) -> bytes:
    endpoint = Endpoint("http", "127.0.0.1", port, target)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(encode_request(endpoint, target, headers))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("data", SYNTHETIC)
def test_parser_reads_what_http_client_reads(data: bytes) -> None:
    assert parse_response(data) == stdlib_parse(data)


def test_parser_reads_the_servers_responses_as_http_client_does(shared: Served) -> None:
    port = shared.server.port
    plain = request_headers(None, "test-1", None)
    ok = raw_exchange(port, "/v1/config/production/payments", plain)
    etag = parse_response(ok).headers["etag"]
    answers = [
        ok,
        raw_exchange(port, "/v1/config/production/payments?format=yaml", plain),
        raw_exchange(port, "/v1/config/production/payments", request_headers(None, "t", etag)),
        raw_exchange(
            port, "/v1/config/production/payments?wait=0.1", request_headers(None, "t", etag)
        ),
        raw_exchange(port, "/v1/config/production/nope", plain),
        raw_exchange(port, "/v1/status", plain),
    ]
    statuses = []
    for data in answers:
        ours = parse_response(data)
        assert ours == stdlib_parse(data)
        statuses.append(ours.status)
    assert statuses == [200, 200, 304, 304, 404, 200]
    assert json.loads(parse_response(ok).body)["db"]["pool"]["max"] == 50


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "after 5 of 10 body bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", "inside a chunk"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before the end of the response headers"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.x status line"),
        (b"", "before the end of the response headers"),
    ],
)
def test_parser_refuses_broken_responses(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_response(data)


def test_header_values_cannot_smuggle_lines() -> None:
    endpoint = Endpoint.of("http://127.0.0.1:8080", "production", "payments")
    with pytest.raises(ValueError, match="line break"):
        encode_request(endpoint, "/", request_headers("tok\r\nX-Evil: 1", "i", None))


def test_endpoint_quotes_names_and_keeps_a_base_path() -> None:
    endpoint = Endpoint.of("https://lb.internal/gitconf/", "prod uction", "pay/ments")
    assert endpoint.url == "https://lb.internal/gitconf/v1/config/prod%20uction/pay%2Fments"
    assert endpoint.target(60) == "/gitconf/v1/config/prod%20uction/pay%2Fments?wait=60"
    with pytest.raises(ValueError, match="must be http:// or https://"):
        Endpoint.of("ftp://x", "a", "b")


def _reply(secrets: str | None) -> Response:
    headers = {"etag": '"e1"', "x-gitconf-revision": "r1"}
    if secrets is not None:
        headers["x-gitconf-secrets"] = secrets
    return Response(200, headers, b'{"password": "hunter2"}')


@pytest.mark.parametrize(
    ("secrets", "cache_secrets", "written"),
    [
        (None, False, True),
        ("0", False, True),
        ("2", False, False),
        ("2", True, True),
        ("x", False, False),
    ],
)
def test_plaintext_secrets_stay_off_the_disk_unless_asked(
    tmp_path: Path, secrets: str | None, cache_secrets: bool, written: bool
) -> None:
    endpoint = Endpoint.of("http://127.0.0.1:1", "production", "payments")
    cache = DiskCache(tmp_path)
    cache.path("production", "payments").write_text("an older copy")
    holder = Holder(endpoint, "production", "payments", cache, cache_secrets)
    holder.answered(_reply(secrets))
    assert holder.held() == {"password": "hunter2"}
    assert cache.path("production", "payments").exists() is written
    if written:
        assert "hunter2" in cache.path("production", "payments").read_text()
