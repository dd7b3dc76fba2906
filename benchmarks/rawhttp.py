"""A small HTTP/1.1 client on asyncio streams, for benchmarks that hold thousands of requests.

One connection per request (keep-alive is used by the caller when it sends several), bytes
in and out, no redirects, no TLS: just enough to hold 10,000 long polls or event streams from
one process, and to time when each answer's head arrived.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import NamedTuple

__all__ = [
    "Conn",
    "Response",
    "connect",
    "get",
    "post",
    "raise_nofile",
    "read_response",
    "read_until",
    "request_bytes",
]

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Response(NamedTuple):
    """One HTTP response."""

    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    at: float  # perf_counter when the head had arrived


def raise_nofile(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards needed (at most the hard limit); the new one.

    Children started afterwards (servers, nginx, etcd) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    wanted = min(max(soft, needed), limit)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def request_bytes(
    method: str,
    host: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    close: bool = False,
) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def connect(port: int, gate: asyncio.Semaphore | None = None, *, attempts: int = 5) -> Conn:
    """A connection to 127.0.0.1:port; retried a few times (a full accept queue resets)."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            if gate is None:
                return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            async with gate:
                return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        except OSError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> Response:
    """Read one response: its head, then a Content-Length or chunked body (not if head_only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    at = time.perf_counter()
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if head_only or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b"", at)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(c[:-2] for c in chunks)
    else:
        body = await reader.read()
    return Response(status, headers, body, at)


async def read_until(reader: asyncio.StreamReader, marker: bytes, buffer: bytearray) -> float:
    """Read a stream into buffer until marker is in it; perf_counter when it was.

    The marker is searched in the raw bytes (chunk framing included), which is enough for
    markers shorter than the server's chunks.
    """
    while marker not in buffer:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError(f"the stream ended before {marker!r}")
        buffer += data
    return time.perf_counter()


async def get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> Response:
    """One GET on a connection of its own, closed after; at is when the head arrived."""

    async def once() -> Response:
        reader, writer = await connect(port)
        try:
            writer.write(request_bytes("GET", f"127.0.0.1:{port}", path, headers, close=True))
            return await read_response(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(once(), timeout)


async def post(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> Response:
    """One POST on a connection of its own, closed after."""

    async def once() -> Response:
        reader, writer = await connect(port)
        try:
            writer.write(
                request_bytes("POST", f"127.0.0.1:{port}", path, headers, body, close=True)
            )
            return await read_response(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(once(), timeout)
