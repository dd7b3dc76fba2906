"""A Git smart-HTTP server on 127.0.0.1 (git http-backend behind Basic auth) for tests."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def _dechunk(stream: Any) -> bytes:
    """A chunked request body (wsgiref hands it over undecoded)."""
    parts: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline()  # the CRLF after each chunk


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class GitHttpServer:
    """Serves the repositories under root over HTTP; requires user:password when given."""

    def __init__(self, root: Path, user: str | None = None, password: str | None = None) -> None:
        self.root = root
        self.credentials = f"{user}:{password}" if user is not None else None
        self.requests = 0
        self._server: WSGIServer = make_server("127.0.0.1", 0, self._app, handler_class=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        """The URL of repository `name` under root."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def _app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        self.requests += 1
        if self.credentials is not None:
            header = environ.get("HTTP_AUTHORIZATION", "")
            expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if header != expected:
                start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
                return [b"authentication required\n"]
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            body = _dechunk(environ["wsgi.input"])  # libgit2 pushes chunked
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
        cgi_env = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "gitconf",
            "PATH": "/usr/bin:/bin",
        }
        if environ.get("HTTP_GIT_PROTOCOL"):
            cgi_env["GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = "200 OK"
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start(status, headers)
        return [payload]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
